"""Methods that work in weight space (notebook 06): task-vector negation and LoRA unlearning.

Survey (Liu et al. 2024, sec. 4): *task vectors* do arithmetic on weights (subtract what fine-tuning
on the forget set added); *parameter-efficient module operation* puts the unlearning into a small
module (a LoRA adapter) trained on its own, which can be merged into the weights or kept apart.

:func:`negate_task_vector` is the arithmetic on two state dicts (the exercise of notebook 06 checks
against it); :func:`detach_adapter` removes an unmerged LoRA adapter again, which gives the base model
back exactly: unlearning that lives in a detachable adapter is only as permanent as the adapter.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from ..models.lm import TextModel
from . import text_loop
from .gradient import TRAINING
from .registry import METHODS, HParam, Outcome, register


# ------------------------------------------------------------------------------------------ task vectors
def task_vector(base_state: dict, finetuned_state: dict) -> dict[str, torch.Tensor]:
    """``tau = theta_ft - theta_base`` for every floating-point tensor of two state dicts with the same keys."""
    if base_state.keys() != finetuned_state.keys():
        missing = sorted(set(base_state) ^ set(finetuned_state))[:3]
        raise ValueError(f"the two state dicts must have the same keys (they differ in e.g. {missing}): "
                         "fine-tune a copy of the base model itself")
    return {k: finetuned_state[k].detach() - v.detach() for k, v in base_state.items() if v.is_floating_point()}


def negate_task_vector(base_state: dict, finetuned_state: dict, alpha: float = 1.0) -> dict[str, torch.Tensor]:
    """Task-vector negation (Ilharco et al. 2023): ``theta = theta_base - alpha * (theta_ft - theta_base)``
    per tensor; tensors that are not floating point (buffers, masks) are copied from the base."""
    tau = task_vector(base_state, finetuned_state)
    return {k: (v.detach() - alpha * tau[k]) if k in tau else v.detach().clone() for k, v in base_state.items()}


def vector_norm(tau: dict) -> float:
    """The global L2 norm of a task vector (all its tensors as one vector)."""
    return float(torch.sqrt(sum((t.double() ** 2).sum() for t in tau.values())))


def _unique_state(module) -> dict:
    """name -> tensor, each tensor once (tied input/output embeddings appear under one name)."""
    seen, out = set(), {}
    for k, v in module.state_dict().items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            out[k] = v
    return out


def finetune_on_forget(model, forget, ctx, *, lr: float, num_steps: int, batch_size: int):
    """(a fine-tuned copy of ``model``, its history): next-token loss on the forget answers, seeded by
    ``ctx.seed``; step 1 of task-vector negation. ``model`` itself is not changed."""
    finetuned = model.clone()

    def loss(m, batch):
        f = text_loop.nll(m, batch["forget"])
        return {"loss": f, "forget_loss": f}

    hist = text_loop.run(finetuned, forget, None, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                         desc="task vector: fine-tune on forget")
    return finetuned, hist


@register("task_vector", family="task vector", modality="text",
          hparams={**TRAINING, "alpha": HParam(1.0, 0.1, 5.0, bounds=(0, None),
                                               help="scaling of the negated task vector")},
          paper="Ilharco et al. 2023, Editing Models with Task Arithmetic",
          summary="fine-tune a copy on the forget set, then subtract alpha times the weight difference")
def task_vector_negation(model, forget, retain, ctx, *, lr, num_steps, batch_size, alpha):
    """Task-vector negation (Ilharco et al. 2023, "Editing Models with Task Arithmetic"), notebook 06.

    1. fine-tune a copy of the model on the forget set (next-token loss on the forget answers,
       ``num_steps`` Adam steps at ``lr``): ``theta_ft``;
    2. the task vector ``tau = theta_ft - theta_base`` is the direction that adds the forget data;
    3. the result is ``theta = theta_base - alpha * tau``: "negating" the task.

    The retain set is not used (task arithmetic needs no retain data); ``alpha`` trades forgetting for
    utility. ``extras``: ``tau_norm`` (L2 norm of tau), ``finetune_forget_loss`` (first, last).
    """
    base_state = {k: v.clone() for k, v in model.model.state_dict().items()}
    finetuned, hist = finetune_on_forget(model, forget, ctx, lr=lr, num_steps=num_steps, batch_size=batch_size)
    ft_state = finetuned.model.state_dict()
    tau = task_vector(base_state, ft_state)
    model.model.load_state_dict(negate_task_vector(base_state, ft_state, alpha))
    losses = [h["forget_loss"] for h in hist if "forget_loss" in h]
    unique = _unique_state(model.model)  # a tied embedding counted once
    return Outcome(model, hist, {"tau_norm": vector_norm({k: tau[k] for k in unique if k in tau}), "alpha": alpha,
                                 "finetune_forget_loss": (losses[0], losses[-1]) if losses else None})


# ------------------------------------------------------------------------------------------ LoRA
GPT2_LORA_TARGETS = ("c_attn", "c_proj", "c_fc")  # GPT-2's attention and MLP projections (transformers Conv1D)
LOSSES = ("grad_diff", "npo", "ga", "idk", "simnpo")


class LoRATextModel(TextModel):
    """A :class:`TextModel` whose ``.model`` is a ``peft`` model: the base weights plus a LoRA adapter
    that is still attached (``cl.unlearn(..., method="lora", merge=False)``).

    ``save_pretrained(path)`` writes the base weights (safetensors, loadable as a plain model) and the
    adapter in ``path/adapter``; :meth:`from_pretrained` puts them together again; :meth:`detach`
    (or :func:`detach_adapter`) returns the base model without the adapter.
    """

    ADAPTER_DIR = "adapter"

    def clone(self) -> "LoRATextModel":
        twin = LoRATextModel(copy.deepcopy(self.model), self.tokenizer, self.name)
        twin.zoo_info = dict(self.zoo_info)
        return twin

    def adapter_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The LoRA weights (the only ones the unlearning trained)."""
        return {n: p for n, p in self.model.named_parameters() if "lora_" in n}

    def detach(self) -> TextModel:
        """The base model with the adapter removed (a copy; this model is unchanged)."""
        return TextModel(copy.deepcopy(self.model).unload(), self.tokenizer, self.name + " (adapter detached)")

    def merged(self) -> TextModel:
        """The adapter merged into the weights: ``W + (lora_alpha / r) * B A`` (a copy)."""
        return TextModel(copy.deepcopy(self.model).merge_and_unload(), self.tokenizer, self.name + " (merged)")

    def save_pretrained(self, path) -> None:
        path = Path(path)
        self.detach().save_pretrained(path)
        self.model.save_pretrained(path / self.ADAPTER_DIR, safe_serialization=True)

    @classmethod
    def from_pretrained(cls, path, device="cpu", name: str = "people-lm") -> "LoRATextModel":
        from peft import PeftModel

        base = TextModel.from_pretrained(path, device=device, name=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(base.model, Path(path) / cls.ADAPTER_DIR)
        return cls(peft_model.to(device).eval(), base.tokenizer, name)


def lora_targets(module) -> list[str]:
    """The module names LoRA wraps: GPT-2's Conv1D projections, else a Llama-style model's linear layers."""
    names = {n.split(".")[-1] for n, _ in module.named_modules()}
    gpt2 = [t for t in GPT2_LORA_TARGETS if t in names]
    if gpt2:
        return gpt2
    llama = [t for t in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj") if t in names]
    if llama:
        return llama
    raise TypeError(f"no known LoRA target modules in a {type(module).__name__}: expected GPT-2's "
                    f"{GPT2_LORA_TARGETS} or Llama-style q_proj/k_proj/...")


def add_lora(text_model: TextModel, rank: int, lora_alpha: float, seed: int = 0) -> LoRATextModel:
    """Wrap ``text_model.model`` (in place) with a fresh LoRA adapter; only the adapter is trainable.

    LoRA (Hu et al. 2021): a frozen weight ``W`` becomes ``W + (lora_alpha / rank) * B A`` with
    ``A`` (rank x in) random and ``B`` (out x rank) zero at the start, so the wrapped model starts out
    identical to the base. GPT-2 stores its projections as ``Conv1D`` (in x out), hence ``fan_in_fan_out``.
    """
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(text_model.model)
    config = LoraConfig(r=rank, lora_alpha=lora_alpha, lora_dropout=0.0, bias="none", target_modules=targets,
                        fan_in_fan_out=targets[0] in GPT2_LORA_TARGETS)
    torch.manual_seed(seed)  # A's random initialisation
    with warnings.catch_warnings():  # peft asks transformers about gradient checkpointing with a deprecated name
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(text_model.model, config)
    return LoRATextModel(peft_model, text_model.tokenizer, text_model.name)


def detach_adapter(model) -> TextModel:
    """The base model under an unmerged LoRA adapter: removing the adapter undoes the unlearning.

    ``model``: a :class:`LoRATextModel` (``cl.unlearn(..., method="lora", merge=False).model``). A merged
    model has no adapter to remove: its change is in the weights.
    """
    if not isinstance(model, LoRATextModel):
        raise TypeError(f"detach_adapter needs a model whose LoRA adapter is still attached (method='lora', "
                        f"merge=False); got a {type(model).__name__}: a merged adapter is part of the weights "
                        "and cannot be detached")
    return model.detach()


@register("lora", family="parameter-efficient", modality="text",
          hparams={**TRAINING,
                   "lr": HParam(1e-2, 1e-4, 3e-2, log=True, help="learning rate (Adam) of the adapter"),
                   "num_steps": HParam(80, 5, 300, kind="int", bounds=(1, 100_000), help="optimizer steps"),
                   "rank": HParam(4, 1, 32, kind="int", bounds=(1, 4096), help="LoRA rank r"),
                   "lora_alpha": HParam(8.0, 1.0, 64.0, bounds=(0, None), help="LoRA scaling: B A is scaled by alpha / r"),
                   "loss": HParam("grad_diff", kind="choice", choices=LOSSES, help="the unlearning loss the adapter trains on"),
                   "retain_weight": HParam(2.0, 0.0, 5.0, bounds=(0, None), help="weight of the retain term"),
                   "merge": HParam(True, kind="bool", help="merge the adapter into the weights (True) or keep it attached")},
          paper="Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models (survey: parameter-efficient module operation)",
          summary="train only a LoRA adapter with an unlearning loss; merge it or keep it detachable")
def lora_unlearning(model, forget, retain, ctx, *, lr, num_steps, batch_size, rank, lora_alpha, loss, retain_weight,
                    merge):
    """LoRA unlearning (Hu et al. 2021's adapters; the survey's parameter-efficient module operation), notebook 06.

    Every GPT-2 projection (``c_attn``, ``c_proj``, ``c_fc``) gets a LoRA adapter:
    ``W -> W + (lora_alpha / rank) * B A`` with ``W`` frozen. Only ``A`` and ``B`` are trained, with the
    registered text method named by ``loss`` (its own loss, e.g. GradDiff's
    ``-NLL(forget) + retain_weight * NLL(retain)``; its other hyper-parameters at their defaults).
    ``merge=True`` folds ``B A`` into ``W`` (``merge_and_unload``: a plain model, the change now in the
    weights); ``merge=False`` keeps the adapter attached (a :class:`LoRATextModel`), and
    :func:`detach_adapter` then returns the base model exactly. ``extras``: trainable and total
    parameter counts, the loss used, whether it was merged. Defaults (lr 1e-2, 80 steps, retain
    weight 2) were measured on the default-mode people LM; a low-rank adapter needs a larger lr than
    full fine-tuning.
    """
    wrapped = add_lora(model, rank, lora_alpha, seed=ctx.seed)
    info = METHODS[loss]
    given = {"lr": lr, "num_steps": num_steps, "batch_size": batch_size, "retain_weight": retain_weight}
    hp = {k: given.get(k, h.default) for k, h in info.hparams.items()}
    out = info.fn(wrapped, forget, retain, ctx, **hp)
    trainable = sum(p.numel() for p in wrapped.adapter_parameters().values())
    extras = {"loss": loss, "merged": merge, "adapter_parameters": trainable,
              "base_parameters": sum(p.numel() for n, p in wrapped.model.named_parameters() if "lora_" not in n),
              "loss_hparams": hp}
    wrapped.model.eval()
    result = wrapped.merged() if merge else wrapped
    result.name = model.name
    return Outcome(result, out.history, extras)


# ------------------------------------------------------------------------------------------ bookkeeping
def bytes_changed(model, base, atol: float = 0.0) -> int:
    """Bytes of weights that differ from ``base`` (changed elements x bytes per element), plus the bytes
    of an attached LoRA adapter (new weights that carry the change). Suppression wrappers share the base
    weights: 0. For the comparison table of notebook 06."""
    if isinstance(model, LoRATextModel):
        adapter = sum(p.numel() * p.element_size() for p in model.adapter_parameters().values())
        return adapter + bytes_changed(model.detach(), base, atol)
    mine, ref = _unique_state(_module(model)), _unique_state(_module(base))
    if mine.keys() != ref.keys():
        raise ValueError("model and base have different weights: compare a model with the base it was unlearned from")
    total = 0
    for k, v in mine.items():
        diff = (v.detach().cpu().float() - ref[k].detach().cpu().float()).abs() > atol
        total += int(diff.sum()) * v.element_size()
    return total


def _module(model):
    return getattr(model, "model", model)


def lora_summary(result) -> str:
    """One line: adapter size against the model, for notebook 06 (a ``cl.unlearn(..., method="lora")`` result)."""
    e = result.extras
    return (f"LoRA adapter: {e['adapter_parameters']:,} trainable parameters "
            f"({100 * e['adapter_parameters'] / e['base_parameters']:.1f} % of {e['base_parameters']:,}); "
            f"loss {e['loss']}; {'merged into the weights' if e['merged'] else 'attached, detachable'}")


__all__ = ["task_vector", "finetune_on_forget", "negate_task_vector", "vector_norm", "task_vector_negation", "LoRATextModel", "add_lora",
           "detach_adapter", "lora_unlearning", "bytes_changed", "lora_summary", "GPT2_LORA_TARGETS", "LOSSES"]
