"""Notebook 06's comparison of unlearning methods: one table and the figures drawn from it.

:func:`comparison_table` measures every model on the same split (the survey's three accuracies via
``cl.evaluation.three_objectives``, the forget answers' loss, seconds, bytes of weights changed);
:func:`comparison_plot` draws it; :func:`rmu_shift` shows RMU's activations before and after.
"""
from __future__ import annotations

import math

import numpy as np

from .plots import COLORS

SUPPRESSION_FAMILIES = ("in-context", "suppression")


def _unpack(value):
    """(model, method name or None, seconds) from an ``UnlearnResult`` or a bare model."""
    if hasattr(value, "method") and hasattr(value, "model"):
        return value.model, value.method, value.seconds
    return value, None, math.nan


def comparison_table(models: dict, base, split, families: dict | None = None):
    """One row per named model: family, changes weights, forget / retain / unseen-forget accuracy, the
    forget answers' mean loss (NLL per token, ``evaluation.answer_loss``), seconds, bytes of weights changed.

    ``models``: name -> ``UnlearnResult`` (from ``cl.unlearn``) or a model; ``base``: the model before
    unlearning (the bytes are counted against it); ``families``: family for rows that are bare models.
    """
    import pandas as pd

    from .evaluation import answer_loss, three_objectives
    from .unlearning import METHODS
    from .unlearning.weights import bytes_changed

    rows = []
    for name, value in models.items():
        model, method, seconds = _unpack(value)
        info = METHODS[method] if method else None
        obj = three_objectives(model, split)
        rows.append({"model": name,
                     "family": info.family if info else (families or {}).get(name, "-"),
                     "changes weights": info.changes_weights if info else bool(bytes_changed(model, base)),
                     "forget acc": obj["forget_acc"], "retain acc": obj["retain_acc"],
                     "unseen forget acc": obj["unseen_forget_acc"],
                     "forget answer loss": float(answer_loss(model, split.forget).mean()),
                     "seconds": seconds, "bytes changed": bytes_changed(model, base)})
    return pd.DataFrame(rows).set_index("model")


def comparison_plot(table, base_name: str | None = None,
                    title: str = "Suppression hides the answers; the loss shows the weights still hold them"):
    """Left: forget / retain / unseen-forget accuracy per model. Right: the forget answers' loss, with the
    base model's as a dashed line (``base_name``: its row, default the first); rows whose family does not
    change weights are hatched, an ``exact`` row (the retrained gold model) is green."""
    import matplotlib.pyplot as plt

    names = list(table.index)
    base_name = base_name or names[0]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(names))
    width = 0.27
    for i, (col, key) in enumerate((("forget acc", "forget"), ("retain acc", "retain"),
                                    ("unseen forget acc", "unseen_forget"))):
        ax_acc.bar(x + (i - 1) * width, table[col], width, color=COLORS[key], label=col.replace(" acc", ""))
    ax_acc.set_xticks(x)
    ax_acc.set_xticklabels(names, rotation=40, ha="right")
    ax_acc.set_ylabel("exact-match accuracy")
    ax_acc.set_ylim(0, 1.22)
    ax_acc.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax_acc.legend(loc="upper center", ncol=3)
    ax_acc.set_title("What the model says")
    suppressed = table["family"].isin(SUPPRESSION_FAMILIES)
    fill = [COLORS["base"] if n == base_name else COLORS["gold"] if table.loc[n, "family"] == "exact"
            else COLORS["forget"] for n in names]
    bars = ax_loss.bar(x, table["forget answer loss"], color=fill, edgecolor=fill)
    for bar, s in zip(bars, suppressed):
        if s:
            bar.set_facecolor("white")
            bar.set_hatch("//")
    ax_loss.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax_loss.axhline(table.loc[base_name, "forget answer loss"], color=COLORS["base"], ls="--", lw=1,
                    label=f"{base_name}")
    ax_loss.set_xticks(x)
    ax_loss.set_xticklabels(names, rotation=40, ha="right")
    ax_loss.set_ylabel("forget answer loss (NLL / token)")
    ax_loss.legend(loc="upper left")
    ax_loss.set_title("Forget answers' loss (hatched: weights unchanged)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def rmu_shift(base, unlearned, split, layer: int, target, retain_questions: int = 200):
    """Histograms of per-token distances ||h_l - c*u|| (forget set) and ||h_l - h_l^base|| (retain set):
    RMU pulls the forget activations to its target while the retain activations stay where they were."""
    import matplotlib.pyplot as plt
    import torch

    from .unlearning.representation import layer_activations

    target = torch.as_tensor(target, dtype=torch.float32)
    retain = split.retain.sample(retain_questions, seed=0)
    f_before = (layer_activations(base, split.forget, layer) - target).norm(dim=-1).numpy()
    f_after = (layer_activations(unlearned, split.forget, layer) - target).norm(dim=-1).numpy()
    drift = (layer_activations(unlearned, retain, layer) - layer_activations(base, retain, layer)).norm(dim=-1).numpy()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    bins = np.linspace(0, max(f_before.max(), f_after.max()) * 1.02, 40)
    a.hist(f_before, bins=bins, color=COLORS["base"], alpha=0.6, label="base model")
    a.hist(f_after, bins=bins, color=COLORS["forget"], alpha=0.7, label="after RMU")
    a.set_xlabel(f"distance of block {layer}'s activation to c·u")
    a.set_ylabel("forget-set tokens")
    a.set_title("Forget inputs: pulled toward the random target")
    a.legend()
    b.hist(drift, bins=bins, color=COLORS["retain"], alpha=0.8)
    b.set_xlabel(f"distance of block {layer}'s activation to the base model's")
    b.set_ylabel("retain-set tokens")
    b.set_title("Retain inputs: held near where they were")
    fig.tight_layout()
    plt.close(fig)
    return fig, {"forget_before": float(f_before.mean()), "forget_after": float(f_after.mean()),
                 "retain_drift": float(drift.mean())}
