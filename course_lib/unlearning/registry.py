"""One entry point for every unlearning method: ``cl.unlearn`` and the registry ``cl.METHODS`` (notebook 03).

Every method is a function ``method(model, forget, retain, ctx, **hparams) -> Outcome`` registered with
:func:`register`, which records what the method is: its family in the survey's taxonomy (Liu et al.
2024, sec. 4), the modality it applies to, the paper it comes from, and its hyper-parameters with
defaults and slider ranges (the widgets of notebook 05 are built from them).

:func:`unlearn` checks the request (known method and hyper-parameters, non-empty and disjoint forget
and retain sets, a model of the right kind), clones the model (the base model is never modified in
place), runs the method and returns an :class:`UnlearnResult`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# The survey's taxonomy (Liu et al. 2024, sec. 4) plus the contrasts the course adds.
FAMILIES = {
    "gradient-based": "update the weights with gradients of a forget (and retain) loss",
    "preference": "gradient-based, with a preference-style loss (NPO, DPO, refusals)",
    "representation": "steer internal activations on forget inputs (RMU)",
    "task vector": "arithmetic in weight space: subtract what fine-tuning on the forget set added",
    "parameter-efficient": "train a small module (LoRA) that carries the unlearning",
    "data sharding": "exact: train per shard, retrain only the shards that held the forget data",
    "exact": "exact: retrain from scratch without the forget data",
    "in-context": "no weight change: instructions or demonstrations in the prompt",
    "suppression": "no weight change: a guardrail filters or refuses outputs",
    "concept erasure": "diffusion models: change how a concept is generated (ESD, concept ablation, SalUn)",
    "single layer": "SLUG: one gradient, one layer, one step",
}
MODALITIES = ("text", "clip", "t2i")


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter: its default, the range a slider offers (``low``..``high``) and its kind.

    ``kind``: ``"float"``, ``"int"``, ``"bool"`` or ``"choice"`` (then ``choices``); ``log``: a log-scale
    slider. ``low``/``high`` are suggestions; only values outside ``bounds`` (hard limits) are errors.
    """

    default: Any
    low: float | None = None
    high: float | None = None
    kind: str = "float"
    log: bool = False
    choices: tuple = ()
    help: str = ""
    bounds: tuple = (None, None)

    def check(self, name: str, value, method: str):
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{method}: {name}={value!r}; allowed values: {', '.join(map(repr, self.choices))}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{method}: {name} must be True or False, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{method}: {name} must be a number, got {value!r}")
        if self.kind == "int":
            if float(value) != int(value):
                raise TypeError(f"{method}: {name} must be a whole number, got {value!r}")
            value = int(value)
        value_f = float(value)
        lo, hi = self.bounds
        if lo is None and self.log:
            lo = 0.0
        if not math.isfinite(value_f) or (lo is not None and value_f < lo) or (hi is not None and value_f > hi) \
                or (self.log and value_f <= 0):
            rng = f"> 0" if self.log else f"in [{lo}, {hi}]"
            raise ValueError(f"{method}: {name}={value!r} is out of bounds; it must be {rng} "
                             f"(the usual range is {self.low}..{self.high})")
        return value


@dataclass(frozen=True)
class MethodInfo:
    """What a registered method is: ``cl.METHODS[name]``."""

    name: str
    fn: Callable = field(repr=False)
    family: str
    modality: str | tuple
    paper: str
    hparams: dict
    summary: str = ""
    changes_weights: bool = True

    @property
    def modalities(self) -> tuple:
        """The modalities this method applies to (``modality`` may name one or a tuple)."""
        return (self.modality,) if isinstance(self.modality, str) else tuple(self.modality)

    def defaults(self) -> dict:
        return {k: h.default for k, h in self.hparams.items()}

    def describe(self) -> str:
        """The docstring of the method (its loss written out)."""
        return (self.fn.__doc__ or "").strip()


METHODS: dict[str, MethodInfo] = {}


def register(name: str, *, family: str, modality: str, paper: str, hparams: dict, summary: str = "",
             changes_weights: bool = True):
    """Decorator: add ``fn(model, forget, retain, ctx, **hparams) -> Outcome`` to :data:`METHODS`."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}; allowed values: {', '.join(FAMILIES)}")
    for m in (modality,) if isinstance(modality, str) else modality:
        if m not in MODALITIES:
            raise ValueError(f"modality={m!r}; allowed values: {', '.join(MODALITIES)}")

    def deco(fn):
        METHODS[name] = MethodInfo(name, fn, family, modality, paper, dict(hparams), summary, changes_weights)
        return fn
    return deco


@dataclass
class Context:
    """What :func:`unlearn` hands every method besides the data: the untouched base model (a frozen
    reference for KL / NPO / RMU), the seed, whether to draw progress bars, training callbacks."""

    base: Any
    rt: Any = None
    seed: int = 0
    progress: bool = True
    callbacks: tuple = ()
    eval_every: int = 0
    eval_fn: Callable | None = None


@dataclass
class Outcome:
    """What a method function returns: the unlearned model, its per-step history and extras."""

    model: Any
    history: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)


@dataclass
class UnlearnResult:
    """What :func:`unlearn` returns. ``history``: one dict per step (``forget_loss``, ``retain_loss``, ...)."""

    model: Any
    method: str
    hparams: dict
    history: list
    seconds: float
    extras: dict = field(default_factory=dict)

    def history_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history)

    def __repr__(self) -> str:
        return (f"UnlearnResult(method={self.method!r}, steps={len(self.history)}, seconds={self.seconds:.1f}, "
                f"hparams={self.hparams})")


def _ids(items) -> list | None:
    if hasattr(items, "ids"):
        return list(items.ids)
    try:
        import numpy as np

        arr = np.asarray(items)
        if arr.ndim == 1 and arr.dtype.kind in "iu":
            return arr.tolist()
    except Exception:  # noqa: BLE001 - anything that is not an index array has no ids to compare
        pass
    return None


def check_sets(forget, retain, method: str = "unlearn"):
    """Raise a clear error for an empty forget set or forget / retain sets that overlap."""
    if forget is None or len(forget) == 0:
        raise ValueError(f"{method}: the forget set is empty; pass the examples to forget, "
                         "e.g. forget=split.forget")
    if retain is not None:
        f_ids, r_ids = _ids(forget), _ids(retain)
        if f_ids is not None and r_ids is not None:
            shared = sorted(set(f_ids) & set(r_ids), key=str)
            if shared:
                raise ValueError(f"{method}: the forget and retain sets overlap in {len(shared)} examples "
                                 f"(e.g. {shared[:3]}); an example cannot be both forgotten and retained")


def _model_modality(model) -> str:
    from ..models.lm import TextModel

    if getattr(model, "modality", None):
        return model.modality
    if isinstance(model, TextModel) or hasattr(model, "answer"):
        return "text"
    return type(model).__name__


def resolve(method: str) -> MethodInfo:
    """The :class:`MethodInfo` for ``method``, or a ValueError listing the known names."""
    _import_methods()
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a known unlearning method; allowed values: "
                         f"{', '.join(sorted(METHODS))}")
    return METHODS[method]


def unlearn(model, forget, retain=None, method: str = "grad_diff", *, rt=None, seed: int = 0, progress: bool = True,
            callbacks=(), eval_every: int = 0, eval_fn: Callable | None = None, cache: bool = False,
            **hparams) -> UnlearnResult:
    """Unlearn ``forget`` from a copy of ``model`` with ``method`` (a key of ``cl.METHODS``).

    ``retain``: what must be kept (retain-aware methods use it; others ignore it). ``hparams``: the
    method's hyper-parameters (``cl.METHODS[method].hparams`` lists them with defaults and ranges).
    ``eval_every``/``eval_fn``: call ``eval_fn(model)`` (a dict of numbers) every that many steps and
    add it to the history (notebook 03's curves). ``rt``: the Runtime, for methods that train from
    scratch (``retrain``, ``sisa``). The base model is never modified.
    ``cache=True`` (needs ``rt``): keep the trained text model in ``rt.cache_dir`` and load it when the same
    request comes again, e.g. from the next notebook (:mod:`course_lib.unlearning.result_cache`, notebooks 08-13).
    """
    info = resolve(method)
    unknown = sorted(set(hparams) - set(info.hparams))
    if unknown:
        raise TypeError(f"{method}: unknown hyper-parameter(s) {unknown}; allowed: "
                        f"{', '.join(f'{k} (default {h.default!r})' for k, h in info.hparams.items()) or 'none'}")
    values = info.defaults()
    for k, v in hparams.items():
        values[k] = info.hparams[k].check(k, v, method)
    check_sets(forget, retain, method)
    kind = _model_modality(model)
    if kind not in info.modalities:
        raise TypeError(f"{method} unlearns {info.modality} models but got a {kind} model ({type(model).__name__}); "
                        f"methods for it: {', '.join(sorted(n for n, m in METHODS.items() if kind in m.modalities))}")
    key = None
    if cache:
        if rt is None:
            raise ValueError("cache=True needs rt= (the Runtime whose cache_dir keeps the result)")
        from . import result_cache
        if not callbacks and eval_fn is None:
            key = result_cache.cache_key(model, forget, retain, method, values, seed)
        if key is not None:
            hit = result_cache.load(rt, key)
            if hit is not None:
                hit.model.to(model.device)
                return hit
    ctx = Context(base=model, rt=rt, seed=seed, progress=progress, callbacks=tuple(callbacks), eval_every=eval_every,
                  eval_fn=eval_fn)
    work = model.clone()
    start = time.perf_counter()
    out = info.fn(work, forget, retain, ctx, **values)
    if not isinstance(out, Outcome):
        out = Outcome(out)
    result = UnlearnResult(out.model, method, values, out.history, time.perf_counter() - start, out.extras)
    if key is not None:
        result_cache.save(rt, key, result)
    return result


_IMPORTED = False


def _import_methods():
    """Import every method module (each registers its methods); optional ones may be missing."""
    global _IMPORTED
    if _IMPORTED:
        return
    import importlib

    for mod in ("gradient", "preference", "representation", "weights", "exact", "suppression",
                "diffusion", "slug", "clip_methods"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise
    _IMPORTED = True


class _Methods(dict):
    """``cl.METHODS``: the registry, filled on first use (so that importing course_lib stays quick)."""

    def _fill(self):
        _import_methods()
        if dict.__len__(self) != len(METHODS):
            self.clear()
            self.update(METHODS)

    def __getitem__(self, k):
        self._fill()
        if k not in METHODS:
            resolve(k)
        return dict.__getitem__(self, k)

    def __iter__(self):
        self._fill()
        return dict.__iter__(self)

    def __len__(self):
        self._fill()
        return dict.__len__(self)

    def __contains__(self, k):
        self._fill()
        return dict.__contains__(self, k)

    def keys(self):
        self._fill()
        return dict.keys(self)

    def items(self):
        self._fill()
        return dict.items(self)

    def values(self):
        self._fill()
        return dict.values(self)

    def __repr__(self):
        self._fill()
        return "METHODS(" + ", ".join(f"{k}: {v.family}/{v.modality}" for k, v in self.items()) + ")"


PUBLIC_METHODS = _Methods()


def table():
    """The registry as a DataFrame: name, family, modality, paper, hyper-parameters (notebook 03)."""
    import pandas as pd

    _import_methods()
    return pd.DataFrame([{"method": m.name, "family": m.family, "modality": m.modality, "paper": m.paper,
                          "hyper-parameters": ", ".join(f"{k}={h.default!r}" for k, h in m.hparams.items()),
                          "changes weights": m.changes_weights}
                         for m in METHODS.values()]).set_index("method")
