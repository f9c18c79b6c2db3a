"""The diffusion erasure explorer of notebook 05 (and 09): choose the method, its strength and the number of
steps, and see samples for the erased concept and for a neighbour concept, with the judge's verdicts.

As for the trade-off explorer, the controls answer from a sweep computed once per mode and cached on disk
(:mod:`.sweep`'s cache helpers): one run per (method, strength), measured every ``eval_every`` steps on fixed
prompts and seeds: images of the erased concept and of a neighbour (``"circle"`` -> ``"square"``), and the
judge's UnlearnCanvas-style rates on them: unlearning accuracy (UA: the concept no longer recognised),
in-domain retain (IRA: the neighbour still recognised), cross-domain retain (CRA: the other attribute of the
concept's samples, e.g. their colour, still right).
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .base import Explorer, new_figure, table_html
from .controls import control_for, widen
from .sweep import _cache_path, _read, _write, weights_digest

# Each method's strength knob (its hyper-parameter that sets how hard the concept is pushed away).
STRENGTH = {"esd": "negative_guidance", "concept_ablation": "lr", "salun": "saliency_fraction"}
NEIGHBOUR = {"circle": "square", "square": "circle", "triangle": "square", "red": "purple", "purple": "red",
             "blue": "green", "green": "blue"}


@dataclass(frozen=True)
class ErasurePreset:
    methods: tuple
    strengths: dict  # method -> grid of its STRENGTH knob
    num_steps: int
    eval_every: int
    samples: int  # images per concept per checkpoint (the same prompts and seeds every time)
    hparams: dict = field(default_factory=dict)  # method -> other hyper-parameters (e.g. batch_size)
    forget_images: int | None = None  # forget images the methods see (None: all; fast mode's shorter run: fewer)


# ESD reads x_t from noised forget images (x_source="data"): about 4x cheaper per step on a CPU than the paper's
# partial generations, and the same target (notebook 09 measured both).
_ESD = {"x_source": "data", "lr": 3e-4}
_FAST_ERASURE = ErasurePreset(("esd", "salun"), {"esd": [1.0, 4.0], "salun": [0.5]}, num_steps=20, eval_every=10,
                              samples=6, hparams={"esd": {**_ESD, "lr": 1e-3}}, forget_images=96)
ERASURE_PRESETS = {
    # fast: the shipped model, 20 steps at a larger ESD learning rate than notebook 09's section 2, on 96 of the forget
    # images; default: the same sweep with twice the samples per point (its 50 steps at lr 3e-4 took 71 s of 338 s).
    "fast": _FAST_ERASURE,
    "default": replace(_FAST_ERASURE, samples=12),
    "full": ErasurePreset(("esd", "concept_ablation", "salun"),
                          {"esd": [1.0, 2.0, 4.0], "concept_ablation": [1e-4, 3e-4, 1e-3], "salun": [0.2, 0.5, 0.8]},
                          num_steps=200, eval_every=25, samples=32, hparams={"esd": {"x_source": "data", "lr": 1e-4}}),
}


def _encode(images) -> str:
    return base64.b64encode((images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).contiguous().numpy()
                            .tobytes()).decode()


def _decode(s: str, n: int, size: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.uint8).reshape(n, size, size, 3)


def measure_fn(judge, concept: str, neighbour: str, samples: int, seed: int = 0):
    """A closure ``measure(t2i) -> (rates, images)`` on fixed prompts and seeds."""
    from ..evaluation import image as I

    attr = I.attribute_of(concept)
    other = I.OTHER[attr]
    c_prompts, c_attrs = I.concept_prompts(concept, samples, seed)
    n_prompts, n_attrs = I.concept_prompts(neighbour, samples, seed + 1)

    def measure(t2i):
        imgs = t2i.generate(c_prompts + n_prompts, seed=seed)
        ci, ni = imgs[:samples], imgs[samples:]
        rates = {"UA": 1 - float(I.judged_as(judge, ci, attr, [a[attr] for a in c_attrs]).mean()),
                 "IRA": float(I.judged_as(judge, ni, attr, [a[attr] for a in n_attrs]).mean()),
                 "CRA": float(I.judged_as(judge, ci, other, [a[other] for a in c_attrs]).mean())}
        return rates, {"concept": _encode(ci), "neighbour": _encode(ni)}
    return measure


def compute_erasure_sweep(t2i, judge, data, concept: str, *, neighbour: str | None = None, rt=None,
                          preset: ErasurePreset | None = None, seed: int = 0, cache: bool = True,
                          progress: bool = True) -> dict:
    """Run (or load) the erasure sweep; returns ``{"key", "points", "images", "base", "seconds", "from_cache"}``."""
    from tqdm.auto import tqdm

    from ..runtime import default_cache_dir
    from ..unlearning.registry import unlearn

    from ..evaluation.image import attribute_of

    split = data.split(concept)  # an unknown concept is a clear error here
    neighbour = neighbour or NEIGHBOUR.get(concept)
    if neighbour is None or neighbour == concept or attribute_of(neighbour) != attribute_of(concept):
        raise ValueError(f"neighbour={neighbour!r}: name another value of the same attribute as concept={concept!r} "
                         f"(e.g. {NEIGHBOUR.get(concept, 'square')!r})")
    mode = getattr(rt, "mode", "default")
    preset = preset or ERASURE_PRESETS[mode]
    key = json.loads(json.dumps({"kind": "erasure", "version": 1, "mode": mode, "model": weights_digest(t2i.unet),
                                 "judge": weights_digest(judge), "concept": concept, "neighbour": neighbour,
                                 "preset": asdict(preset), "seed": seed}))
    path = _cache_path(getattr(rt, "cache_dir", None) or default_cache_dir(), key)
    data_cached = _read(path, key, measures=("UA", "IRA", "CRA")) if cache else None
    if data_cached is not None:
        return {**data_cached, "from_cache": True}
    measure = measure_fn(judge, concept, neighbour, preset.samples, seed)
    start = time.perf_counter()
    base_rates, base_images = measure(t2i)
    points, images = [], {"base": base_images}
    settings = [(m, v) for m in preset.methods for v in preset.strengths[m]]
    for method, value in tqdm(settings, desc="erasure sweep (once; cached)", disable=not progress):
        seen = []

        def eval_fn(model, seen=seen):
            rates, imgs = measure(model)
            seen.append(imgs)
            return rates
        forget = split.subset("forget", n=preset.forget_images, seed=seed)
        res = unlearn(t2i, forget, split.retain_set, method=method, seed=seed, progress=False,
                      eval_every=preset.eval_every, eval_fn=eval_fn, num_steps=preset.num_steps,
                      **{STRENGTH[method]: value}, **preset.hparams.get(method, {}))
        recs = [r for r in res.history if "UA" in r]
        for i, (r, imgs) in enumerate(zip(recs, seen)):
            p = {"method": method, "strength": value, "num_steps": preset.eval_every * (i + 1),
                 **{k: float(r[k]) for k in ("UA", "IRA", "CRA")}}
            p["id"] = f"{method}|{value}|{p['num_steps']}"
            points.append(p)
            images[p["id"]] = imgs
    out = {"key": key, "points": points, "images": images, "base": base_rates,
           "size": int(t2i.resolution),
           "seconds": time.perf_counter() - start}
    if cache:
        _write(path, out)
    return {**out, "from_cache": False}


class ErasureExplorer(Explorer):
    """Built by :func:`erasure_explorer`. ``state``: the selected point (method, strength, steps, UA/IRA/CRA)."""

    def __init__(self, sweep: dict, concept: str, neighbour: str):
        super().__init__()
        self.sweep, self.concept, self.neighbour = sweep, concept, neighbour
        self.preset = sweep["key"]["preset"]
        self.methods = list(self.preset["methods"])
        self.fig, self.axes = new_figure(2, width=9.5, height=3.6)
        self.fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, wspace=0.05)
        self.make_ui()
        self.update()

    def points(self, method: str | None = None) -> list:
        return [p for p in self.sweep["points"] if method is None or p["method"] == method]

    def compute(self, method: str, strength: float, num_steps: int) -> dict:
        """The swept point nearest to (strength, steps) for ``method`` (strength compared in log scale)."""
        pts = self.points(method)
        return min(pts, key=lambda p: (abs(np.log(p["strength"] / strength)) if strength > 0 else p["strength"],
                                       abs(p["num_steps"] - num_steps)))

    def _grid(self, pid: str, which: str) -> np.ndarray:
        n, size = self.preset["samples"], self.sweep["size"]
        imgs = _decode(self.sweep["images"][pid][which], n, size)
        cols = -(-n // -(-n // 8))  # at most 8 per row, rows as even as possible (12 -> 2 x 6)
        imgs = np.concatenate([imgs, np.zeros((-n % cols, size, size, 3), np.uint8)])
        return np.concatenate([np.concatenate(list(imgs[i:i + cols]), axis=1) for i in range(0, len(imgs), cols)])

    def render(self, p: dict) -> None:
        for ax, which, name in ((self.axes[0], "concept", self.concept), (self.axes[1], "neighbour", self.neighbour)):
            ax.clear()
            before = self._grid("base", which)
            ax.imshow(np.concatenate([before, self._grid(p["id"], which)], axis=0), interpolation="nearest")
            ax.axhline(len(before) - 0.5, color="white", lw=2)
            ax.set_xticks([])
            ax.set_yticks([])
            rate = 1 - p["UA"] if which == "concept" else p["IRA"]
            base = 1 - self.sweep["base"]["UA"] if which == "concept" else self.sweep["base"]["IRA"]
            ax.set_title(f"'{name}': judged '{name}' {base:.0%} before (top) -> {rate:.0%} after", fontsize=9)
        self._show_figure(self.fig)
        rows = [{"model": "base", **{k: self.sweep["base"][k] for k in ("UA", "IRA", "CRA")}},
                {"model": f"{p['method']} ({STRENGTH[p['method']]}={p['strength']:g}, {p['num_steps']} steps)",
                 **{k: p[k] for k in ("UA", "IRA", "CRA")}}]
        self.readout.value = table_html(rows, f"UnlearnCanvas-style rates for erasing '{self.concept}' (UA: erased; "
                                              f"IRA: '{self.neighbour}' kept; CRA: other attribute kept)")

    def make_ui(self) -> None:
        import ipywidgets as W

        from ..unlearning.registry import resolve

        style, layout = {"description_width": "130px"}, W.Layout(width="360px")
        self.controls["method"] = W.Dropdown(options=self.methods, value=self.methods[0], description="method",
                                             style=style, layout=layout)
        self.strength_controls = {}
        for m in self.methods:
            grid = self.preset["strengths"][m]
            h = resolve(m).hparams[STRENGTH[m]]
            w = control_for(STRENGTH[m], h, value=grid[0])
            w.style = style
            widen(w, min(grid), max(grid))
            w.observe(self._guarded(lambda change: self.update()), names="value")
            self.strength_controls[m] = w
        self.controls["num_steps"] = W.IntSlider(value=self.preset["num_steps"], min=self.preset["eval_every"],
                                                 max=self.preset["num_steps"], step=self.preset["eval_every"],
                                                 description="num_steps", continuous_update=False, style=style,
                                                 layout=layout)
        self.strength_box = W.VBox([self.strength_controls[self.methods[0]]])
        self.controls["strength"] = self.strength_controls[self.methods[0]]
        self.controls["method"].observe(self._guarded(self._on_method), names="value")
        self.controls["num_steps"].observe(self._guarded(lambda change: self.update()), names="value")
        self.ui = W.VBox([W.HBox([W.VBox([self.controls["method"], self.strength_box, self.controls["num_steps"]]),
                                  self.status]), self.image, self.readout])

    def _on_method(self, change) -> None:
        self.controls["strength"] = self.strength_controls[self.controls["method"].value]
        self.strength_box.children = (self.controls["strength"],)
        self.update()

    def _update(self) -> None:
        method = self.controls["method"].value
        strength = float(self.strength_controls[method].value)
        p = self.compute(method, strength, int(self.controls["num_steps"].value))
        self.render(p)
        self.state = {"method": method, "strength": strength, "selected": dict(p)}
        self.status.value = ""


def erasure_explorer(t2i, judge, data, concept: str = "circle", *, neighbour: str | None = None, rt=None,
                     preset: ErasurePreset | None = None, seed: int = 0, cache: bool = True,
                     progress: bool = True) -> ErasureExplorer:
    """The diffusion erasure explorer (notebooks 05 and 09) for erasing ``concept`` from ``t2i``; ``judge``: the
    shape judge; ``data``: the shapes data (``cl.data.shapes.load(rt)``). The sweep is cached per mode."""
    neighbour = neighbour or NEIGHBOUR.get(concept)
    sweep = compute_erasure_sweep(t2i, judge, data, concept, neighbour=neighbour, rt=rt, preset=preset, seed=seed,
                                  cache=cache, progress=progress)
    return ErasureExplorer(sweep, concept, neighbour)
