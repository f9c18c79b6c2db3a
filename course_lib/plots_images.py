"""Figures for the image notebooks (09-11): image grids and bar charts of per-concept recognition and
UnlearnCanvas scores, in the kit's one style (``plots.COLORS``)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from .plots import COLORS

METHOD_COLORS = {"base": COLORS["base"], "gold": COLORS["gold"], "esd": "#9467bd", "concept_ablation": "#8c564b",
                 "salun": "#e377c2", "attack": COLORS["forget"]}


def _to_hwc(img: torch.Tensor) -> np.ndarray:
    return img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def image_grid(rows: Mapping[str, torch.Tensor], col_labels: Sequence[str] | None = None, title: str = "",
               scale: float = 0.9, marks: Mapping[str, Sequence[bool]] | None = None):
    """One row of images per entry of ``rows`` (``{"base": (N,3,H,W), "ESD": ...}``), labelled on the left;
    ``col_labels`` under the first row's columns. ``marks[row][i]=False`` draws a red frame (e.g. "the judge
    did not see the prompted shape"). Returns the figure."""
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("rows is empty: pass {'label': images (N, 3, H, W)}")
    ncol = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), ncol, figsize=(scale * ncol + 1.2, scale * len(rows) + 0.6), squeeze=False)
    for r, (label, imgs) in enumerate(rows.items()):
        for c in range(ncol):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if c < len(imgs):
                ax.imshow(_to_hwc(imgs[c]), interpolation="nearest")
                ok = True if marks is None or label not in marks else bool(marks[label][c])
                for spine in ax.spines.values():
                    spine.set_visible(not ok)
                    spine.set_color(COLORS["forget"])
                    spine.set_linewidth(2.5)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if col_labels:
        for c, lab in enumerate(col_labels[:ncol]):
            axes[-1][c].set_xlabel(lab, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def recognition_bars(table, erased: str | None = None, ax=None, title: str = "",
                     ylabel: str = "judged as prompted"):
    """Grouped bars from a DataFrame (rows = models, columns = concepts, values in [0, 1]); the erased
    concept's column label is marked. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(table.columns) + 2), 3.2))
    models = list(table.index)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(table.columns))
    for k, name in enumerate(models):
        color = METHOD_COLORS.get(str(name).split(" ")[0].lower(), None)
        ax.bar(x + (k - (len(models) - 1) / 2) * width, table.loc[name].to_numpy(dtype=float), width,
               label=str(name), color=color)
    labels = [f"{c}\n(erased)" if c == erased else str(c) for c in table.columns]
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "How often the judge sees what was prompted")
    ax.legend(ncol=min(4, len(models)), fontsize=8, loc="lower right")
    return ax


def canvas_bars(table, ax=None, title: str = "UnlearnCanvas-style scores (higher is better)"):
    """Bars of UA, IRA and CRA per model (rows of a :func:`evaluation.image.canvas_table`)."""
    cols = [c for c in ("UA", "IRA", "CRA") if c in table.columns]
    return recognition_bars(table[cols], ax=ax, title=title, ylabel="fraction")


def loss_history(histories: Mapping[str, list], key: str = "forget_loss", ax=None, title: str = ""):
    """One line per method: ``key`` over the unlearning steps."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for name, hist in histories.items():
        vals = [(h["step"], h[key]) for h in hist if key in h]
        if vals:
            s, v = zip(*vals)
            ax.plot(s, v, label=name, color=METHOD_COLORS.get(name.split(" ")[0].lower()))
    ax.set_xlabel("step")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(title or f"{key.replace('_', ' ')} during unlearning")
    ax.legend()
    return ax
