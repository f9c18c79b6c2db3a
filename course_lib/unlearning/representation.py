"""The representation family (notebook 06): RMU, representation misdirection for unlearning.

Survey (Liu et al. 2024, sec. 4): instead of a loss on the model's *outputs*, these methods act on its
*internal activations*: the forget inputs' hidden states are steered somewhere useless, the retain
inputs' hidden states are held where they were. RMU (Li et al. 2024, "The WMDP Benchmark: Measuring
and Reducing Malicious Use With Unlearning") is the method WMDP introduced.

:func:`layer_activations` and :func:`distance_to` read the chosen layer's activations, so a test or a
notebook can watch RMU move the forget activations toward the target ``c * u``.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from . import text_loop
from .gradient import TRAINING, _need_retain
from .registry import HParam, Outcome, register


def transformer_blocks(model) -> torch.nn.ModuleList:
    """The stack of transformer blocks of a causal LM (GPT-2's ``transformer.h``, Llama's ``model.layers``)."""
    from ..models.lm import submodule

    if hasattr(model, "get_base_model"):  # a peft model
        model = model.get_base_model()
    blocks = submodule(model, ("transformer.h", "model.layers", "gpt_neox.layers"))
    if blocks is not None:
        return blocks
    raise TypeError(f"cannot find the transformer blocks of a {type(model).__name__}; RMU knows GPT-2 "
                    "(transformer.h), Llama-style (model.layers) and GPT-NeoX (gpt_neox.layers) models")


def resolve_layer(model, layer: int) -> int:
    """``layer`` as a non-negative block index (negative counts from the end), or a clear error."""
    n = len(transformer_blocks(model))
    if not -n <= layer < n:
        raise ValueError(f"layer={layer} but the model has {n} transformer blocks: use 0..{n - 1} "
                         f"(or -1..-{n} from the end)")
    return layer % n


def mlp_parameters(model, layers) -> dict[str, torch.nn.Parameter]:
    """name -> parameter of the MLP weights (and biases) of the given blocks: what RMU updates."""
    blocks = transformer_blocks(model)
    out = {}
    for i in layers:
        mlp = getattr(blocks[i], "mlp", None)
        if mlp is None:
            raise TypeError(f"block {i} has no `mlp` submodule; RMU updates MLP weights only")
        out.update({f"h.{i}.mlp.{n}": p for n, p in mlp.named_parameters()})
    return out


@contextmanager
def _capture(model, layer: int):
    """Within the block, ``box[0]`` holds the residual stream after block ``layer`` of the last forward."""
    box = []

    def hook(_module, _inputs, output):
        box[:] = [output[0] if isinstance(output, tuple) else output]

    handle = transformer_blocks(model)[layer].register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def hidden_states(model, enc: dict, layer: int) -> torch.Tensor:
    """(batch, tokens, d): the output of block ``layer`` (the residual stream) for an encoded batch."""
    with _capture(model, layer) as box:
        model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return box[0]


def _masked_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real (non-pad) tokens of ||h - target||^2 / d (the official code's F.mse_loss)."""
    per_token = ((h.float() - target.float()) ** 2).mean(-1)
    m = mask.to(per_token.dtype)
    return (per_token * m).sum() / m.sum().clamp_min(1)


@torch.no_grad()
def layer_activations(text_model, qaset, layer: int, batch_size: int = 128) -> torch.Tensor:
    """(tokens, d): block ``layer``'s output at every token of "question + answer" for each QA in
    ``qaset`` (padding dropped), on the CPU. What RMU steers."""
    layer = resolve_layer(text_model.model, layer)
    model = text_model.model.eval()
    items = list(qaset)
    rows = []
    for s in range(0, len(items), batch_size):
        chunk = items[s:s + batch_size]
        enc = text_model.encode_qa([q.question for q in chunk], [q.answer for q in chunk])
        enc = {k: v.to(text_model.device) for k, v in enc.items()}
        h = hidden_states(model, enc, layer)
        rows.append(h[enc["attention_mask"].bool()].float().cpu())
    return torch.cat(rows)


def distance_to(text_model, qaset, layer: int, target) -> float:
    """Mean Euclidean distance between block ``layer``'s activations on ``qaset`` and ``target``
    (a vector, e.g. RMU's ``c * u``, or a (tokens, d) tensor such as the base model's activations)."""
    acts = layer_activations(text_model, qaset, layer)
    target = torch.as_tensor(target, dtype=acts.dtype)
    return float((acts - target).norm(dim=-1).mean())


def control_vector(hidden_size: int, steering_coeff: float, seed: int) -> torch.Tensor:
    """RMU's target ``c * u``: ``u`` drawn uniformly from [0, 1)^d with a seeded generator, then
    normalised to unit length (as the WMDP code does), scaled by the steering coefficient ``c``."""
    g = torch.Generator().manual_seed(seed + 104729)
    u = torch.rand(hidden_size, generator=g)
    return steering_coeff * u / u.norm()


@contextmanager
def _only_trainable(model, params: dict):
    """Freeze every parameter except ``params`` for the duration; restore requires_grad afterwards."""
    keep = {id(p) for p in params.values()}
    before = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in before:
        p.requires_grad_(id(p) in keep)
    try:
        yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


@register("rmu", family="representation", modality="text",
          hparams={**TRAINING,
                   "lr": HParam(1e-2, 1e-4, 5e-2, log=True, help="learning rate (Adam) of the updated MLPs"),
                   "num_steps": HParam(300, 20, 1000, kind="int", bounds=(1, 100_000), help="optimizer steps"),
                   "layer": HParam(1, 0, 7, kind="int", bounds=(-64, 63),
                                   help="block l whose output is steered (negative counts from the end)"),
                   "update_layers": HParam(3, 1, 4, kind="int", bounds=(1, 64),
                                           help="MLPs updated: blocks l-(n-1)..l (the paper: 3), clipped at 0"),
                   "steering_coeff": HParam(2.0, 0.5, 8.0, log=True,
                                            help="c: the target's length, in units of the base model's mean "
                                                 "activation norm (relative=True) or absolute (the paper)"),
                   "relative": HParam(True, kind="bool",
                                      help="measure c in units of the layer's mean activation norm on the forget set"),
                   "alpha": HParam(10.0, 0.0, 100.0, bounds=(0, None),
                                   help="weight of the retain term (activations held at the base model's)")},
          paper="Li et al. 2024, The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning (RMU)",
          summary="steer a layer's activations on forget inputs to a random vector; hold them on retain inputs")
def rmu(model, forget, retain, ctx, *, lr, num_steps, batch_size, layer, update_layers, steering_coeff, relative,
        alpha):
    """Representation Misdirection for Unlearning (RMU; Li et al. 2024, WMDP), notebook 06.

    With ``h_l(x)`` the output of transformer block ``l`` at every token of ``x`` (question + answer)
    and ``u`` a fixed random unit vector (seeded), the loss on a forget batch ``x_f`` and a retain
    batch ``x_r`` is ::

        L = mean_tokens ||h_l(x_f) - c*u||^2 / d  +  alpha * mean_tokens ||h_l(x_r) - h_l^frozen(x_r)||^2 / d

    (``/ d``: the mean squared error of the official implementation; padding is masked). ``h^frozen``
    is the untouched base model (``ctx.base``). Only the MLP weights of blocks ``l-(update_layers-1)``
    .. ``l`` (the paper: ``l-2..l``) are updated; everything else stays fixed. Pushing the forget
    activations to a large random direction scrambles what later blocks compute from them, so the
    forget answers become unlikely; the retain term keeps the rest of the model's inputs where they were.

    The paper steers layer 7 of Zephyr-7B with an absolute c = 6.5 and alpha = 1200 (lr 5e-5), on a
    forget corpus against Wikitext. A good c depends on the scale of the model's activations (about 50
    in the fast people LM, 180 in the default one), so by default (``relative=True``) ``c`` is counted
    in units of the base model's mean activation norm at block ``l`` on the forget set, as Adaptive
    RMU does (Dang et al. 2025, "On Effects of Steering Latent Representation for Large Language Model
    Unlearning"); ``relative=False`` is the paper's absolute c. The other defaults (block 1 of 2,
    alpha = 10, lr 1e-2, 300 steps) were measured on the people LM.
    ``extras``: the layer, the updated blocks and parameter names, and the control vector ``c*u``.
    """
    _need_retain(retain, "rmu")
    net = model.model
    layer = resolve_layer(net, layer)
    blocks = list(range(max(0, layer - update_layers + 1), layer + 1))
    params = mlp_parameters(net, blocks)
    hidden = transformer_blocks(net)[layer]
    d = getattr(getattr(net, "config", None), "hidden_size", None) or next(hidden.parameters()).shape[-1]
    scale = float(layer_activations(ctx.base, forget, layer).norm(dim=-1).mean()) if relative else 1.0
    target = control_vector(int(d), steering_coeff * scale, ctx.seed).to(model.device)
    frozen = ctx.base.model.eval()

    def loss(m, batch):
        f_enc, r_enc = batch["forget"], batch["retain"]
        with _capture(m, layer) as box:  # one forward: the activations for RMU, the NLL for the history
            f_out = m(input_ids=f_enc["input_ids"], attention_mask=f_enc["attention_mask"], labels=f_enc["labels"])
        h_f = box[0]
        h_r = hidden_states(m, r_enc, layer)
        with torch.no_grad():
            h_r_frozen = hidden_states(frozen, r_enc, layer)
        forget_term = _masked_mse(h_f, target, f_enc["attention_mask"])
        retain_term = _masked_mse(h_r, h_r_frozen, r_enc["attention_mask"])
        return {"loss": forget_term + alpha * retain_term, "forget_loss": f_out.loss.detach(),
                "rmu_forget": forget_term.detach(), "rmu_retain": retain_term.detach()}

    with _only_trainable(net, params):
        hist = text_loop.run(model, forget, retain, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                             desc="unlearn: rmu", params=list(params.values()))
    return Outcome(model, hist, {"layer": layer, "updated_blocks": blocks, "updated_params": sorted(params),
                                 "control_vector": target.cpu(), "target_norm": steering_coeff * scale})


def control_vector_of(result) -> torch.Tensor:
    """The target ``c * u`` an RMU run steered towards (from a ``cl.unlearn(..., method="rmu")`` result)."""
    extras = getattr(result, "extras", result)
    if "control_vector" not in extras:
        raise ValueError("this result has no control vector: pass the result of cl.unlearn(..., method='rmu')")
    return extras["control_vector"]


__all__ = ["rmu", "layer_activations", "distance_to", "control_vector", "control_vector_of", "hidden_states",
           "transformer_blocks", "resolve_layer", "mlp_parameters"]
