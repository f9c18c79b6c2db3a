"""Iterative unlearning baselines on CLIP (notebook 10): gradient ascent and gradient difference.

They are the baselines SLUG (Cai et al. 2024) is compared with: many optimizer steps over every layer,
against SLUG's one gradient, one layer, one step. The forget loss on a batch of forget image-caption
pairs is, as in the SLUG authors' GA / GA+FT baselines, the cosine-embedding loss
``L_cos = mean_i (1 - cos(f(x_i), g(t_i)))`` (``forget_loss="cosine"``), or the CLIP contrastive loss
``L_CLIP`` on the batch (``forget_loss="clip"``, their "_o" variant). Gradient ascent maximises it.
"""
from __future__ import annotations

import torch

from ..train import TrainConfig, fit
from .registry import HParam, Outcome, register

HPARAMS = {
    "lr": HParam(1e-4, 1e-6, 1e-2, log=True, help="learning rate (Adam)"),
    "num_steps": HParam(30, 2, 200, kind="int", bounds=(1, 100_000), help="optimizer steps"),
    "batch_size": HParam(64, 8, 256, kind="int", bounds=(2, 100_000), help="forget (and retain) pairs per step"),
    "forget_loss": HParam("cosine", kind="choice", choices=("cosine", "clip"),
                          help="cosine: 1 - cos(image, caption) (SLUG paper's baselines); clip: the CLIP loss"),
}


def forget_pairs_loss(clip, images: torch.Tensor, captions, kind: str = "cosine") -> torch.Tensor:
    """The forget loss of a batch: ``mean(1 - cos)`` of each image with its caption, or the CLIP loss."""
    if kind == "cosine":
        return 1 - (clip.image_embeds(images) * clip.text_embeds(list(captions))).sum(-1).mean()
    if kind == "clip":
        return clip.pairs_loss(images, list(captions))
    raise ValueError(f"forget_loss={kind!r}; allowed values: 'cosine', 'clip'")


class _Pairs:
    """Collate forget positions into ``{"forget": (images, captions), "retain": (images, captions)?}``."""

    def __init__(self, forget, retain=None, seed: int = 0):
        self.forget, self.retain = forget, retain
        self.gen = torch.Generator().manual_seed(seed + 7919)

    def __call__(self, idx):
        i = torch.as_tensor(idx)
        batch = {"forget": (self.forget.images[i], [self.forget.captions[k] for k in idx])}
        if self.retain is not None:
            j = torch.randint(len(self.retain), (len(idx),), generator=self.gen)
            batch["retain"] = (self.retain.images[j], [self.retain.captions[k] for k in j.tolist()])
        return batch


class _EvalEvery:
    """Every ``every`` steps, add ``eval_fn(clip)`` to that step's history record."""

    def __init__(self, clip, every: int, eval_fn):
        self.clip, self.every, self.eval_fn = clip, every, eval_fn

    def on_step_end(self, state):
        if state["step"] % self.every == 0 or state["step"] == state["config"].num_steps:
            state["record"].update({k: float(v) for k, v in self.eval_fn(self.clip).items()})
            self.clip.model.train()


def _run(clip, forget, retain, ctx, loss_fn, *, lr, num_steps, batch_size, desc) -> list:
    if forget is None or len(forget) == 0:
        raise ValueError(f"{desc}: the forget set is empty; pass split.forget_set")
    cfg = TrainConfig(num_steps=num_steps, batch_size=batch_size, lr=lr, schedule="constant", warmup_steps=0,
                      grad_clip=1.0, seed=ctx.seed, desc=desc, progress=ctx.progress)
    callbacks = list(ctx.callbacks)
    first = []
    if ctx.eval_every and ctx.eval_fn is not None:
        callbacks.insert(0, _EvalEvery(clip, ctx.eval_every, ctx.eval_fn))
        first = [{"step": 0, **{k: float(v) for k, v in ctx.eval_fn(clip).items()}}]
    result = fit(clip.model, list(range(len(forget))), lambda m, b: loss_fn(b), cfg,
                 collate_fn=_Pairs(forget, retain, ctx.seed), callbacks=callbacks, device=clip.device)
    for rec in result.history:
        rec["step"] += 1
    return first + result.history


@register("clip_ga", family="gradient-based", modality="clip", hparams=dict(HPARAMS),
          paper="Jang et al. 2023 (gradient ascent); the GA baseline on CLIP of Cai, Tan and Asif 2024 (SLUG)",
          summary="maximise the forget pairs' loss with many steps on every layer")
def clip_gradient_ascent(model, forget, retain, ctx, *, lr, num_steps, batch_size, forget_loss):
    """CLIP gradient ascent (notebook 10). Loss: ``L = -L_f(forget batch)`` with ``L_f`` the cosine loss
    ``mean(1 - cos(f(x), g(t)))`` (default) or the CLIP loss; Adam on all weights for ``num_steps``."""
    def loss(batch):
        f = forget_pairs_loss(model, *batch["forget"], kind=forget_loss)
        return {"loss": -f, "forget_loss": f}

    hist = _run(model, forget, None, ctx, loss, lr=lr, num_steps=num_steps, batch_size=batch_size,
                desc="unlearn: clip_ga")
    return Outcome(model, hist, {"gradient_evaluations": num_steps})


@register("clip_grad_diff", family="gradient-based", modality="clip",
          hparams={**HPARAMS, "retain_weight": HParam(1.0, 0.0, 5.0, bounds=(0, None), help="weight of the retain term")},
          paper="Liu et al. 2022 (gradient difference); the GA+FT baseline on CLIP of Cai, Tan and Asif 2024 (SLUG)",
          summary="ascend on the forget pairs, descend the CLIP loss on retain pairs")
def clip_gradient_difference(model, forget, retain, ctx, *, lr, num_steps, batch_size, forget_loss, retain_weight):
    """CLIP gradient difference (notebook 10). Loss: ``L = -L_f(forget batch) + retain_weight * L_CLIP(retain
    batch)``, a retain batch of the same size drawn each step; Adam on all weights."""
    if retain is None or len(retain) == 0:
        raise ValueError("clip_grad_diff needs a retain set: pass retain=split.retain_set (it is empty or missing)")

    def loss(batch):
        f = forget_pairs_loss(model, *batch["forget"], kind=forget_loss)
        r = model.pairs_loss(*batch["retain"])
        return {"loss": -f + retain_weight * r, "forget_loss": f, "retain_loss": r}

    hist = _run(model, forget, retain, ctx, loss, lr=lr, num_steps=num_steps, batch_size=batch_size,
                desc="unlearn: clip_grad_diff")
    return Outcome(model, hist, {"gradient_evaluations": 2 * num_steps})


class StopAtForgetAccuracy:
    """A training callback for the iterative methods: after every step, score the model with SLUG's
    :class:`~course_lib.unlearning.slug.ZeroShotProbe` on ``forget_set`` / ``retain_set``, log it into the
    step's record, and stop once the forget accuracy is at most ``target`` (matched-forgetting comparisons
    with SLUG, notebook 10 and bench/bench_slug.py). ``reached_at``: the step, or None."""

    def __init__(self, tokenizer, forget_set, retain_set, target: float = 0.1):
        self.tokenizer, self.forget_set, self.retain_set, self.target = tokenizer, forget_set, retain_set, target
        self.probe, self.reached_at, self.last = None, None, {}

    def on_step_end(self, state):
        from ..models.clip import ShapesCLIP
        from .slug import ZeroShotProbe

        if self.probe is None:  # the callback sees the training CLIPModel: wrap it once
            clip = ShapesCLIP(state["model"], self.tokenizer)
            self.probe = ZeroShotProbe(clip, self.forget_set, self.retain_set, self.forget_set.concept)
        self.last = self.probe("both")
        state["record"].update(self.last)
        state["model"].train()
        if self.last["forget_accuracy"] <= self.target:
            self.reached_at = state["step"]
            return "stop"
