"""Classic unlearning on a classifier (notebook 01): the shape judge forgets a forget set S.

The definition these methods aim at: an unlearning algorithm U is good when U(D, S, A(D)) is
distributed like A(D minus S), the model retrained without S (exact unlearning). Here:

- exact: retrain (``cl.zoo.load("shape-judge", rt, exclude=split.forget)``) and :class:`SISA`
  (Bourtoule et al. 2021, "Machine Unlearning"): k shard models, a deletion retrains only the
  shards that held the deleted examples; notebook 07 returns to it.
- approximate: :func:`finetune` on the retain set (catastrophic forgetting as unlearning) and
  :func:`gradient_ascent` on the forget set (maximise its loss, e.g. Thudi et al. 2022).

Each method is ``method(model, forget, retain, **hparams) -> UnlearnResult``; ``forget`` and
``retain`` are example dicts from :func:`examples`. The model passed in is never modified.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..models.classifier import PRESETS as JUDGE_PRESETS
from ..models.classifier import JudgeMethods, judge_loss, loader_args, train_judge

# Hyperparameters per mode (STYLE: "presets, not flags"); measured on the "circle" request of notebook 01.
PRESETS = {  # fine-tuning and GA stop once at most 10 % of the forget set keeps its label
    "fast": {"finetune": {"num_steps": 200, "lr": 1e-3, "stop_at": 0.1},
             "gradient_ascent": {"num_steps": 50, "lr": 2e-4, "stop_at": 0.1},
             "curves": {"finetune": 120, "gradient_ascent": 40},  # steps run past the stopping rule
             "sisa": {"num_shards": 3, "shard_steps": 200}},   # fast: all of notebook 01 in about 30 s
    "default": {"finetune": {"num_steps": 300, "lr": 1e-3, "stop_at": 0.1},
                "gradient_ascent": {"num_steps": 50, "lr": 2e-4, "stop_at": 0.1},
                "curves": {"finetune": 200, "gradient_ascent": 40},
                "sisa": {"num_shards": 4, "shard_steps": 200}},
    "full": {"finetune": {"num_steps": 1000, "lr": 1e-3, "stop_at": 0.1},
             "gradient_ascent": {"num_steps": 100, "lr": 2e-4, "stop_at": 0.1},
             "curves": {"finetune": 600, "gradient_ascent": 60},
             "sisa": {"num_shards": 5, "shard_steps": 1000}},
}


def hparams(rt, method: str) -> dict:
    """The preset hyperparameters of ``method`` ("finetune", "gradient_ascent", "sisa"; "curves": steps of
    the step-by-step runs of notebook 01) for ``rt.mode``."""
    return dict(rt.preset(PRESETS)[method])


def examples(shapes, indices) -> dict:
    """The examples ``{"images": (n, 3, H, W), attr: labels (n,), "index": (n,)}`` at ``indices``."""
    i = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    return {"images": shapes.images[i], **{k: v[i] for k, v in shapes.labels.items()}, "index": i}


@dataclass
class UnlearnResult:
    """What an unlearning method returns: the new ``model``, its training ``history`` and ``seconds``."""

    model: nn.Module
    history: list = field(default_factory=list)
    seconds: float = 0.0
    method: str = ""
    steps: int = 0


class StopWhenForgotten:
    """A ``fit`` callback: stop once the model's accuracy on the forget examples is <= ``target``.

    A natural stopping rule for removing a concept (the retrained model never names it). For random
    forgetting it is the wrong rule: the retrained model is still accurate on S (it generalises).
    """

    def __init__(self, forget: dict, target: float, attr: str = "shape", every: int = 1):
        self.images, self.labels, self.target, self.attr = forget["images"], forget[attr], target, attr
        self.every = every
        self.accuracy = None

    @torch.no_grad()
    def on_step_end(self, state: dict):
        if state["step"] % self.every:
            return None
        model = state["model"]
        model.eval()
        device = next(model.parameters()).device
        pred = model(self.images.to(device))[self.attr].argmax(-1).cpu()  # call it: it may be wrapped
        model.train()
        self.accuracy = float((pred == self.labels).float().mean())
        return "stop" if self.accuracy <= self.target else None


def _train_on(model, data: dict, loss_fn, num_steps: int, lr: float, batch_size: int, seed: int,
              desc: str, callbacks=(), progress: bool = True, stop: StopWhenForgotten | None = None) -> UnlearnResult:
    from ..train import TrainConfig, fit

    start = time.perf_counter()
    labels = {k: v for k, v in data.items() if k not in ("images", "index")}
    ds, collate = loader_args(data["images"], labels, range(len(data["images"])))
    cfg = TrainConfig(num_steps=num_steps, batch_size=batch_size, lr=lr, schedule="constant", seed=seed,
                      desc=desc, progress=progress)
    callbacks = list(callbacks) + ([stop] if stop is not None else [])
    result = fit(model, ds, loss_fn, cfg, collate_fn=collate, callbacks=callbacks)
    return UnlearnResult(model, result.history, time.perf_counter() - start, desc, result.steps)


def _stop(forget: dict, stop_at: float | None, every: int = 1):
    return None if stop_at is None else StopWhenForgotten(forget, stop_at, every=every)


def finetune(model, forget: dict, retain: dict, *, num_steps: int = 200, lr: float = 1e-3,
             batch_size: int = 64, stop_at: float | None = None, seed: int = 0, callbacks=(),
             progress: bool = True) -> UnlearnResult:
    """Fine-tune on the retain set only and hope the forget set fades (catastrophic forgetting).

    Notebook 01. Loss: the usual cross-entropy on retain examples; ``forget`` is only watched:
    ``stop_at``: stop early once the forget-set accuracy is <= it (:class:`StopWhenForgotten`, checked
    every 5 steps: fine-tuning forgets slowly).
    """
    return _train_on(copy.deepcopy(model), retain, judge_loss, num_steps, lr, batch_size, seed,
                     "finetune", callbacks, progress, _stop(forget, stop_at, every=5))


def ga_loss(model, batch: dict) -> dict:
    """Gradient-ascent loss: minus the cross-entropy of the forget batch, summed over the heads."""
    return judge_loss(model, batch, sign=-1.0)


def gradient_ascent(model, forget: dict, retain: dict, *, num_steps: int = 50, lr: float = 2e-4,
                    batch_size: int = 32, stop_at: float | None = None, seed: int = 0, callbacks=(),
                    progress: bool = True) -> UnlearnResult:
    """Gradient ascent on the forget set: step *up* its loss (notebook 01; notebook 03 for LMs).

    Loss: ``-CE(model(x_forget), y_forget)`` over all heads; ``retain`` is not used. Unbounded: run it
    long and the model forgets everything, so it needs a stopping rule (``stop_at``, as in :func:`finetune`).
    """
    return _train_on(copy.deepcopy(model), forget, ga_loss, num_steps, lr, batch_size, seed,
                     "gradient ascent", callbacks, progress, _stop(forget, stop_at))


class AgreementTracker:
    """A ``fit`` callback: every ``every`` steps, the agreement of the model being trained with ``reference``
    on each named image set (``sets``: name -> images). ``rows``: dicts with step, set, agreement."""

    def __init__(self, reference, sets: dict, attr: str = "shape", every: int = 1):
        self.sets, self.attr, self.every = sets, attr, every
        self.targets = {name: reference.logits(images)[attr].argmax(-1) for name, images in sets.items()}
        self.rows: list[dict] = []

    @torch.no_grad()
    def record(self, model, step: int) -> None:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        for name, images in self.sets.items():
            pred = model(images.to(device))[self.attr].argmax(-1).cpu()  # call it: it may be wrapped
            agreement = float((pred == self.targets[name]).float().mean())
            self.rows.append({"step": step, "set": name, "agreement": agreement})
        model.train(was_training)

    def on_step_end(self, state: dict) -> None:
        if state["step"] % self.every == 0:
            self.record(state["model"], state["step"])


def agreement_curve(method, model, forget: dict, retain: dict, reference, sets: dict, *, points: int = 20,
                    **hparams):
    """Run ``method`` (e.g. :func:`gradient_ascent`) and record its agreement with ``reference`` on ``sets``
    about ``points`` times, step 0 included. Returns (DataFrame step/set/agreement, :class:`UnlearnResult`)."""
    import pandas as pd

    tracker = AgreementTracker(reference, sets, every=max(1, hparams.get("num_steps", 50) // points))
    tracker.record(model, 0)
    result = method(model, forget, retain, callbacks=[tracker], **hparams)
    return pd.DataFrame(tracker.rows), result


# -- SISA ------------------------------------------------------------------------------------------

def assign_shards(indices, num_shards: int, seed: int = 0, keep_together=()) -> list[np.ndarray]:
    """Split ``indices`` into ``num_shards`` shards at random; each group in ``keep_together`` (e.g. one
    user's images) lands whole in one shard, as when a service shards its data by user."""
    rng = np.random.default_rng([seed, 2])
    indices = np.asarray(indices)
    groups = [np.intersect1d(np.asarray(g), indices) for g in keep_together]
    grouped = np.concatenate(groups) if groups else np.array([], dtype=indices.dtype)
    units = [g for g in groups if len(g)] + [np.array([i]) for i in np.setdiff1d(indices, grouped)]
    shards: list[list] = [[] for _ in range(num_shards)]
    for u in sorted((units[j] for j in rng.permutation(len(units))), key=len, reverse=True):
        min(shards, key=len).extend(u.tolist())  # largest units first, each into the smallest shard
    return [np.sort(np.asarray(s, dtype=np.int64)) for s in shards]


def shards_to_retrain(shards: list, forget) -> list[int]:
    """The numbers of the shards that hold at least one of the ``forget`` indices."""
    forget = np.asarray(forget)
    return [j for j, s in enumerate(shards) if np.isin(s, forget).any()]


class SISAEnsemble(nn.Module, JudgeMethods):
    """The SISA shard models as one judge: the aggregate is a soft vote (mean of the shard probabilities)."""

    def __init__(self, models: list):
        super().__init__()
        self.members = nn.ModuleList(models)
        self.classes = models[0].classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = [m(x) for m in self.members]
        return {k: torch.stack([o[k].softmax(-1) for o in outs]).mean(0).clamp_min(1e-12).log() for k in outs[0]}


class SISA:
    """Sharded, isolated training (SISA, Bourtoule et al. 2021) of the shape judge; notebook 01 and 07.

    ``num_shards`` judges, each trained from scratch on its own shard for ``shard_steps`` steps (default:
    as many as the full judge; a small shard needs nearly as many steps to learn shapes). The aggregate
    (:attr:`model`) is a soft vote. ``unlearn(forget)`` removes the examples and retrains only the shards
    that held them: the result is exactly the SISA model trained without them. (No slices or
    checkpoints here: see notebook 07.) ``shard_trainings`` counts every shard training since construction.
    """

    def __init__(self, shapes, indices, num_shards: int, preset: dict, *, shard_steps: int | None = None,
                 seed: int = 0, keep_together=(), device=None, progress: bool = True):
        self.images, self.labels = shapes.images, shapes.labels
        self.preset, self.seed, self.device, self.progress = dict(preset), seed, device, progress
        self.shard_steps = shard_steps or preset["num_steps"]
        self.shards = assign_shards(indices, num_shards, seed, keep_together)
        self.models: list = [None] * num_shards
        self.shard_trainings = 0
        self.seconds = 0.0
        for j in range(num_shards):
            self._train_shard(j)

    @classmethod
    def for_runtime(cls, shapes, rt, keep_together=(), num_shards: int | None = None) -> "SISA":
        """SISA on ``shapes.train`` with the judge's preset and the mode's number of shards."""
        hp = hparams(rt, "sisa")
        return cls(shapes, shapes.train, num_shards or hp["num_shards"], rt.preset(JUDGE_PRESETS),
                   shard_steps=hp["shard_steps"], seed=rt.seed, keep_together=keep_together, device=rt.device)

    def _train_shard(self, j: int) -> None:
        start = time.perf_counter()
        self.models[j] = train_judge(self.images, self.labels, self.shards[j], self.preset, seed=self.seed + j,
                                     num_steps=self.shard_steps, device=self.device, desc=f"SISA shard {j}",
                                     progress=self.progress)
        self.shard_trainings += 1
        self.seconds += time.perf_counter() - start

    def unlearn(self, forget) -> list[int]:
        """Delete ``forget`` (dataset indices) and retrain the shards that held them; returns their numbers."""
        touched = shards_to_retrain(self.shards, forget)
        for j in touched:
            self.shards[j] = np.setdiff1d(self.shards[j], np.asarray(forget))
            self._train_shard(j)
        return touched

    @property
    def model(self) -> SISAEnsemble:
        """The aggregated judge (shares the shard models' weights)."""
        return SISAEnsemble(self.models)
