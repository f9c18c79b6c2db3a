"""The figures of notebook 07 (exact unlearning): accuracy of a SISA ensemble vs k, and what deletions cost.

Set colours follow ``plots.COLORS`` (holdout grey, base black, gold green); the aggregation rules and the
numbers of shards get colours of their own.
"""
from __future__ import annotations

from .plots import COLORS

AGGREGATION_STYLE = {  # rule -> (colour, marker, label)
    "owner shard": (COLORS["gold"], "o", "owner shard (an oracle router)"),
    "confidence": ("#9467bd", "s", "confidence"),
    "mean": ("#8c564b", "^", "mean of next-token distributions"),
    "vote": ("#e377c2", "v", "majority vote"),
}


def _k_colors(ks):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    ks = sorted(ks)
    return {k: cmap(i / max(1, len(ks) - 1) * 0.85) for i, k in enumerate(ks)}


def accuracy_vs_k(table, base_accuracy: float | None = None, holdout_accuracy: float | None = None, ax=None,
                  title: str = "More shards: each still knows its people, the ensemble cannot tell who knows"):
    """``table``: a DataFrame indexed by k with one column per aggregation rule (accuracy on retain questions)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    ks = list(table.index)
    for rule, (color, marker, label) in AGGREGATION_STYLE.items():
        if rule in table:
            ax.plot(ks, table[rule], marker=marker, color=color, label=label)
    if base_accuracy is not None:
        ax.axhline(base_accuracy, color=COLORS["base"], ls=":", lw=1, label="base model (k = 1)")
    if holdout_accuracy is not None:
        ax.axhline(holdout_accuracy, color=COLORS["holdout"], ls="--", lw=1, label="holdout people (guessing)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("number of shards k")
    ax.set_ylabel("accuracy on retain questions")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def cost_vs_requests(curves, touched_formula=None, unit_label: str = "examples processed", axes=None,
                     title: str = "Deletion requests add up: one at a time or in a batch"):
    """``curves``: :func:`course_lib.unlearning.exact.cost_curves`. Left: cumulative cost of requests served
    one at a time (solid) and of one batch (dashed); right: the share of shards a batch of r requests touches
    (``touched_formula(k, r)``: dotted)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6))
    else:
        fig = axes[0].figure
    colors = _k_colors(curves["k"].unique())
    for k, c in curves.groupby("k"):
        axes[0].plot(c["requests"], c["one at a time"], color=colors[k], label=f"k = {k}")
        axes[0].plot(c["requests"], c["batched"], color=colors[k], ls="--", lw=1)
        axes[1].plot(c["requests"], c["shards touched"] / k, color=colors[k], label=f"k = {k}")
        if touched_formula is not None:
            r = np.arange(1, c["requests"].max() + 1)
            axes[1].plot(r, [touched_formula(k, x) / k for x in r], color=colors[k], ls=":", lw=1)
    axes[0].set_xlabel("deletion requests (one person each)")
    axes[0].set_ylabel(f"expected cumulative cost\n({unit_label})")
    axes[0].set_title("one at a time (solid) or in one batch (dashed)")
    axes[1].set_xlabel("requests in one batch")
    axes[1].set_ylabel("share of shards retrained\n(mean over random requests)")
    axes[1].set_title("in one batch: soon every shard" + (" (dotted: k(1-(1-1/k)^r))" if touched_formula else ""))
    axes[1].set_ylim(0, 1.05)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return axes


def one_request_cost(table, column: str = "one request: examples processed", ax=None,
                     title: str = "One deletion request retrains one shard: about 1/k of the work"):
    """``table``: :func:`course_lib.unlearning.exact.cost_table`; the measured cost vs k and the 1/k line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.4))
    ks = list(table.index)
    full = table.loc[min(ks), column] * min(ks)
    ax.plot(ks, table[column], marker="o", color=COLORS["gold"], label="measured (one shard retrained)")
    ax.plot(ks, [full / k for k in ks], ls=":", color=COLORS["base"], label="retrain / k")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("number of shards k")
    ax.set_ylabel(column.split(": ")[-1])
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
