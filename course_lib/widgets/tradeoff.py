"""The trade-off explorer of notebook 05: pick a method, move its hyper-parameter sliders, and see at once
where that setting lands on the forget-vs-utility plane, next to the base and gold models.

- *compute*: :meth:`TradeoffExplorer.compute` finds the setting in the cached sweep (:mod:`.sweep`) nearest
  to the sliders (or a live run of exactly that setting);
- *render*: :meth:`TradeoffExplorer.render` draws the plane (every point tried, each method's Pareto front,
  the landmarks) and the selected run's trajectory, and fills the scorecard row and the sample answers;
- *make_ui*: the method dropdown, one slider per hyper-parameter (ranges from ``cl.METHODS``), and a
  "Run this exact setting" button that trains live with a progress bar and adds the point.
"""
from __future__ import annotations

import math

import numpy as np

from ..plots import COLORS
from ..plots_eval import METHOD_COLORS
from .base import Blitter, Explorer, new_figure, table_html
from .controls import control_for, widen
from .sweep import Sweep, compute_sweep, front_area, pareto_front, point_id, run_setting

MEASURES = ("forget_acc", "retain_acc", "unseen_forget_acc")


class TradeoffExplorer(Explorer):
    """Built by :func:`tradeoff_explorer`. ``state["selected"]``: the point on screen (its hyper-parameters and
    accuracies); ``state["exact"]``: whether it is exactly the sliders' setting."""

    def __init__(self, model, split, sweep: Sweep, *, seed: int = 0):
        super().__init__()
        from ..unlearning.registry import resolve

        self.model, self.split, self.sweep, self.seed = model, split, sweep, seed
        self.methods = list(sweep.grids)
        self.infos = {m: resolve(m) for m in self.methods}
        self.colors = {m: METHOD_COLORS[i % len(METHOD_COLORS)] for i, m in enumerate(self.methods)}
        self.live: list = []  # points trained with "Run this exact setting"
        self.fig, self.axes = new_figure(2)
        self.blitter = Blitter(self.fig)
        self._draw_trajectory(self.methods[0], None)  # the trajectory axes are built once
        self.make_ui()
        self.update()

    # ---------------------------------------------------------------- compute
    def points(self, method: str | None = None) -> list:
        pts = self.sweep.points + self.live
        return [p for p in pts if method is None or p["method"] == method]

    def _distance(self, method: str, values: dict, p: dict) -> float:
        """How far sweep point ``p`` is from ``values``, each knob scaled to its slider's range (log knobs in log)."""
        d = 0.0
        for k in [*self.sweep.grids[method], "num_steps"]:
            h = self.infos[method].hparams[k]
            lo, hi = min(h.low, values[k]), max(h.high, values[k])
            if h.log:
                d += abs(math.log(values[k]) - math.log(p[k])) / max(math.log(hi / lo), 1e-9)
            else:
                d += abs(values[k] - p[k]) / max(hi - lo, 1e-9)
        return d

    def compute(self, method: str, values: dict) -> dict:
        """The point for ``method`` at ``values`` (all its hyper-parameters): a live run of exactly this
        setting if there is one, else the nearest point of the sweep. Returns the point and what differs."""
        swept = [*self.sweep.grids[method], "num_steps"]
        defaults = self.infos[method].defaults()
        exact = [p for p in self.live if p["method"] == method
                 and all(np.isclose(p[k], v) if isinstance(v, (int, float)) else p[k] == v for k, v in values.items())]
        if exact:
            return {"point": exact[-1], "exact": True, "unswept_changed": []}
        pts = self.sweep.of(method)
        best = min(pts, key=lambda p: self._distance(method, values, p))
        exact_hit = all(np.isclose(best[k], values[k]) for k in swept)
        changed = [k for k, v in values.items() if k not in swept and v != defaults[k]]
        return {"point": best, "exact": exact_hit and not changed, "unswept_changed": changed}

    def gap_to_gold(self, point: dict | None = None) -> float | None:
        """The larger of |forget_acc - gold's| and |retain_acc - gold's| (None without a gold model)."""
        gold = self.sweep.landmarks.get("gold")
        p = point or self.state.get("selected")
        if gold is None or p is None:
            return None
        return max(abs(p["forget_acc"] - gold["forget_acc"]), abs(p["retain_acc"] - gold["retain_acc"]))

    def best_gap_to_gold(self) -> tuple[float, dict]:
        """The sweep's closest point to the gold model (the smallest :meth:`gap_to_gold`) and that gap."""
        best = min(self.points(), key=self.gap_to_gold)
        return self.gap_to_gold(best), best

    def front_areas(self) -> dict[str, float]:
        """Each method's Pareto-front area (:func:`.sweep.front_area`; larger = better trade-offs)."""
        return {m: front_area(self.points(m)) for m in self.methods}

    # ---------------------------------------------------------------- render
    def render(self, method: str, selection: dict) -> None:
        """Redraw only what changed: the plane's points and fronts when the method (or the live runs) change,
        the trajectory when the run changes; otherwise only the ring and the step marker move (a slider move
        then costs one Agg draw, not two axes rebuilt)."""
        p = selection["point"]
        scene = (method, len(self.live))
        if getattr(self, "_plane_scene", None) != scene:
            self._draw_plane(method)
            self._plane_scene = scene
            self.blitter.set_dynamic([self._ring, self._step_line, *self._lines.values(), self.axes[1].title])
        self._ring.set_offsets([[p["forget_acc"], p["retain_acc"]]])
        run = (method, *(p[k] for k in self.sweep.grids[method]))
        if getattr(self, "_run_scene", None) != run:
            self._draw_trajectory(method, p)
            self._run_scene = run
        self._step_line.set_xdata([p["num_steps"], p["num_steps"]])
        self._show_figure(self.fig, self.blitter.png())
        self.readout.value = self._readout_html(p, selection)

    @staticmethod
    def _unit_axes(ax) -> None:
        """Fixed limits and ticks (no tick recomputation on redraw) and a fixed title position."""
        ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks(ticks)

    def _draw_plane(self, method: str) -> None:
        ax = self.axes[0]
        ax.clear()
        for m in self.methods:
            pts, mine = self.points(m), m == method
            ax.scatter([q["forget_acc"] for q in pts], [q["retain_acc"] for q in pts], s=18 if mine else 10,
                       color=self.colors[m], alpha=0.85 if mine else 0.25, label=m, zorder=2 if mine else 1)
            front = pareto_front(pts)
            ax.step([q["forget_acc"] for q in front], [q["retain_acc"] for q in front], where="post",
                    color=self.colors[m], lw=2 if mine else 0.8, alpha=0.9 if mine else 0.4)
        live = self.live
        if live:
            ax.scatter([q["forget_acc"] for q in live], [q["retain_acc"] for q in live], marker="D", s=40,
                       facecolor="none", edgecolor=[self.colors[q["method"]] for q in live], label="live runs")
        for name in ("base", "gold"):
            lm = self.sweep.landmarks.get(name)
            if lm:
                ax.scatter([lm["forget_acc"]], [lm["retain_acc"]], marker="*", s=160, color=COLORS[name],
                           label=f"{name} model", zorder=4)
        self._ring = ax.scatter([0], [0], s=170, facecolor="none", edgecolor="k", lw=2, zorder=5, label="your setting")
        self._unit_axes(ax)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_xlabel("forget accuracy (lower = more forgotten)")
        ax.set_ylabel("retain accuracy (utility)")
        ax.set_title("Forgetting vs utility: every setting tried", y=1.0)
        ax.legend(loc="lower right", fontsize=7, ncol=2)

    def _draw_trajectory(self, method: str, selected: dict) -> None:
        """The selected run's accuracies against steps. The axes are built once; a new run only replaces the
        lines' data and the title (clearing and rebuilding the axes would double the time of a slider move)."""
        ax = self.axes[1]
        if not hasattr(self, "_lines"):
            self._lines = {}
            for meas, key in (("forget_acc", "forget"), ("retain_acc", "retain"),
                              ("unseen_forget_acc", "unseen_forget")):
                (self._lines[meas],) = ax.plot([], [], marker="o", ms=3, color=COLORS[key], label=key.replace("_", " "))
            gold = self.sweep.landmarks.get("gold")
            if gold:
                ax.axhline(gold["forget_acc"], color=COLORS["gold"], ls="--", lw=1, label="gold forget acc")
            self._step_line = ax.axvline(0, color="k", lw=1, alpha=0.6)
            self._unit_axes(ax)
            ax.set_xlabel("unlearning steps")
            ax.set_ylabel("accuracy")
            ax.legend(loc="center right", fontsize=7)
            last = max(p["num_steps"] for p in self.sweep.points)
            ax.set_xlim(-0.03 * last, 1.03 * last)
        if selected is None:
            return
        knobs = {k: selected[k] for k in self.sweep.grids[method]}
        run = sorted((q for q in self.points(method) if not q.get("live")
                      and all(np.isclose(q[k], v) for k, v in knobs.items())), key=lambda q: q["num_steps"])
        base = self.sweep.landmarks["base"]
        xs = [0] + [q["num_steps"] for q in run]
        for meas, line in self._lines.items():
            line.set_data(xs, [base[meas]] + [q[meas] for q in run])
        ax.set_title(f"{method} ({', '.join(f'{k}={v:g}' for k, v in knobs.items())})", y=1.0)

    def _readout_html(self, p: dict, selection: dict) -> str:
        rows = []
        for name in ("base", "gold"):
            lm = self.sweep.landmarks.get(name)
            if lm:
                rows.append(self._row(f"{name} model", lm))
        rows.append(self._row("your setting", p))
        knobs = ", ".join(f"{k}={p[k]:g}" for k in [*self.sweep.grids[p["method"]], "num_steps"])
        if p.get("live"):
            note = f"<b>{p['method']}</b> trained live with exactly this setting ({p.get('seconds', 0):.1f} s)."
        elif selection["exact"]:
            note = f"<b>{p['method']}</b> at {knobs}: a point of the sweep."
        else:
            grid = "; ".join(f"{k} in {v}" for k, v in self.sweep.grids[p['method']].items())
            extra = (f" Your {', '.join(selection['unswept_changed'])} differ from the sweep's defaults."
                     if selection["unswept_changed"] else "")
            note = (f"Nearest computed setting: <b>{p['method']}</b> at {knobs} (the sweep has {grid}, steps every "
                    f"{self.sweep.key['preset']['eval_every']}).{extra} Press <i>Run this exact setting</i> to train it.")
        answers = self.sweep.answers.get(p.get("id", ""), p.get("answers"))
        qrows = []
        for i, q in enumerate(self.sweep.questions):
            row = {"set": q["set"], "question": q["question"], "expected": q["expected"],
                   "base": self.sweep.landmarks["base"]["answers"][i]}
            if "gold" in self.sweep.landmarks:
                row["gold"] = self.sweep.landmarks["gold"]["answers"][i]
            row["your setting"] = answers[i] if answers else ""
            qrows.append(row)
        return (f"<div style='font-size:12px'>{note}</div>" + table_html(rows, "Scorecard row (the survey's objectives)")
                + table_html(qrows, "Sample questions"))

    def _row(self, name: str, m: dict) -> dict:
        gap = self.gap_to_gold(m)
        return {"model": name, "forget acc": m["forget_acc"], "retain acc": m["retain_acc"],
                "unseen forget acc": m["unseen_forget_acc"], "Accuracy (1-forget)": 1 - m["forget_acc"],
                "Locality": m["retain_acc"], "Generalizability": 1 - m["unseen_forget_acc"],
                "gap to gold": "" if gap is None else gap}

    # ---------------------------------------------------------------- make_ui
    def make_ui(self) -> None:
        import ipywidgets as W

        self.controls["method"] = W.Dropdown(options=self.methods, value=self.methods[0], description="method",
                                             style={"description_width": "110px"}, layout=W.Layout(width="330px"))
        self.sliders = {m: {k: control_for(k, h) for k, h in self.infos[m].hparams.items()} for m in self.methods}
        for m, group in self.sliders.items():  # open on the sweep's full-length run at the registry's defaults
            preset = self.sweep.key["preset"]
            widen(group["num_steps"], preset["eval_every"], preset["num_steps"])
            group["num_steps"].value = preset["num_steps"]
            for k, vals in self.sweep.grids[m].items():  # every grid value must be reachable by its slider
                widen(group[k], min(vals), max(vals))
            for w in group.values():
                w.observe(self._guarded(lambda change: self.update()), names="value")
        self.controls["method"].observe(self._guarded(self._on_method), names="value")
        self.button = W.Button(description="Run this exact setting", icon="play", button_style="primary",
                               layout=W.Layout(width="330px"))
        self.button.on_click(self._guarded(lambda _b: self.run_exact()))
        self.progress = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="330px"))
        self.slider_box = W.VBox()
        self._place_sliders()
        # Controls on top (two columns), the figure at full width under them, then the readout.
        left = W.VBox([self.controls["method"], self.slider_box], layout=W.Layout(min_width="350px"))
        right = W.VBox([self.button, self.progress, self.status], layout=W.Layout(min_width="350px"))
        self.ui = W.VBox([W.HBox([left, right]), self.image, self.readout])

    def _place_sliders(self) -> None:
        group = self.sliders[self.method]
        self.slider_box.children = tuple(group.values())
        self.controls.update({k: w for k, w in group.items()})
        for k in [k for k in self.controls if k != "method" and k not in group]:
            del self.controls[k]

    def _on_method(self, change) -> None:
        self._place_sliders()
        self.update()

    @property
    def method(self) -> str:
        return self.controls["method"].value

    def values(self) -> dict:
        """The current method's hyper-parameters as the sliders show them."""
        return {k: w.value for k, w in self.sliders[self.method].items()}

    def _update(self) -> None:
        method, values = self.method, self.values()
        sel = self.compute(method, values)
        self.render(method, sel)
        self.state = {"method": method, "values": values, "selected": dict(sel["point"]), "exact": sel["exact"],
                      "gap_to_gold": self.gap_to_gold(sel["point"])}
        self.status.value = ""

    def select(self, method: str | None = None, **values) -> dict:
        """Set the controls from code (a reference solution, a test): ``select("npo", lr=3e-3, num_steps=120)``.
        Returns the selected point."""
        if method is not None:
            if method not in self.methods:
                raise ValueError(f"method={method!r} is not in this explorer; allowed values: {', '.join(self.methods)}")
            self.controls["method"].value = method
        group = self.sliders[self.method]
        unknown = sorted(set(values) - set(group))
        if unknown:
            raise ValueError(f"{self.method} has no hyper-parameter {unknown}; allowed: {', '.join(group)}")
        with self.ui.hold_sync():
            for k, v in values.items():
                group[k].value = v
                if isinstance(v, (int, float)) and not np.isclose(group[k].value, v, rtol=0.02):
                    raise ValueError(f"{k}={v!r} is outside its slider's range (it shows {group[k].value!r})")
        self.update()
        return self.state["selected"]

    def run_exact(self) -> dict:
        """Train the sliders' exact setting now (a progress bar), add it to the plane and select it."""
        import time

        method, values = self.method, self.values()
        steps = int(values.pop("num_steps"))
        self.progress.max, self.progress.value = steps, 0
        self.button.disabled = True
        self.status.value = f"training {method} for {steps} steps ..."

        def on_step(state):
            self.progress.value = state["step"]
        start = time.perf_counter()
        try:
            pts, said = run_setting(self.model, self.split, method, values, num_steps=steps, eval_every=steps,
                                    measure=self._measure(), questions=self.sweep.questions, seed=self.seed,
                                    callbacks=[on_step])
        finally:
            self.button.disabled = False
        p = {**pts[-1], "live": True, "answers": said[-1], "seconds": time.perf_counter() - start}
        p["id"] = "live:" + point_id(p)
        self.live.append(p)
        self.update()
        self.status.value = f"added: {method} {', '.join(f'{k}={v:g}' for k, v in values.items() if isinstance(v, float))}"
        return p

    def _measure(self):
        from .sweep import measure_fn

        return measure_fn(self.split, self.sweep.key["preset"]["retain_sample"], self.sweep.key["seed"])


def tradeoff_explorer(model, split, methods=None, reference=None, *, rt=None, seed: int = 0, preset=None,
                      cache: bool = True, progress: bool = True) -> TradeoffExplorer:
    """The trade-off explorer (notebook 05) for unlearning ``split.forget`` from ``model``: a method dropdown,
    sliders for its hyper-parameters, the forget-vs-utility plane with each method's Pareto front and the
    base / ``reference`` (gold) landmarks, sample answers and the scorecard row. Slider moves answer from a
    sweep computed once and cached on disk per mode (a progress bar while it computes)."""
    sweep = compute_sweep(model, split, rt=rt, methods=methods, reference=reference, preset=preset, seed=seed,
                          cache=cache, progress=progress)
    return TradeoffExplorer(model, split, sweep, seed=seed)
