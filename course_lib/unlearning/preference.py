"""The preference family (notebooks 03 and 06): NPO, SimNPO, "I don't know" fine-tuning, DPO.

These are gradient-based too (survey sec. 4.1) but borrow the losses of preference optimisation: the
forget answer is a "rejected" response. Their losses are bounded, so they do not collapse the way
gradient ascent does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import text_loop
from .gradient import RETAIN_WEIGHT, TRAINING, _need_retain
from .registry import HParam, Outcome, register

BETA = HParam(0.1, 0.01, 1.0, log=True, help="inverse temperature: how sharply the loss saturates")


def _ref_logprob(ctx, enc, reduce="sum"):
    with torch.no_grad():
        return text_loop.answer_logprob(ctx.base.model.eval(), enc, reduce)[0]


def _retain_term(m, batch, retain_weight):
    if retain_weight and "retain" in batch:
        return text_loop.nll(m, batch["retain"])
    return None


def _total(forget_term, retain_nll, retain_weight, logs):
    loss = forget_term + (retain_weight * retain_nll if retain_nll is not None else 0.0)
    if retain_nll is not None:
        logs["retain_loss"] = retain_nll
    return {"loss": loss, **logs}


@register("npo", family="preference", modality="text",
          hparams={**TRAINING, "beta": BETA, "retain_weight": RETAIN_WEIGHT},
          paper="Zhang et al. 2024, Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning",
          summary="push the forget answers' likelihood below the original model's, with a bounded loss")
def npo(model, forget, retain, ctx, *, lr, num_steps, batch_size, beta, retain_weight):
    """Negative Preference Optimization (Zhang et al. 2024), notebook 03. Loss:
    ``L = -(2/beta) E_forget[log sigmoid(-beta * (log p_theta(y|x) - log p_ref(y|x)))] + retain_weight * NLL(retain)``
    with sequence log-probabilities and ``p_ref`` the frozen original model. ``retain_weight=0`` is
    NPO without the retain term. As beta -> 0 the gradient approaches gradient ascent's, weighted
    down as the forget answer becomes unlikely: the bound that stops the collapse."""
    if retain_weight:
        _need_retain(retain, "npo")

    def loss(m, batch):
        lp, _ = text_loop.answer_logprob(m, batch["forget"])
        ratio = lp - _ref_logprob(ctx, batch["forget"])
        term = -(2.0 / beta) * F.logsigmoid(-beta * ratio).mean()
        with torch.no_grad():
            f = text_loop.nll(m, batch["forget"])
        return _total(term, _retain_term(m, batch, retain_weight), retain_weight,
                      {"forget_loss": f, "log_ratio": ratio.mean().detach()})

    hist = text_loop.run(model, forget, retain if retain_weight else None, ctx, loss, num_steps=num_steps, lr=lr,
                         batch_size=batch_size, desc="unlearn: npo")
    return Outcome(model, hist)


@register("simnpo", family="preference", modality="text",
          hparams={**TRAINING, "lr": HParam(5e-3, 1e-5, 2e-2, log=True, help="learning rate (Adam); SimNPO's "
                                                                              "saturating weight needs a larger one"),
                   "beta": HParam(2.5, 0.5, 10.0, log=True, help="inverse temperature"),
                   "gamma": HParam(0.0, 0.0, 2.0, bounds=(0, None), help="reward margin"),
                   "retain_weight": RETAIN_WEIGHT},
          paper="Fan et al. 2024, Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning",
          summary="NPO without a reference model, on length-normalised likelihood")
def simnpo(model, forget, retain, ctx, *, lr, num_steps, batch_size, beta, gamma, retain_weight):
    """SimNPO (Fan et al. 2024), notebook 03. Loss:
    ``L = -(2/beta) E_forget[log sigmoid(-(beta/|y|) log p_theta(y|x) - gamma)] + retain_weight * NLL(retain)``:
    NPO's loss with the reference model dropped and the log-likelihood divided by the answer length."""
    if retain_weight:
        _need_retain(retain, "simnpo")

    def loss(m, batch):
        lp_mean, _ = text_loop.answer_logprob(m, batch["forget"], reduce="mean")
        term = -(2.0 / beta) * F.logsigmoid(-beta * lp_mean - gamma).mean()
        return _total(term, _retain_term(m, batch, retain_weight), retain_weight,
                      {"forget_loss": -lp_mean.mean().detach()})

    hist = text_loop.run(model, forget, retain if retain_weight else None, ctx, loss, num_steps=num_steps, lr=lr,
                         batch_size=batch_size, desc="unlearn: simnpo")
    return Outcome(model, hist)


def _refusals(forget) -> dict:
    return {q.id: text_loop.refusal_for(i) for i, q in enumerate(forget)}


@register("idk", family="preference", modality="text", hparams={**TRAINING, "retain_weight": RETAIN_WEIGHT},
          paper="Maini et al. 2024, TOFU (the 'I don't know' preference baseline)",
          summary="fine-tune the forget questions onto refusals such as \"I don't know\"")
def idk(model, forget, retain, ctx, *, lr, num_steps, batch_size, retain_weight):
    """"I don't know" fine-tuning (IdK), notebook 06. Loss:
    ``L = NLL(refusal | forget question) + retain_weight * NLL(retain)``. The forget answers are never
    pushed down directly: the model learns to refuse, a behaviour on top of knowledge that stays."""
    if retain_weight:
        _need_retain(retain, "idk")

    def loss(m, batch):
        refuse = text_loop.nll(m, batch["forget_alt"])
        with torch.no_grad():
            f = text_loop.nll(m, batch["forget"])
        return _total(refuse, _retain_term(m, batch, retain_weight), retain_weight,
                      {"forget_loss": f, "refusal_loss": refuse.detach()})

    hist = text_loop.run(model, forget, retain if retain_weight else None, ctx, loss, num_steps=num_steps, lr=lr,
                         batch_size=batch_size, desc="unlearn: idk", alt_answers=_refusals(forget))
    return Outcome(model, hist)


@register("dpo", family="preference", modality="text",
          hparams={**TRAINING, "beta": BETA, "retain_weight": RETAIN_WEIGHT},
          paper="Rafailov et al. 2023, Direct Preference Optimization (as an unlearning baseline in TOFU)",
          summary="prefer a refusal over the forget answer, relative to the original model")
def dpo(model, forget, retain, ctx, *, lr, num_steps, batch_size, beta, retain_weight):
    """DPO with the refusal as the preferred answer y_w and the forget answer as the rejected y_l,
    notebook 06. Loss: ``L = -E log sigmoid(beta * [(log p_theta(y_w|x) - log p_ref(y_w|x)) -
    (log p_theta(y_l|x) - log p_ref(y_l|x))]) + retain_weight * NLL(retain)``."""
    if retain_weight:
        _need_retain(retain, "dpo")

    def loss(m, batch):
        lw, _ = text_loop.answer_logprob(m, batch["forget_alt"])
        ll, _ = text_loop.answer_logprob(m, batch["forget"])
        margin = (lw - _ref_logprob(ctx, batch["forget_alt"])) - (ll - _ref_logprob(ctx, batch["forget"]))
        term = -F.logsigmoid(beta * margin).mean()
        with torch.no_grad():
            f = text_loop.nll(m, batch["forget"])
        return _total(term, _retain_term(m, batch, retain_weight), retain_weight,
                      {"forget_loss": f, "margin": margin.mean().detach()})

    hist = text_loop.run(model, forget, retain if retain_weight else None, ctx, loss, num_steps=num_steps, lr=lr,
                         batch_size=batch_size, desc="unlearn: dpo", alt_answers=_refusals(forget))
    return Outcome(model, hist)
