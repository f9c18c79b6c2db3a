"""Figures for SLUG (notebook 10): the layer table's Pareto plot, the step search, zero-shot accuracy bars,
and the cost / utility comparison with iterative unlearning. One style: ``plots.COLORS``."""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from .plots import COLORS

TOWER_COLORS = {"vision": "#9467bd", "text": "#8c564b"}


def _plain_log_axis(axis) -> None:
    """Log scale with plain major labels (0.01, 0.1, 1) and no minor labels (they overlap on small figures)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
REPORT_KEYS = {"forget_accuracy": ("forget concept", COLORS["forget"]),
               "retain_same_attribute": ("other classes, same attribute", COLORS["retain"]),
               "retain_other_attributes": ("other attributes", COLORS["world"])}


def short_layer_name(name: str) -> str:
    """``text_model.encoder.layers.0.self_attn.v_proj.weight`` -> ``text L0 v_proj``."""
    tower = "vision" if name.startswith(("vision", "visual")) else "text"
    if "projection" in name:
        return f"{tower} projection"
    m = re.search(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.weight", name)
    return f"{tower} L{m.group(1)} {m.group(2)}" if m else name


def layer_pareto(table, chosen: str | None = None, title: str | None = None):
    """Importance vs gradient alignment, one panel per tower (log-log, as in Cai et al. 2024, fig. 3):
    front layers labelled, the rest grey crosses; ``chosen`` (the layer SLUG edited) starred."""
    import matplotlib.pyplot as plt

    towers = [t for t in ("vision", "text") if (table.tower == t).any()]
    fig, axes = plt.subplots(1, len(towers), figsize=(5.2 * len(towers), 3.8), squeeze=False)
    for ax, tower in zip(axes[0], towers):
        part = table[table.tower == tower]
        off, on = part[~part.on_front], part[part.on_front]
        ax.scatter(off.alignment, off.importance, marker="x", color="#999999", label="dominated")
        ax.scatter(on.alignment, on.importance, color=TOWER_COLORS[tower], label="Pareto front")
        for _, r in on.iterrows():
            ax.annotate(short_layer_name(r.layer), (r.alignment, r.importance), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        if chosen is not None and chosen in set(part.layer):
            r = part.set_index("layer").loc[chosen]
            ax.scatter([r.alignment], [r.importance], marker="*", s=220, color=COLORS["forget"], zorder=5,
                       label="SLUG's layer")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_axis(ax.xaxis)
        _plain_log_axis(ax.yaxis)
        ax.set_xlabel("gradient alignment |cos(g_forget, g_retain)|  (lower: safer)")
        ax.set_ylabel("importance ||g_forget|| / ||W||  (higher: stronger)")
        ax.set_title(f"{tower} tower")
        ax.legend(loc="lower left", fontsize=7)
    fig.suptitle(title or "Good layers sit up and to the left: important for the forget set, unaligned with retain",
                 fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def search_trace(trace, target: float, chosen: str | None = None, ax=None, title: str | None = None):
    """The binary search: forget accuracy at every step tried, one line per searched layer."""
    import matplotlib.pyplot as plt
    import pandas as pd

    if ax is None:
        _, ax = plt.subplots(figsize=(6.2, 3.6))
    df = pd.DataFrame(trace)
    for layer, part in df.groupby("layer", sort=False):
        part = part.sort_values("step")
        lw, color = (2.5, COLORS["forget"]) if layer == chosen else (1, None)
        ax.plot(part.step, part.forget_accuracy, marker="o", ms=3, lw=lw, color=color, label=short_layer_name(layer))
    ax.axhline(target, ls="--", color=COLORS["base"], lw=1, label=f"target {target:g}")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("step lambda (size of the change, as a fraction of ||W||)")
    ax.set_ylabel("forget concept zero-shot accuracy")
    ax.set_title(title or "Each front layer needs a different step to reach the target")
    ax.legend(fontsize=7, ncol=2)
    return ax


def zero_shot_bars(reports: Mapping[str, dict], ax=None, title: str | None = None):
    """Grouped bars: forget-concept accuracy, other classes of its attribute, other attributes, per model."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * len(reports) + 2.6, 3.6))
    names = list(reports)
    x = np.arange(len(names))
    width = 0.8 / len(REPORT_KEYS)
    for j, (key, (label, color)) in enumerate(REPORT_KEYS.items()):
        vals = [reports[n][key] for n in names]
        bars = ax.bar(x + (j - 1) * width, vals, width, color=color, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("zero-shot accuracy (test images)")
    ax.set_title(title or "Unlearning should empty the red bar and leave the others standing")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    return ax


def class_accuracy_bars(per_class: Mapping[str, Mapping[str, float]], forgotten: str | None = None, ax=None,
                        title: str | None = None, ylabel: str = "zero-shot accuracy (test images)"):
    """Bars per class value (``{"base": {"circle": 0.95, ...}, "SLUG": {...}}``); the forgotten class marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    models = list(per_class)
    classes = list(per_class[models[0]])
    x = np.arange(len(classes))
    width = 0.8 / len(models)
    palette = [COLORS["base"], COLORS["forget"], COLORS["unseen_forget"], COLORS["gold"], COLORS["retain"]]
    for j, m in enumerate(models):
        ax.bar(x + (j - (len(models) - 1) / 2) * width, [per_class[m][c] for c in classes], width,
               color=palette[j % len(palette)], label=m)
    ax.set_xticks(x, [f"{c}\n(forgotten)" if c == forgotten else c for c in classes])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Only the forgotten class should fall")
    ax.legend(fontsize=8)
    return ax


def cost_utility(points: Mapping[str, dict], ax=None, title: str | None = None):
    """Each method as a point: gradient evaluations (log x) vs retain accuracy, labelled with its forget accuracy."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6))
    for i, (name, p) in enumerate(points.items()):
        color = COLORS["forget"] if name.lower().startswith("slug") else [COLORS["retain"], COLORS["world"],
                                                                          COLORS["unseen_forget"]][i % 3]
        ax.scatter([p["gradient_evaluations"]], [p["retain_accuracy"]], s=70, color=color)
        ax.annotate(f"{name}\nforget acc {p['forget_accuracy']:.2f}", (p["gradient_evaluations"], p["retain_accuracy"]),
                    fontsize=8, xytext=(6, -4), textcoords="offset points")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.margins(x=0.3)
    ax.set_xlabel("backward passes (gradient evaluations)")
    ax.set_ylabel("retain accuracy (test images)")
    ax.set_title(title or "SLUG: two gradients; iterative methods: one or two per step")
    return ax


def per_class_accuracy(clip, subset, attribute: str) -> dict[str, float]:
    """Zero-shot accuracy per class value of ``attribute`` on ``subset`` (a ShapesSubset): for the bars."""
    from .data.shapes import CLASSES

    pred = clip.predict_attributes(subset.images)[attribute]
    labels = subset.labels[attribute].cpu()
    out = {}
    for k, value in enumerate(CLASSES[attribute]):
        mask = labels == k
        out[value] = float((pred[mask] == k).float().mean()) if mask.any() else float("nan")
    return out
