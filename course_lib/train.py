"""The kit's one training loop (notebook 02 trains the people LM with it; every unlearning method reuses it).

It knows nothing about the model: it takes a model, a dataset, a ``loss_fn(model, batch)`` and a
:class:`TrainConfig`. Notebooks hook in through callbacks (a live loss plot), never by editing the loop.
Runs on `accelerate`: device placement, bf16 mixed precision on a GPU, and several processes or GPUs
through ``accelerate launch`` with no code change.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the weights were ruined further."""


class StopTraining(Exception):
    """Raise from a callback (or return ``"stop"``) to end training early and keep the result so far."""


@dataclass
class TrainConfig:
    """How long and how hard to train. ``num_steps`` optimizer steps of ``batch_size`` examples."""

    num_steps: int = 500
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"  # "cosine" (to 10 % of lr) or "constant"
    grad_clip: float | None = 1.0
    mixed_precision: str = "auto"  # "auto": bf16 on a GPU that has it, else full precision
    seed: int = 0
    desc: str = "train"
    progress: bool = True  # a tqdm bar; KIT_PROGRESS=0 turns every bar off (benchmarks, logs)
    log_every: int = 10

    def __post_init__(self):
        if self.num_steps < 0:
            raise ValueError(f"num_steps must be >= 0, got {self.num_steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule={self.schedule!r}; allowed values: 'cosine', 'constant'")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; allowed values: auto, no, bf16, fp16")


@dataclass
class TrainResult:
    """What :func:`fit` returns: one dict per step (``step``, ``loss``, ``lr`` and anything the loss logged)."""

    history: list = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    examples: int = 0
    stopped_early: bool = False


class GroupedBatches:
    """Seeded batches that never mix groups (e.g. short and long examples): less padding per batch.

    ``groups``: one group label per example. Each pass shuffles the examples within each group, cuts
    them into batches of ``batch_size`` and shuffles the order of all batches.
    """

    def __init__(self, groups, batch_size: int, seed: int = 0):
        self.groups = list(groups)
        self.batch_size = batch_size
        self.rng = torch.Generator().manual_seed(seed + 104729)

    def _batches(self):
        by_group: dict = {}
        for i, g in enumerate(self.groups):
            by_group.setdefault(g, []).append(i)
        batches = []
        for g in sorted(by_group, key=str):
            idx = by_group[g]
            order = torch.randperm(len(idx), generator=self.rng).tolist()
            batches += [[idx[j] for j in order[s:s + self.batch_size]] for s in range(0, len(idx), self.batch_size)]
        return [batches[j] for j in torch.randperm(len(batches), generator=self.rng).tolist()]

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        counts: dict = {}
        for g in self.groups:
            counts[g] = counts.get(g, 0) + 1
        return sum(-(-c // self.batch_size) for c in counts.values())


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant" or cfg.num_steps <= cfg.warmup_steps:
            return 1.0
        t = (step - cfg.warmup_steps) / max(1, cfg.num_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def make_accelerator(device=None, mixed_precision: str = "auto"):
    """An ``accelerate.Accelerator`` for ``device`` (None: what accelerate finds, e.g. under ``accelerate launch``)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # On a machine without CUDA the loop runs on CPU processes, also under `accelerate launch`
    # (torchrun with the gloo backend: accelerate then reports MULTI_CPU).
    cpu = (device is not None and torch.device(device).type == "cpu") or not torch.cuda.is_available()
    if mixed_precision == "auto":
        use_bf16 = (not cpu) and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        mixed_precision = "bf16" if use_bf16 else "no"
    # A notebook may call fit() with different precisions; the shared state must not pin the first one.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision)


def _as_float(v: Any) -> float:
    return float(v.detach().float().item()) if torch.is_tensor(v) else float(v)


def _call(callback, state: dict):
    fn = getattr(callback, "on_step_end", callback)
    return fn(state)


def fit(model: torch.nn.Module, dataset, loss_fn: Callable[[torch.nn.Module, Any], Any],
        config: TrainConfig | None = None, *, collate_fn: Callable | None = None,
        callbacks: Iterable = (), params: Iterable[torch.nn.Parameter] | None = None,
        device=None, batch_sampler=None) -> TrainResult:
    """Train ``model`` in place for ``config.num_steps`` steps and return a :class:`TrainResult`.

    ``dataset``: a map-style dataset (or list); batches are drawn by a seeded shuffling DataLoader and
    the data is cycled as often as the steps need. ``loss_fn(model, batch)`` returns a loss tensor or a
    dict with ``"loss"`` and extra numbers to log. ``params``: the parameters to update (default: all
    that require grad). ``callbacks``: callables or objects with ``on_step_end(state)``; one may return
    ``"stop"``. A NaN/inf loss raises :class:`NonFiniteLossError` naming the learning rate.
    ``batch_sampler``: an iterable of index lists that replaces the shuffling sampler (e.g. batches
    grouped by length, :class:`GroupedBatches`).
    """
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    if len(dataset) == 0:
        raise ValueError("dataset is empty: there is nothing to train on")
    acc = make_accelerator(device, cfg.mixed_precision)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: every parameter has requires_grad=False")
    g = torch.Generator().manual_seed(cfg.seed)
    if batch_sampler is not None:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=collate_fn)
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True,
                                             generator=g, collate_fn=collate_fn, drop_last=False)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    model, opt, loader = acc.prepare(model, opt, loader)
    # The scheduler is stepped by hand once per optimizer step: no accelerate wrapping needed.
    model.train()
    result = TrainResult()
    bar = tqdm(total=cfg.num_steps, desc=cfg.desc, disable=not cfg.progress or os.environ.get("KIT_PROGRESS") == "0"
               or not acc.is_local_main_process,
               leave=False)
    start = time.perf_counter()
    step = 0
    try:
        while step < cfg.num_steps:
            for batch in loader:
                if step >= cfg.num_steps:
                    break
                with acc.autocast():
                    out = loss_fn(model, batch)
                logs = dict(out) if isinstance(out, dict) else {"loss": out}
                loss = logs["loss"]
                if not torch.isfinite(loss.detach()).all():
                    raise NonFiniteLossError(
                        f"{cfg.desc}: the loss became {loss.item()} at step {step}; training stopped. "
                        f"The learning rate lr={cfg.lr:g} is probably too large: try a smaller lr (e.g. {cfg.lr / 10:g}).")
                opt.zero_grad(set_to_none=True)
                acc.backward(loss)
                if cfg.grad_clip:
                    acc.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                sched.step()
                record = {"step": step, "lr": sched.get_last_lr()[0]}
                record.update({k: _as_float(v) for k, v in logs.items()})
                result.history.append(record)
                result.examples += len(next(iter(batch.values()))) if isinstance(batch, dict) else cfg.batch_size
                step += 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.num_steps:
                    bar.set_postfix(loss=f"{record['loss']:.3f}")
                state = {"step": step, "loss": record["loss"], "record": record, "history": result.history,
                         "model": model, "config": cfg}
                if any(_call(cb, state) == "stop" for cb in callbacks):
                    raise StopTraining
    except StopTraining:
        result.stopped_early = True
    finally:
        bar.close()
    model.eval()
    acc.wait_for_everyone()
    result.seconds = time.perf_counter() - start
    result.steps = step
    return result
