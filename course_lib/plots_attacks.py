"""Notebook 08's figures: relearning curves, what each layer still knows, and the recovery heat map.

Every function takes what :func:`course_lib.attacks.text.attack_table` returns (its
``attrs["results"]``) and returns the figure. The base model is black and the gold model green, as in
every plot of the kit; unlearned models get the other colours in a fixed order.
"""
from __future__ import annotations

from .plots import COLORS

OTHER_COLOURS = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#d62728", "#1f77b4")


def model_colours(names) -> dict:
    """base black, gold green (any name containing them), the rest in a fixed order."""
    out, rest = {}, iter(OTHER_COLOURS * 3)
    for name in names:
        key = str(name).lower()
        out[name] = COLORS["gold"] if "gold" in key else COLORS["base"] if key == "base" else next(rest)
    return out


def _results(table, attack: str) -> dict:
    res = {m: r for (m, a), r in table.attrs["results"].items() if a == attack}
    if not res:
        raise ValueError(f"the table has no {attack!r} rows: run attack_table(..., attacks=[..., {attack!r}])")
    return res


def relearn_curves(table, ax=None):
    """Held-back forget accuracy against relearning steps, one line per model (``relearn`` rows)."""
    import matplotlib.pyplot as plt

    res = _results(table, "relearn")
    colours = model_colours(res)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, r in res.items():
        d = r.details
        ax.plot(d["step"], d["held_back_acc"], marker="o", ms=3, color=colours[name], label=name,
                lw=2.5 if name in ("gold", "base") else 1.5)
    ax.set_xlabel("relearning steps (on the other half of the forget facts)")
    ax.set_ylabel("held-back forget accuracy")
    ax.set_ylim(-0.02, 1.02)
    best = max((n for n in res if n not in ("base", table.attrs.get("control"))), key=lambda n: res[n].after, default=None)
    ax.set_title(f"Relearning: {best} gets back what it never saw again" if best else "Relearning")
    ax.legend(ncol=2, fontsize=8)
    plt.close(ax.figure)
    return ax.figure


def layer_plot(table):
    """Per layer: the logit lens's top-1 and the linear probe's accuracy on the forget people, one line
    per model (needs ``logit_lens`` and ``probe`` rows)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), sharey=True)
    for ax, attack, column, title in ((axes[0], "logit_lens", "top1", "Logit lens: answer is top-1"),
                                      (axes[1], "probe", "probe_acc", "Linear probe (trained on retain people)")):
        res = _results(table, attack)
        colours = model_colours(res)
        for name, r in res.items():
            d = r.details[r.details["set"] == "forget"]
            ax.plot(d["layer"], d[column], marker="o", color=colours[name], label=name,
                    lw=2.5 if name in ("gold", "base") else 1.5)
        if attack == "probe":
            chance = next(iter(res.values())).extras["chance"]
            ax.axhline(chance, color=COLORS["holdout"], ls=":", label="chance")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_title(title)
        ax.set_xticks(sorted(set(next(iter(res.values())).details["layer"])))
    axes[0].set_ylabel("forget facts recovered")
    axes[1].legend(fontsize=8, ncol=2)
    fig.suptitle("What the layers still know about the forget people", fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def recovery_heatmap(matrix, title: str = "Forget accuracy an attacker gets (green border: the control)"):
    """A models x attacks matrix (``attacks.text.recovery_matrix``) as an annotated heat map."""
    import matplotlib.pyplot as plt
    import numpy as np

    values = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * values.shape[1], 0.9 + 0.42 * values.shape[0]))
    im = ax.imshow(values, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(c).replace("_", " ") for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(values.shape[0]), list(matrix.index))
    ax.grid(False)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > 0.6 else "black")
    for i, name in enumerate(matrix.index):
        if "gold" in str(name).lower():
            ax.add_patch(plt.Rectangle((-0.5, i - 0.5), values.shape[1], 1, fill=False, ec=COLORS["gold"], lw=2.5))
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
