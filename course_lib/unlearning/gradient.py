"""The gradient family (notebook 03): gradient ascent, gradient difference, gradient ascent + KL.

Survey (Liu et al. 2024, sec. 4.1): "gradient-based" methods update the weights with the gradient of
a loss that pushes the forget set's likelihood down, often with a term that holds the retain set. They
are the baselines of every benchmark (TOFU, MUSE, WMDP) and the first to collapse.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import text_loop
from .registry import HParam, Outcome, register

TRAINING = {
    "lr": HParam(1e-3, 1e-5, 1e-2, log=True, help="learning rate (Adam)"),
    "num_steps": HParam(40, 5, 200, kind="int", bounds=(1, 100_000), help="optimizer steps"),
    "batch_size": HParam(32, 4, 128, kind="int", bounds=(1, 100_000), help="forget (and retain) questions per step"),
}
RETAIN_WEIGHT = HParam(1.0, 0.0, 10.0, bounds=(0, None), help="weight of the retain term (notebook 03 measured 10 for NPO)")


def _forget_nll(model, batch):
    return text_loop.nll(model, batch["forget"])


@register("ga", family="gradient-based", modality="text", hparams=dict(TRAINING),
          paper="Jang et al. 2023, Knowledge Unlearning for Mitigating Privacy Risks in Language Models",
          summary="maximise the forget set's loss")
def gradient_ascent(model, forget, retain, ctx, *, lr, num_steps, batch_size):
    """Gradient ascent (GA). Loss: ``L = -NLL(forget)``, the negated next-token cross-entropy of the
    forget answers. Unbounded below: the model is pushed anywhere away from the forget answers, which
    ends in collapse (notebook 03 shows it)."""
    def loss(m, batch):
        f = _forget_nll(m, batch)
        return {"loss": -f, "forget_loss": f}

    hist = text_loop.run(model, forget, None, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                         desc="unlearn: ga")
    return Outcome(model, hist)


@register("grad_diff", family="gradient-based", modality="text", hparams={**TRAINING, "retain_weight": RETAIN_WEIGHT},
          paper="Liu et al. 2022, Continual Learning and Private Unlearning (used as a TOFU baseline)",
          summary="ascend on the forget set, descend on the retain set")
def gradient_difference(model, forget, retain, ctx, *, lr, num_steps, batch_size, retain_weight):
    """Gradient difference (GradDiff). Loss: ``L = -NLL(forget) + retain_weight * NLL(retain)``."""
    _need_retain(retain, "grad_diff")

    def loss(m, batch):
        f, r = _forget_nll(m, batch), text_loop.nll(m, batch["retain"])
        return {"loss": -f + retain_weight * r, "forget_loss": f, "retain_loss": r}

    hist = text_loop.run(model, forget, retain, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                         desc="unlearn: grad_diff")
    return Outcome(model, hist)


def retain_kl(model, base_model, enc) -> torch.Tensor:
    """KL(p_base || p_model) of the next-token distributions on the answer tokens of ``enc``, averaged."""
    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, :-1].float()
    with torch.no_grad():
        ref = base_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, :-1].float()
    keep = (enc["labels"][:, 1:] != text_loop.IGNORE)
    kl = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(ref, -1), log_target=True, reduction="none").sum(-1)
    return (kl * keep).sum() / keep.sum().clamp_min(1)


@register("ga_kl", family="gradient-based", modality="text", hparams={**TRAINING, "retain_weight": RETAIN_WEIGHT},
          paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs (the KL baseline)",
          summary="ascend on the forget set, stay close to the original model on the retain set")
def gradient_ascent_kl(model, forget, retain, ctx, *, lr, num_steps, batch_size, retain_weight):
    """Gradient ascent + KL. Loss: ``L = -NLL(forget) + retain_weight * KL(p_base(.|x) || p_theta(.|x))``
    on retain answers' tokens, where ``p_base`` is the frozen original model."""
    _need_retain(retain, "ga_kl")
    base = ctx.base.model.eval()

    def loss(m, batch):
        f = _forget_nll(m, batch)
        kl = retain_kl(m, base, batch["retain"])
        with torch.no_grad():
            r = text_loop.nll(m, batch["retain"])
        return {"loss": -f + retain_weight * kl, "forget_loss": f, "retain_loss": r, "retain_kl": kl}

    hist = text_loop.run(model, forget, retain, ctx, loss, num_steps=num_steps, lr=lr, batch_size=batch_size,
                         desc="unlearn: ga_kl")
    return Outcome(model, hist)


def _need_retain(retain, method):
    if retain is None or len(retain) == 0:
        raise ValueError(f"{method} needs a retain set: pass retain=split.retain (it is empty or missing)")
