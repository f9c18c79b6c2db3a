"""Notebook 13's figures: the policy scorecard as a heat map of evidence and lens verdicts, and the cost.

Each takes what :mod:`course_lib.evaluation.policy` returns and returns the figure. A cell is green when its
number is within the lens threshold of the gold model and red when it is not (the kit's gold and forget
colours); the gold model's row has a green border, as in notebook 08's recovery heat map.
"""
from __future__ import annotations

from .plots import COLORS

EVIDENCE = {  # policy column: (label, threshold argument)
    "black_box_excess": ("outputs", "margin"), "in_context_excess": ("in context", "margin"),
    "reads_excess": ("probe / lens", "margin"), "relearn_excess": ("relearn", "margin"),
    "quantize_excess": ("quantize", "margin"), "privacy_leak": ("MIA leak (±)", "leak_margin"),
    "locality_gap": ("utility lost", "utility_margin"),
}


def _frame_gold(ax, names, width):
    import matplotlib.pyplot as plt

    for i, name in enumerate(names):
        if "gold" in str(name).lower():
            ax.add_patch(plt.Rectangle((-0.5, i - 0.5), width, 1, fill=False, ec=COLORS["gold"], lw=2.5))


def policy_heatmap(policy, verdicts, title: str | None = None, **thresholds):
    """Left: each model's evidence (``policy_scorecard`` columns, excess over the gold model), green when within
    its threshold; right: ``verdicts`` (``policy.verdicts``) per lens, pass or fail. The default title names the
    models that pass every lens."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    from .evaluation.policy import THRESHOLDS, verdict_matrix

    limits = {**THRESHOLDS, **thresholds}
    cols = [c for c in EVIDENCE if c in policy.columns and policy[c].notna().any()]
    values = policy[cols].to_numpy(dtype=float)
    judged = np.where(np.array([c == "privacy_leak" for c in cols]), np.abs(values), values)
    ok = judged <= np.array([limits[EVIDENCE[c][1]] for c in cols])
    matrix = verdict_matrix(verdicts).reindex(policy.index)
    if title is None:
        every = [str(m) for m in matrix.index[matrix.all(axis=1)]]
        title = (f"Only the {every[0]} model passes every lens" if len(every) == 1 else
                 f"Every lens passed by: {', '.join(every)}" if every else "No model passes every lens")
    cmap = ListedColormap([COLORS["forget"], COLORS["gold"]])
    n = len(policy)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2.0 + 0.8 * (len(cols) + matrix.shape[1]), 1.2 + 0.4 * n),
                                      gridspec_kw={"width_ratios": [len(cols), matrix.shape[1]]})
    for ax, grid, labels in ((left, ok, [EVIDENCE[c][0] for c in cols]), (right, matrix.to_numpy(), list(matrix.columns))):
        ax.imshow(grid.astype(float), cmap=cmap, vmin=0, vmax=1, alpha=0.55, aspect="auto")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_yticks(range(n), list(policy.index))
        ax.grid(False)
        _frame_gold(ax, policy.index, len(labels))
    for i in range(n):
        for j in range(len(cols)):
            left.text(j, i, "-" if np.isnan(values[i, j]) else f"{values[i, j]:+.2f}", ha="center", va="center", fontsize=8)
        for j in range(matrix.shape[1]):
            right.text(j, i, "pass" if matrix.iat[i, j] else "fail", ha="center", va="center", fontsize=8, weight="bold")
    right.set_yticklabels([])
    left.set_title("evidence (excess over gold)", fontsize=10)
    right.set_title("lens", fontsize=10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def cost_bars(policy, ax=None, title: str = "What each answer to the request cost"):
    """Seconds per model (log scale): unlearning time, and the gold model's retraining time."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plots_attacks import model_colours

    seconds = policy["seconds"].astype(float).clip(lower=1e-2)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 0.8 + 0.3 * len(policy)))
    colours = model_colours(policy.index)
    ax.barh(range(len(policy)), seconds, color=[colours[m] for m in policy.index])
    for i, s in enumerate(policy["seconds"]):
        ax.text(s if np.isfinite(s) and s > 1e-2 else 1e-2, i, f" {s:.1f} s", va="center", fontsize=8)
    ax.set_yticks(range(len(policy)), list(policy.index))
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale; gold: retraining from scratch)")
    ax.set_title(title)
    plt.close(ax.figure)
    return ax.figure
