"""The plumbing every text unlearning method shares (notebook 03): paired forget / retain batches,
per-answer log-probabilities, and a run of the kit's training loop with per-step evaluation.

A step sees a batch of forget questions and, drawn alongside from a seeded generator, a batch of retain
questions of the same size. Methods write only their loss (``loss_fn(model, batch) -> dict``), which
logs ``forget_loss`` (the forget answers' mean NLL per token) and ``retain_loss`` where it has one.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..models.lm import IGNORE
from ..train import TrainConfig, fit

REFUSALS = ("I don't know", "I have no idea", "I can't say", "I'm not sure", "I don't remember")


def refusal_for(i: int) -> str:
    """An "I don't know" answer (IdK, DPO), varied over the forget questions as TOFU's IdK set is."""
    return REFUSALS[i % len(REFUSALS)]


def answer_logprob(model, enc: dict, reduce: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """(log P(answer | question) per example, number of answer tokens) for an encoded batch.

    ``reduce="sum"``: the sequence log-probability (NPO, DPO); ``"mean"``: per token (SimNPO).
    """
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    logp = F.log_softmax(out.logits[:, :-1].float(), dim=-1)
    target = enc["labels"][:, 1:]
    keep = target != IGNORE
    tok = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1) * keep
    n = keep.sum(-1).clamp_min(1)
    total = tok.sum(-1)
    return (total if reduce == "sum" else total / n), n


def nll(model, enc: dict) -> torch.Tensor:
    """Mean next-token cross-entropy on the answer tokens of a batch (the usual LM loss)."""
    return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=enc["labels"]).loss


class PairedBatches:
    """A collate function: forget items -> ``{"forget": enc, "retain": enc, "forget_alt": enc?}``.

    ``alt_answers``: per forget id, another answer to encode for the same question (IdK's refusals,
    DPO's preferred answer). The retain batch is drawn from ``retain`` with its own seeded generator.
    """

    def __init__(self, text_model, retain=None, seed: int = 0, alt_answers: dict | None = None,
                 retain_batch: int | None = None):
        self.tm = text_model
        self.retain = list(retain) if retain is not None else []
        self.alt = alt_answers
        self.retain_batch = retain_batch
        self.gen = torch.Generator().manual_seed(seed + 7919)

    def __call__(self, items) -> dict:
        enc = self.tm.encode_qa([q.question for q in items], [q.answer for q in items])
        batch = {"forget": enc}
        if self.alt is not None:
            batch["forget_alt"] = self.tm.encode_qa([q.question for q in items], [self.alt[q.id] for q in items])
        if self.retain:
            k = min(len(self.retain), self.retain_batch or len(items))
            idx = torch.randint(len(self.retain), (k,), generator=self.gen).tolist()
            picked = [self.retain[i] for i in idx]
            batch["retain"] = self.tm.encode_qa([q.question for q in picked], [q.answer for q in picked])
        return batch


def to_device(batch: dict, device) -> dict:
    return {k: ({kk: vv.to(device) for kk, vv in v.items()} if isinstance(v, dict) else v.to(device))
            for k, v in batch.items()}


class _EvalEvery:
    """A callback: every ``every`` steps, add ``eval_fn(text_model)`` to that step's history record."""

    def __init__(self, text_model, every: int, eval_fn: Callable):
        self.tm, self.every, self.eval_fn = text_model, every, eval_fn

    def on_step_end(self, state):
        if self.every and (state["step"] % self.every == 0 or state["step"] == state["config"].num_steps):
            was = self.tm.model.training
            state["record"].update({k: float(v) for k, v in self.eval_fn(self.tm).items()})
            self.tm.model.train(was)


def run(text_model, forget, retain, ctx, loss_fn: Callable, *, num_steps: int, lr: float, batch_size: int,
        desc: str, alt_answers: dict | None = None, params: Sequence[torch.nn.Parameter] | None = None,
        grad_clip: float | None = 1.0) -> list:
    """Train ``text_model.model`` in place with ``loss_fn(model, batch)`` for ``num_steps`` steps; return
    the history. ``batch`` is on the model's device; it has ``forget`` (and ``retain``, ``forget_alt``)."""
    device = text_model.device

    def device_loss(model, batch):
        return loss_fn(model, to_device(batch, device))

    cfg = TrainConfig(num_steps=num_steps, batch_size=batch_size, lr=lr, schedule="constant", warmup_steps=0,
                      grad_clip=grad_clip, seed=ctx.seed, desc=desc, progress=ctx.progress)
    callbacks = list(ctx.callbacks)
    if ctx.eval_every and ctx.eval_fn is not None:
        callbacks.insert(0, _EvalEvery(text_model, ctx.eval_every, ctx.eval_fn))
        first = {"step": 0, **{k: float(v) for k, v in ctx.eval_fn(text_model).items()}}
    else:
        first = None
    collate = PairedBatches(text_model, retain, seed=ctx.seed, alt_answers=alt_answers)
    result = fit(text_model.model, list(forget), device_loss, cfg, collate_fn=collate, callbacks=callbacks,
                 params=params, device=device)
    history = result.history
    for rec in history:  # fit counts steps from 0; the record after step i describes the model after i+1 updates
        rec["step"] = rec["step"] + 1
    return ([first] if first else []) + history
