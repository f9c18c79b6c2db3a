"""The SLUG explorer of notebook 05 (and 10): choose the layer and the step size yourself and watch SLUG's
one-step edit act on the tiny CLIP, live. Nothing is retrained: the two gradients are computed once
(``slug.compute_gradients``) and each control change rewrites one weight matrix
(``W0 - step * ||W0|| * g_f / ||g_f||``, :func:`course_lib.unlearning.slug.apply_step`) and re-encodes only
that layer's tower to measure zero-shot accuracy on forget and retain images.

- *compute*: :meth:`SlugExplorer.compute` (layer, step) -> zero-shot accuracies;
- *render*: the layer table (importance vs alignment, the Pareto front, the layer in use) and the
  accuracies before / now;
- *make_ui*: a layer dropdown (front layers first, marked with a star) and a step slider.
"""
from __future__ import annotations

import numpy as np

from ..plots import COLORS
from ..plots_slug import short_layer_name
from .base import Explorer, new_figure, table_html

BAR_KEYS = ("forget_accuracy", "retain_same_attribute", "retain_other_attributes")
BAR_LABELS = ("forget\n(the concept)", "retain:\nsame attribute", "retain:\nother attributes")


class SlugExplorer(Explorer):
    """Built by :func:`slug_explorer`. ``state``: the layer, the step and the zero-shot accuracies now."""

    def __init__(self, clip, forget_set, retain_set, concept: str, *, retain_samples: int = 256,
                 eval_samples: int = 600, max_step: float = 2.0, seed: int = 0):
        super().__init__()
        from ..unlearning import slug

        if max_step <= 0:
            raise ValueError(f"max_step={max_step!r} must be > 0")
        self.slug = slug
        self.clip = clip.clone()  # the explorer edits its own copy; the caller's model is never touched
        self.concept, self.max_step = concept, float(max_step)
        self.grads = slug.compute_gradients(self.clip, forget_set, retain_set, retain_samples=retain_samples, seed=seed)
        self.table = slug.layer_table(self.clip, grads=self.grads)
        rng = np.random.default_rng([seed, 5])
        if len(retain_set) > eval_samples:
            retain_set = slug._take(retain_set, rng.choice(len(retain_set), eval_samples, replace=False))
        self.probe = slug.ZeroShotProbe(self.clip, forget_set, retain_set, concept)
        self.before = self.probe("both")
        self._tower = None
        self.fig, self.axes = new_figure(2)
        self.fig.subplots_adjust(left=0.1)
        self.make_ui()
        self.update()

    def layer_options(self) -> list[tuple[str, str]]:
        """(label, layer) pairs: Pareto-front layers first (starred), each tower by importance."""
        t = self.table.assign(rank=~self.table.on_front).sort_values(["rank", "tower", "importance"],
                                                                   ascending=[True, True, False])
        return [(f"{'★ ' if r.on_front else ''}{r.tower}: {short_layer_name(r.layer)}", r.layer) for r in t.itertuples()]

    # ---------------------------------------------------------------- compute
    def compute(self, layer: str, step: float) -> dict:
        """Zero-shot accuracies after the one-step edit of ``layer`` with ``step`` (0 = the original model)."""
        tower = self.slug.tower_of(layer)
        self.slug.restore(self.clip)
        if self._tower not in (None, tower):
            self.probe(self._tower)  # the tower edited before is back to its original: refresh its embeddings
        if step:
            self.slug.apply_step(self.clip, layer, float(step), self.grads)
        self._tower = tower
        return self.probe(tower)

    # ---------------------------------------------------------------- render
    def render(self, layer: str, step: float, now: dict) -> None:
        ax = self.axes[0]
        ax.clear()
        for tower, marker in (("vision", "o"), ("text", "s")):
            part = self.table[self.table.tower == tower]
            on = part[part.on_front]
            ax.scatter(part.alignment, part.importance, marker=marker, s=14, color="#bbbbbb", label=f"{tower} layers")
            ax.scatter(on.alignment, on.importance, marker=marker, s=30, color=COLORS["retain"] if tower == "text"
                       else "#9467bd", label=f"{tower}: Pareto front")
        r = self.table.set_index("layer").loc[layer]
        ax.scatter([r.alignment], [r.importance], marker="*", s=260, color=COLORS["forget"], zorder=5,
                   label="the layer you edit")
        ax.set(xscale="log", yscale="log", xlabel="gradient alignment |cos(g_f, g_r)| (lower: safer)",
               ylabel="importance ||g_f|| / ||W||", title="Which layer? (up and left is better)")
        ax.legend(loc="lower left", fontsize=7)
        ax = self.axes[1]
        ax.clear()
        x = np.arange(len(BAR_KEYS))
        ax.bar(x - 0.2, [self.before[k] for k in BAR_KEYS], width=0.4, color="#bbbbbb", label="before")
        ax.bar(x + 0.2, [now[k] for k in BAR_KEYS], width=0.4,
               color=[COLORS["forget"], COLORS["retain"], COLORS["retain"]], label="after the step")
        for xi, k in zip(x, BAR_KEYS):
            ax.text(xi + 0.2, now[k] + 0.02, f"{now[k]:.2f}", ha="center", fontsize=8)
        ax.set_xticks(x, BAR_LABELS, fontsize=8)
        ax.set(ylim=(0, 1.3), ylabel="zero-shot accuracy",
               title=f"'{self.concept}': {short_layer_name(layer)}, step {step:.2f}")
        ax.legend(loc="upper center", fontsize=7, ncol=2)
        self._show_figure(self.fig)
        rows = [{"model": "before", **{k: self.before[k] for k in (*BAR_KEYS, "retain_accuracy")}},
                {"model": "after the step", **{k: now[k] for k in (*BAR_KEYS, "retain_accuracy")}}]
        top = self.table.sort_values("importance", ascending=False).head(6)
        layers = [{"layer": short_layer_name(t.layer), "tower": t.tower, "importance": t.importance,
                   "alignment": t.alignment, "on front": "yes" if t.on_front else ""} for t in top.itertuples()]
        self.readout.value = table_html(rows, "Zero-shot accuracy") + table_html(layers, "Most important layers")

    # ---------------------------------------------------------------- make_ui
    def make_ui(self) -> None:
        import ipywidgets as W

        style, layout = {"description_width": "60px"}, W.Layout(width="420px")
        options = self.layer_options()
        self.controls["layer"] = W.Dropdown(options=options, value=options[0][1], description="layer", style=style,
                                            layout=layout)
        self.controls["step"] = W.FloatSlider(value=0.0, min=0.0, max=self.max_step, step=0.01, description="step",
                                              continuous_update=False, readout_format=".2f", style=style, layout=layout)
        for w in self.controls.values():
            w.observe(self._guarded(lambda change: self.update()), names="value")
        help_ = W.HTML("<small>step: the fraction of the layer's weight norm moved along -g_f/||g_f||. "
                       "Only this one weight matrix changes.</small>", layout=layout)
        self.ui = W.VBox([W.HBox([W.VBox([self.controls["layer"], self.controls["step"]]), W.VBox([help_, self.status])]),
                          self.image, self.readout])

    def _update(self) -> None:
        layer, step = self.controls["layer"].value, float(self.controls["step"].value)
        now = self.compute(layer, step)
        self.render(layer, step, now)
        self.state = {"layer": layer, "step": step, **now, "before": dict(self.before)}
        self.status.value = ""

    def select(self, layer: str | None = None, step: float | None = None) -> dict:
        """Set the controls from code; returns the zero-shot accuracies now."""
        if layer is not None:
            allowed = [v for _, v in self.controls["layer"].options]
            if layer not in allowed:
                raise ValueError(f"layer={layer!r} is not a SLUG candidate; allowed: {', '.join(allowed[:6])}, ...")
            self.controls["layer"].value = layer
        if step is not None:
            if not 0 <= step <= self.max_step:
                raise ValueError(f"step={step!r} must be in [0, {self.max_step}]")
            self.controls["step"].value = step
        return self.state


def slug_explorer(clip, split=None, concept: str | None = None, *, forget_set=None, retain_set=None,
                  max_step: float = 2.0, seed: int = 0) -> SlugExplorer:
    """The SLUG explorer for the tiny CLIP: pass ``split`` (``shapes.split("circle")``) or ``forget_set`` and
    ``retain_set``. The explorer edits a copy of ``clip``."""
    forget_set = forget_set if forget_set is not None else getattr(split, "forget_set", None)
    retain_set = retain_set if retain_set is not None else getattr(split, "retain_set", None)
    if forget_set is None or retain_set is None:
        raise ValueError("pass split=shapes.split(concept), or both forget_set= and retain_set=")
    concept = concept or getattr(forget_set, "concept", None)
    return SlugExplorer(clip, forget_set, retain_set, concept, max_step=max_step, seed=seed)



def layer_tradeoff(curves: dict, steps, concept: str, title: str | None = None):
    """Each layer's trade-off as its step grows: zero-shot forget accuracy (x) against retain accuracy (y), one
    line per layer (notebook 05's static view of the SLUG explorer). ``curves`` maps a layer to the
    :meth:`SlugExplorer.compute` results at ``steps``; a few steps are labelled."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, (layer, rows) in enumerate(curves.items()):
        xs, ys = [r["forget_accuracy"] for r in rows], [r["retain_accuracy"] for r in rows]
        ax.plot(xs, ys, "-o", ms=3, color=f"C{i}", label=short_layer_name(layer))
        for s, x, y in list(zip(steps, xs, ys))[1::2]:
            ax.annotate(f"{s:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points", color=f"C{i}")
    ax.set(xlabel=f"zero-shot accuracy on '{concept}' (forget; lower = more forgotten)",
           ylabel="zero-shot accuracy on retain", xlim=(-0.03, 1.03),
           title=title or "One step, three layers: the forgetting each buys and what it costs")
    ax.legend(fontsize=7, title="layer (labels: step)", title_fontsize=7)
    plt.close(fig)
    return fig


def cost_at(rows, steps, forget_level: float) -> dict:
    """The smallest step whose forget accuracy is at most ``forget_level`` and the retain accuracy there
    (``None`` where no step reaches it)."""
    for s, r in zip(steps, rows):
        if r["forget_accuracy"] <= forget_level:
            return {"step": s, "forget_accuracy": r["forget_accuracy"], "retain_accuracy": r["retain_accuracy"]}
    return {"step": None, "forget_accuracy": None, "retain_accuracy": None}
