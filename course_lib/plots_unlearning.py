"""Figures of notebook 03: accuracy curves over unlearning steps and the forget-vs-retain plane.

Same colours as everywhere (``plots.COLORS``): forget red, retain blue, unseen forget orange, the
retrained gold model green, the base model black.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from .plots import COLORS

CURVES = (("forget_acc", "forget", "forget set"), ("retain_acc", "retain", "retain set (sample)"),
          ("unseen_forget_acc", "unseen_forget", "unseen forget (paraphrases)"))


def accuracy_curves(histories: dict, gold: dict | None = None, title: str | None = None):
    """One panel per method: forget / retain / unseen-forget accuracy against the unlearning step.

    ``histories``: method name -> ``UnlearnResult.history`` measured with ``eval_every``; ``gold``: the
    retrained model's accuracies (dotted lines: where an ideal method ends up).
    """
    n = len(histories)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 0.6, 2.6), sharey=True, squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        rows = [h for h in hist if "forget_acc" in h]
        for key, colour, label in CURVES:
            ax.plot([h["step"] for h in rows], [h[key] for h in rows], color=COLORS[colour], label=label, lw=1.6)
            if gold and key in gold:
                ax.axhline(gold[key], color=COLORS[colour], ls=":", lw=1)
        ax.set_title(name)
        ax.set_xlabel("unlearning step")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].set_ylabel("exact-match accuracy")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, title="dotted: gold model",
                       title_fontsize=8)
    fig.suptitle(title or "What each method forgets, and what it breaks on the way", fontsize=10)
    fig.tight_layout()
    return fig


def tradeoff_plane(points: dict, base: dict, gold: dict, trajectories: dict | None = None, ax=None,
                   title: str = "The trade-off plane: the gold model is the target"):
    """Forget accuracy (x, lower = more forgotten) against retain accuracy (y, higher = better kept).

    ``points``: name -> dict with ``forget_acc`` and ``retain_acc`` (end points); ``trajectories``:
    name -> history (the path each method took). The base and gold models are landmarks.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.8))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, p) in enumerate(points.items()):
        colour = palette[(i + 2) % len(palette)]
        if trajectories and name in trajectories:
            rows = [h for h in trajectories[name] if "forget_acc" in h]
            ax.plot([h["forget_acc"] for h in rows], [h["retain_acc"] for h in rows], color=colour, lw=1, alpha=0.6)
        ax.scatter([p["forget_acc"]], [p["retain_acc"]], color=colour, s=40, label=name, zorder=3)
    ax.scatter([base["forget_acc"]], [base["retain_acc"]], marker="s", color=COLORS["base"], s=60, label="base", zorder=4)
    ax.scatter([gold["forget_acc"]], [gold["retain_acc"]], marker="*", color=COLORS["gold"], s=160,
               label="gold (retrained)", zorder=4)
    ax.set_xlabel("forget-set accuracy (lower: more forgotten)")
    ax.set_ylabel("retain-set accuracy (higher: better kept)")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    return ax


def seed_spread(frame, metric: str = "forget_acc", ax=None, title: str | None = None):
    """Dots per seed and the mean per method: how much a ranking depends on the seed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 2.6))
    methods = list(dict.fromkeys(frame["method"]))
    for i, m in enumerate(methods):
        vals = frame.loc[frame["method"] == m, metric].to_numpy()
        ax.scatter([i] * len(vals), vals, color=COLORS["forget" if "forget" in metric else "retain"], alpha=0.7)
        ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black")
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"{metric.replace('_', ' ')} over seeds (line: mean)", fontsize=10)
    return ax
