"""Figures of notebook 01 (classic unlearning on the shape judge), in the kit's colours (``plots.COLORS``).

Set colours: forget = red, retain = blue, test = grey (the "holdout" colour), retrained model = green.
"""
from __future__ import annotations

from collections import Counter

from .plots import COLORS

SET_COLORS = {"forget": COLORS["forget"], "retain": COLORS["retain"], "test": COLORS["holdout"]}


def image_grid(images, titles=None, ncols: int = 8, scale: float = 1.1, suptitle: str | None = None):
    """Show images (N, 3, H, W) in [0, 1] in a grid with small titles; returns the figure."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_shapes(shapes, indices, ncols: int = 8):
    """A grid of dataset images titled with their attributes (the position is visible)."""
    rows = shapes.attributes.iloc[list(indices)]
    titles = [f"{r.size} {r.colour}\n{r.texture} {r.shape}" for r in rows.itertuples()]
    return image_grid(shapes.images[list(indices)], titles, ncols=ncols)


def prediction_bars(predictions: dict, classes: list, title: str = "What each model calls the forget images"):
    """Stacked bars: for each model (name -> list of predicted class names), the share of each class."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 0.5 + 0.45 * len(predictions)))
    cmap = plt.get_cmap("tab10")
    names = list(predictions)
    for y, name in enumerate(names):
        counts = Counter(predictions[name])
        left = 0.0
        for c, cls in enumerate(classes):
            share = counts.get(cls, 0) / max(1, len(predictions[name]))
            ax.barh(y, share, left=left, color=cmap(c + 4), label=cls if y == 0 else None)
            if share > 0.08:
                ax.text(left + share / 2, y, cls, ha="center", va="center", fontsize=8, color="white")
            left += share
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the forget images")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(False)
    fig.tight_layout()
    return fig


def agreement_bars(table, title: str = "Agreement with the retrained model"):
    """Grouped bars from ``evaluation.classic.distance_table``: agreement on forget / retain / test per model."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(table.index)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.4))
    for k, s in enumerate(("forget", "retain", "test")):
        ax.bar(x + (k - 1) * 0.27, table[f"agree {s}"], width=0.27, color=SET_COLORS[s], label=s)
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("same prediction as retrained")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def agreement_curves(curves: dict, budgets: dict | None = None, spread: float | None = None,
                     title: str = "Approximate unlearning, step by step"):
    """One panel per method (name -> DataFrame step/set/agreement from ``classic.agreement_curve``).

    ``budgets``: method -> the step count the notebook used (dotted line); ``spread``: the forget-set
    agreement of a second retrained model (green band: where the exact outcomes lie).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.3), sharey=True, squeeze=False)
    for ax, (name, df) in zip(axes[0], curves.items()):
        for s, part in df.groupby("set", sort=False):
            ax.plot(part["step"], part["agreement"], color=SET_COLORS.get(s, COLORS["base"]), label=s)
        if spread is not None:
            ax.axhspan(spread, 1.0, color=COLORS["gold"], alpha=0.12, label="another retrained model (forget)")
        if budgets and name in budgets:
            ax.axvline(budgets[name], color=COLORS["base"], ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel("unlearning step")
        ax.set_ylim(-0.02, 1.05)
    axes[0][0].set_ylabel("agreement with retrained")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
