"""The quantization attack (notebook 08): store the unlearned model in 8 or 4 bits and ask again.

Zhang et al. 2024 ("Does Your LLM Truly Unlearn? An Embarrassingly Simple Approach to Recover Unlearned
Knowledge", later "Catastrophic Failure of LLM Unlearning via Quantization") find that methods which
unlearn with small weight changes, held close to the original model by a utility term, get much of the
forgotten knowledge back once the model is quantized to 4 bits: the unlearning update is smaller than
one quantization step, so the unlearned weights and the original ones round to the same grid points.
8-bit steps are 16 times finer and mostly keep the update.

Quantization here is *fake* quantization (simulated in float): symmetric round-to-nearest (RTN), one
scale per output channel, of the weight matrices of every transformer block (attention and MLP
projections), as weight-only RTN / GPTQ / AWQ setups do::

    s_j = max_i |W_ij| / (2^(bits-1) - 1),     W_q = s_j * clamp(round(W / s_j), -(2^(bits-1)-1), 2^(bits-1)-1)

(``j`` the output channel). Embeddings, the output head, LayerNorms and biases stay in full precision.
Zhang et al. use GPTQ / AWQ as well as RTN; RTN is the simplest and their main 4-bit result holds for it.

    q4 = quantize(model, bits=4)                        # a new model; ``model`` is unchanged
    res = quantization_attack(model, split, bits=4)     # forget accuracy before / after
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from .result import AttackResult, accuracy, need_items

BITS = (8, 4)


def check_bits(bits) -> int:
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f"bits={bits!r}; allowed values: {', '.join(map(str, BITS))}")
    return int(bits)


def _out_dim(module) -> int | None:
    """The dimension of ``module.weight`` that indexes output channels (None: not a weight matrix)."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, Conv1D):  # GPT-2 stores its projections transposed: (in, out)
        return 1
    if isinstance(module, torch.nn.Linear):
        return 0
    return None


@torch.no_grad()
def fake_quantize(weight: torch.Tensor, bits: int, channel_dim: int = 0) -> torch.Tensor:
    """``weight`` rounded to ``bits``-bit symmetric integers, one scale per slice along ``channel_dim``
    (per output channel), and scaled back to float. A channel of zeros stays zero."""
    bits = check_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    w = weight.float()
    reduce = [d for d in range(w.dim()) if d != channel_dim % w.dim()]
    scale = w.abs().amax(dim=reduce, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (torch.clamp(torch.round(w / scale), -qmax, qmax) * scale).to(weight.dtype)


@torch.no_grad()
def quantize_(net: torch.nn.Module, bits: int) -> list[str]:
    """Fake-quantize, in place, the weight matrices of the transformer blocks of ``net``; the names."""
    from ..unlearning.representation import transformer_blocks

    done, names = set(), []
    for i, block in enumerate(transformer_blocks(net)):
        for name, module in block.named_modules():
            dim = _out_dim(module)
            weight = getattr(module, "weight", None)
            if dim is None or weight is None or id(weight) in done:
                continue
            weight.copy_(fake_quantize(weight, bits, dim))
            done.add(id(weight))
            names.append(f"block {i}: {name}")
    return names


def quantize(model, bits: int = 4):
    """A copy of ``model`` (a TextModel, or a suppression / LoRA wrapper around one) with the transformer
    blocks' weight matrices fake-quantized to ``bits`` in {8, 4} (RTN, per output channel), notebook 08.
    ``model`` is not changed."""
    check_bits(bits)
    twin = model.clone()
    quantize_(twin.model, bits)
    twin.model.eval()
    return twin


def quantization_attack(model, split, bits: int = 4, *, forget=None) -> AttackResult:
    """Quantization attack (Zhang et al. 2024), notebook 08: forget accuracy of ``model`` in full
    precision (``before``) and after :func:`quantize` to ``bits`` (``after``). ``details``: forget and
    retain accuracy at both precisions (quantization also costs utility: the retain column shows how
    much). ``forget``: the questions to measure (default ``split.forget``)."""
    bits = check_bits(bits)
    if split is None and forget is None:
        raise ValueError("split is None: pass a split (its forget set is measured) or forget=")
    forget = split.forget if forget is None else forget
    need_items(forget, "forget", "pass split.forget")
    start = time.perf_counter()
    retain = split.retain.sample(len(forget), seed=0) if split is not None else None
    q = quantize(model, bits)
    rows = []
    for label, m in (("full precision", model), (f"{bits}-bit", q)):
        row = {"precision": label, "forget_acc": accuracy(m, forget)}
        if retain is not None and len(retain):
            row["retain_acc"] = accuracy(m, retain)
        rows.append(row)
    details = pd.DataFrame(rows)
    return AttackResult(f"quantize{bits}", f"forget accuracy after {bits}-bit RTN quantization",
                        before=float(details["forget_acc"].iloc[0]), after=float(details["forget_acc"].iloc[1]),
                        n=len(forget), seconds=time.perf_counter() - start, details=details, extras={"model": q})


def weight_change_vs_step(model, base, bits: int = 4) -> pd.DataFrame:
    """Per quantized weight matrix of ``model`` (unlearned from ``base``): the mean |change| of its weights,
    the mean quantization step ``s_j`` of ``base`` at ``bits``, and the fraction of weights that round to
    the same ``bits``-bit value in both models. Where the change is far below the step, most weights round
    alike (Zhang et al.'s explanation of the attack); a weight that crosses a rounding boundary moves a
    whole step, though, so RTN keeps a small change *on average* (about change / step of the weights
    move by one step each)."""
    from ..unlearning.representation import transformer_blocks

    bits = check_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    rows = []
    pairs = zip(transformer_blocks(_plain(model)), transformer_blocks(_plain(base)))
    for i, (block, ref) in enumerate(pairs):
        ref_modules = dict(ref.named_modules())
        for name, module in block.named_modules():
            dim = _out_dim(module)
            if dim is None or name not in ref_modules:
                continue
            w, w0 = module.weight.detach().float(), ref_modules[name].weight.detach().float()
            reduce = [d for d in range(w0.dim()) if d != dim]
            step = w0.abs().amax(dim=reduce) / qmax
            same = _levels(w, bits, dim) == _levels(w0, bits, dim)  # each model on its own grid
            rows.append({"weight": f"block {i}: {name}", "mean |change|": float((w - w0).abs().mean()),
                         f"mean {bits}-bit step": float(step.mean()), "same value": float(same.float().mean())})
    return pd.DataFrame(rows)


def _levels(w: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """The integer levels ``round(W / s)`` that :func:`fake_quantize` stores."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=[d for d in range(w.dim()) if d != dim], keepdim=True) / qmax
    return torch.clamp(torch.round(w / torch.where(scale > 0, scale, torch.ones_like(scale))), -qmax, qmax)


def _plain(model) -> torch.nn.Module:
    net = getattr(model, "model", model)
    if hasattr(net, "get_base_model"):
        raise TypeError("weight_change_vs_step compares plain models: merge a LoRA adapter first (.merged())")
    return net
