"""The trade-off sweep behind notebook 05's explorer: every method on a small grid of hyper-parameters,
measured every few steps, computed once and cached on disk per mode.

One run per grid setting gives the whole trajectory: measuring every ``eval_every`` steps makes each
checkpoint a point of its own (the same run at 20, 40, ... steps), so the number of steps costs nothing
extra to sweep. A point is ``forget_acc`` (lower = more forgotten), ``retain_acc`` (utility) and
``unseen_forget_acc`` (paraphrased forget questions), plus the answers to a few sample questions.

The cache file is JSON under ``<cache>/sweeps/``, written atomically; its key names the mode, the base
model's weights (a digest), the split, the grid and the schedule. A corrupt or mismatched file is
reported and recomputed, never used.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SWEEP_VERSION = 2
# Hyper-parameters swept besides the learning rate: the first of these a method has (its trade-off knob).
TRADEOFF_KNOBS = ("retain_weight", "beta")


@dataclass(frozen=True)
class SweepPreset:
    """What a sweep covers in one mode: methods, grid points per knob, steps, and how often to measure."""

    methods: tuple
    points: int  # grid values per swept knob
    num_steps: int
    eval_every: int
    retain_sample: int  # retain questions measured (a fixed seeded sample)
    knobs: int = 2  # 1: the learning rate only; 2: also the method's trade-off knob
    values: dict = field(default_factory=dict)  # knob -> grid values, instead of grid_values() (any method)


# Cost on 2 cores: fast 6 runs x 30 steps; default 10 runs x 200 steps (bench/RESULTS.md, notebook 05).
# The retain weights are notebook 03's (10 held NPO's retain accuracy within 7 points at forget 0.13).
RETAIN_WEIGHTS = {"retain_weight": [1.0, 10.0]}
SWEEP_PRESETS = {
    # fast: default's model (issue 14), two methods, fewer steps and retain questions
    "fast": SweepPreset(("ga", "npo"), points=2, num_steps=150, eval_every=50, retain_sample=100,
                        values={"lr": [1e-3, 3e-3], **RETAIN_WEIGHTS}),
    "default": SweepPreset(("ga", "grad_diff", "npo"), points=2, num_steps=200, eval_every=25, retain_sample=300,
                           values={"lr": [1e-3, 3e-3], **RETAIN_WEIGHTS}),
    "full": SweepPreset(("ga", "grad_diff", "npo", "simnpo"), points=3, num_steps=300, eval_every=25,
                        retain_sample=600, values={"retain_weight": [1.0, 5.0, 10.0]}),
}


def grid_values(h, n: int) -> list:
    """``n`` values of hyper-parameter ``h`` (an HParam), always including its default (so the explorer opens on
    a point of the sweep): a log knob also default/3 (and 3x the default for n = 3), within the slider range;
    a linear knob the top of its range (and the bottom for n = 3). Two significant digits, for the readout."""
    if n <= 1:
        return [h.default]
    if h.log:  # default/3 and the default (n = 2); default/3, default, 3x default (n = 3)
        vals = [h.default * f for f in ((1 / 3, 1) if n == 2 else np.geomspace(1 / 3, 3, n))]
        vals = [min(max(v, h.low or v), h.high or v) for v in vals]
    else:  # the default and the top of the range (n = 2); the bottom too (n = 3)
        vals = [h.default, h.high] if n == 2 else sorted({h.low, h.default, h.high} | set(np.linspace(h.low, h.high, n)))[:n]
    out = [float(f"{v:.2g}") for v in vals]
    return [int(v) for v in out] if h.kind == "int" else out


def sweep_grid(method: str, points: int, knobs: int = 2, values: dict | None = None) -> dict[str, list]:
    """The grid of ``method``: ``lr`` and (``knobs=2``) its trade-off knob, ``points`` values each, or the
    values named in ``values`` (knob -> list)."""
    from ..unlearning.registry import resolve

    info, values = resolve(method), values or {}
    names = ["lr"] + ([next((k for k in TRADEOFF_KNOBS if k in info.hparams), None)] if knobs > 1 else [])
    return {k: list(values.get(k) or grid_values(info.hparams[k], points)) for k in names
            if k is not None and k in info.hparams}


def weights_digest(model) -> str:
    """A sha256 over the model's weights (names and bytes): the sweep cache's identity of the base model."""
    import torch

    net = getattr(model, "model", model)
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class Sweep:
    """A computed sweep: ``points`` (one dict per method x setting x checkpoint), ``landmarks`` (base, gold),
    ``questions`` (the sample questions) and ``answers`` (point id -> answers to them)."""

    key: dict
    points: list
    landmarks: dict
    questions: list
    answers: dict
    seconds: float
    from_cache: bool = False
    grids: dict = field(default_factory=dict)

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.points)

    def of(self, method: str) -> list:
        return [p for p in self.points if p["method"] == method]


def sample_questions(split, per_set: int = 2, seed: int = 0) -> list[dict]:
    """A few questions shown with their answers: ``per_set`` from forget, retain and unseen forget."""
    out = []
    for name in ("forget", "retain", "unseen_forget"):
        qs = getattr(split, name)
        for qa in qs.sample(min(per_set, len(qs)), seed=seed):
            out.append({"set": name.replace("_", " "), "question": qa.question, "expected": qa.answer,
                        "context": qa.context})
    return out


def _answers(model, questions) -> list[str]:
    return [str(a) for a in model.answer([q["question"] for q in questions])]


def measure_fn(split, retain_sample: int, seed: int = 0):
    """forget / retain / unseen-forget accuracy (the retain set as a fixed seeded sample)."""
    from ..evaluation.objectives import tracker

    return tracker(split, retain_sample=retain_sample, seed=seed)


def run_setting(model, split, method: str, values: dict, *, num_steps: int, eval_every: int, measure, questions,
                seed: int = 0, callbacks=()) -> tuple[list, list]:
    """Unlearn with one setting, measuring every ``eval_every`` steps: ``(points, answers)`` per checkpoint."""
    from ..unlearning.registry import unlearn

    said = []

    def eval_fn(m):
        said.append(_answers(m, questions))
        return measure(m)

    res = unlearn(model, split.forget, split.retain, method=method, seed=seed, progress=False, callbacks=callbacks,
                  eval_every=eval_every, eval_fn=eval_fn, num_steps=num_steps, **values)
    # Measured before the first step (the base model: left out) and after every eval_every steps.
    recs = [(r, a) for r, a in zip((r for r in res.history if "forget_acc" in r), said) if r["step"] > 0]
    points = [{"method": method, **values, "num_steps": int(r["step"]),
               **{k: float(r[k]) for k in ("forget_acc", "retain_acc", "unseen_forget_acc")}} for r, _ in recs]
    return points, [a for _, a in recs]


def point_id(p: dict) -> str:
    knobs = ",".join(f"{k}={p[k]}" for k in sorted(p) if k not in ("forget_acc", "retain_acc", "unseen_forget_acc",
                                                                     "live", "id", "seconds", "answers"))
    return knobs


def sweep_key(model, split, preset: SweepPreset, methods, mode: str, seed: int) -> dict:
    """What the cache file must have been made for (JSON-normalised: tuples become lists, as in the file)."""
    return json.loads(json.dumps({"version": SWEEP_VERSION, "mode": mode, "model": weights_digest(model), "split": split.name,
            "forget": split.forget.fingerprint(), "methods": list(methods),
            "grids": {m: sweep_grid(m, preset.points, preset.knobs, preset.values) for m in methods},
            "preset": asdict(preset), "seed": seed}))


def _cache_path(cache_dir: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / "sweeps" / f"{key.get('kind', 'tradeoff')}-{digest}.json"


def _read(path: Path, key: dict, measures=("forget_acc", "retain_acc", "unseen_forget_acc")) -> dict | None:
    """The cached sweep at ``path`` if it is whole and made for ``key``; None (with a warning) otherwise."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("key") != key:
            raise ValueError("its key does not match this model / split / grid")
        for p in data["points"]:
            if not all(np.isfinite(p[k]) for k in measures):
                raise ValueError("it holds a non-finite accuracy")
        return data
    except (ValueError, KeyError, TypeError) as err:
        warnings.warn(f"the cached sweep {path} is unusable ({err}); it is recomputed", stacklevel=3)
        return None


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is shared like the zoo's models
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compute_sweep(model, split, *, rt=None, methods=None, reference=None, preset: SweepPreset | None = None,
                  seed: int = 0, cache: bool = True, progress: bool = True) -> Sweep:
    """Run (or load from the cache) the sweep of ``methods`` on ``model`` for ``split``; ``reference`` (the gold
    model) is measured as a landmark. ``preset``: default :data:`SWEEP_PRESETS` for ``rt.mode``."""
    from ..runtime import default_cache_dir
    from ..unlearning.registry import resolve

    mode = getattr(rt, "mode", "default")
    preset = preset or SWEEP_PRESETS[mode]
    methods = tuple(methods or preset.methods)
    if not methods:
        raise ValueError("methods is empty; name at least one, e.g. methods=['npo']")
    for m in methods:
        info = resolve(m)
        if "text" not in info.modalities or "num_steps" not in info.hparams:
            raise ValueError(f"method={m!r} cannot be swept: the trade-off explorer needs a text method trained "
                             "for num_steps (e.g. 'ga', 'grad_diff', 'npo', 'simnpo')")
    if preset.num_steps % preset.eval_every:
        raise ValueError(f"num_steps={preset.num_steps} must be a multiple of eval_every={preset.eval_every}")
    key = sweep_key(model, split, preset, methods, mode, seed)
    path = _cache_path(getattr(rt, "cache_dir", None) or default_cache_dir(), key)
    measure = measure_fn(split, preset.retain_sample, seed)
    questions = sample_questions(split, seed=seed)
    data = _read(path, key) if cache else None
    if data is not None:
        sweep = Sweep(key, data["points"], data["landmarks"], data["questions"], data["answers"], data["seconds"], True)
    else:
        sweep = _run(model, split, key, methods, preset, measure, questions, seed, progress)
        if cache:
            _write(path, {"key": key, "points": sweep.points, "landmarks": sweep.landmarks,
                          "questions": sweep.questions, "answers": sweep.answers, "seconds": sweep.seconds})
    if reference is not None and "gold" not in sweep.landmarks:
        sweep.landmarks["gold"] = {**measure(reference), "answers": _answers(reference, questions)}
    sweep.grids = key["grids"]
    return sweep


def _run(model, split, key, methods, preset, measure, questions, seed, progress) -> Sweep:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    settings = [(m, dict(zip(key["grids"][m], combo))) for m in methods
                for combo in itertools.product(*key["grids"][m].values())]
    points, answers = [], {}
    bar = tqdm(settings, desc="trade-off sweep (once; cached)", disable=not progress or os.environ.get("KIT_PROGRESS") == "0")
    for method, values in bar:
        bar.set_postfix_str(f"{method} {values}")
        pts, said = run_setting(model, split, method, values, num_steps=preset.num_steps, eval_every=preset.eval_every,
                                measure=measure, questions=questions, seed=seed)
        for p, a in zip(pts, said):
            p["id"] = point_id(p)
            answers[p["id"]] = a
        points += pts
    landmarks = {"base": {**measure(model), "answers": _answers(model, questions)}}
    return Sweep(key, points, landmarks, questions, answers, time.perf_counter() - start)


def pareto_front(points: list) -> list:
    """The points no other point beats on both axes (lower ``forget_acc`` and higher ``retain_acc``), sorted by
    ``forget_acc``: the best trade-offs a method offers."""
    f = np.array([p["forget_acc"] for p in points])
    r = np.array([p["retain_acc"] for p in points])
    keep = [i for i in range(len(points))
            if not np.any((f <= f[i]) & (r >= r[i]) & ((f < f[i]) | (r > r[i])))]
    return sorted((points[i] for i in keep), key=lambda p: (p["forget_acc"], -p["retain_acc"]))


def front_area(points: list) -> float:
    """The area the front dominates in the unit square, from the worst corner (forget 1, retain 0): one number
    for "whose Pareto front is better" (a hypervolume; larger is better)."""
    area, prev_r = 0.0, 0.0
    # Along the retain axis: at heights between the previous front point's retain and this one's, the front
    # reaches down to this point's forget accuracy (on a front, forget rises with retain).
    for p in sorted(pareto_front(points), key=lambda p: p["retain_acc"]):
        area += (1 - p["forget_acc"]) * max(0.0, p["retain_acc"] - prev_r)
        prev_r = max(prev_r, p["retain_acc"])
    return float(area)
