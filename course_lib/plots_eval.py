"""Figures of notebook 04 (measuring forgetting), in the kit's colours (``plots.COLORS``).

Every function takes a scorecard (``cl.evaluation.scorecard.scorecards``: one row per model, columns
``x``, ``x_lo``, ``x_hi``) and returns the axes (or figure). Base model black, gold model green, set
colours as everywhere; the unlearning methods get the colours of :data:`METHOD_COLORS`.
"""
from __future__ import annotations

import numpy as np

from .plots import COLORS

METHOD_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#ff7f0e", "#17becf", "#7f7f7f", "#d62728"]
LABELS = {
    "forget_acc": "forget accuracy", "forget_rouge": "forget ROUGE-L", "forget_prob": "forget P(a|q)^(1/|a|)",
    "forget_truth_ratio": "forget truth ratio\nmin(R, 1/R)", "forget_em": "forget exact memorisation",
    "forget_es": "forget extraction strength", "unseen_forget_acc": "unseen-forget accuracy",
    "retain_acc": "retain accuracy", "world_acc": "world accuracy", "holdout_acc": "holdout accuracy",
    "model_utility": "model utility", "forget_quality": "forget quality (KS p)",
    "retain_perplexity": "retain perplexity", "retain_degenerate": "degenerate answers",
    "mia_auc_loss": "MIA AUC (LOSS)", "mia_auc_zlib": "MIA AUC (zlib)", "mia_auc_min_k": "MIA AUC (Min-K%)",
    "mia_auc_min_k_pp": "MIA AUC (Min-K%++)", "privacy_leak_min_k_pp": "privacy leak (Min-K%++)",
    "privacy_leak_loss": "privacy leak (LOSS)", "forget_quality_verbatim": "forget quality, verbatim (KS p)",
    "forget_truth_ratio_verbatim": "forget truth ratio, verbatim", "privacy_leak_zlib": "privacy leak (zlib)",
    "privacy_leak_min_k": "privacy leak (Min-K%)", "forget_degenerate": "degenerate answers (forget)",
}
# Agreement plots read every forget measure as "how close to the gold model" (its distance to the
# gold model's value, negated); these need no gold model: forget quality is already a comparison with
# it (higher = closer) and privacy leak is 0 at the gold model (closer = smaller |leak|).
FORGET_MEASURES = ("forget_acc", "forget_rouge", "forget_prob", "forget_truth_ratio", "forget_truth_ratio_verbatim",
                   "forget_em", "forget_es", "unseen_forget_acc", "forget_quality", "forget_quality_verbatim",
                   "mia_auc_loss", "mia_auc_zlib", "mia_auc_min_k", "mia_auc_min_k_pp",
                   "privacy_leak_loss", "privacy_leak_zlib", "privacy_leak_min_k", "privacy_leak_min_k_pp")


def model_colors(names) -> dict:
    """base -> black, gold -> green, anything else -> a method colour (the same prefix, the same colour)."""
    out, methods = {}, []
    for n in names:
        key = str(n).lower()
        if key.startswith("base"):
            out[n] = COLORS["base"]
        elif key.startswith(("gold", "retrain")):
            out[n] = COLORS["gold"]
        else:
            stem = key.split()[0]
            if stem not in methods:
                methods.append(stem)
            out[n] = METHOD_COLORS[methods.index(stem) % len(METHOD_COLORS)]
    return out


def _err(card, col):
    v = card[col].to_numpy(float)
    return v, np.vstack([v - card[f"{col}_lo"].to_numpy(float), card[f"{col}_hi"].to_numpy(float) - v]).clip(0)


def scorecard_plot(card, metrics=("forget_acc", "mia_auc_min_k_pp", "forget_quality", "model_utility"),
                   ncols: int = 4, title: str | None = None):
    """One panel per measure: a bar per model with its bootstrap 95 % interval; returns the figure."""
    import matplotlib.pyplot as plt

    missing = [m for m in metrics if m not in card.columns]
    if missing:
        raise ValueError(f"metrics {missing} are not columns of the card; e.g. {list(card.columns[:6])}")
    ncols = min(ncols, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 0.32 * len(card) * nrows + 1.2 * nrows),
                             squeeze=False, sharey=True)
    colors = model_colors(card.index)
    y = np.arange(len(card))
    for ax, m in zip(axes.flat, metrics):
        v, err = _err(card, m)
        ax.barh(y, v, xerr=err, color=[colors[n] for n in card.index], alpha=0.85, capsize=2,
                error_kw={"lw": 0.8})
        ax.set_title(LABELS.get(m, m), fontsize=9)
        ax.set_yticks(y, [str(n) for n in card.index])
        ax.invert_yaxis()
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(title or "Scorecard (bars: 95 % bootstrap intervals)", fontsize=11)
    fig.tight_layout()
    return fig


def forget_utility_plane(card, x: str = "forget_quality", y: str = "model_utility", base: str = "base",
                         gold: str = "gold", logx: bool | None = None, ax=None, title: str | None = None):
    """Each model as a point with its intervals; the base and gold models are the landmarks.

    Good unlearning moves from the base model towards the gold model: forgetting like retraining,
    keeping the utility. ``logx``: log scale for x (default: on for forget quality, a p-value).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.0))
    colors = model_colors(card.index)
    xv, xe = _err(card, x)
    yv, ye = _err(card, y)
    for i, n in enumerate(card.index):
        landmark = str(n) in (base, gold)
        ax.errorbar(xv[i], yv[i], xerr=xe[:, i:i + 1], yerr=ye[:, i:i + 1], fmt="*" if landmark else "o",
                    ms=14 if landmark else 6, color=colors[n], ecolor=colors[n], elinewidth=0.7, capsize=2,
                    alpha=0.9, label=str(n) if landmark or str(n).split()[0] not in
                    [str(m).split()[0] for m in card.index[:i]] else None)
        if landmark:
            ax.annotate(f" {n}", (xv[i], yv[i]), fontsize=9, va="center")
    if logx if logx is not None else x == "forget_quality":
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(x, x).replace("\n", " "))
    ax.set_ylabel(LABELS.get(y, y).replace("\n", " "))
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "Forgetting vs utility: aim for the gold model")
    return ax


def forgetting_view(card, metrics=None, gold: str = "gold"):
    """Forget measures as closeness to the gold model (higher = closer), for the rows other than ``gold``.

    ``-|x - x_gold|`` for a measure of the model alone (accuracy, probability, EM, ES, truth ratio, MIA
    AUC); forget quality as it is (a p-value against the gold model); ``-|privacy leak|``.
    """
    if gold not in card.index:
        raise ValueError(f"gold={gold!r} is not a row of the card; rows: {list(card.index)}")
    metrics = [m for m in (metrics or FORGET_MEASURES) if m in card.columns]
    out = card.drop(index=gold)[metrics].astype(float).copy()
    for m in metrics:
        if m.startswith("forget_quality"):
            continue
        ref = 0.0 if m.startswith("privacy_leak") else float(card.loc[gold, m])
        out[m] = -(out[m] - ref).abs()
    return out


VERDICTS = {"accuracy": "forget_acc", "extraction": "forget_es", "MIA (Min-K%++)": "mia_auc_min_k_pp",
            "MIA (LOSS)": "mia_auc_loss"}


def verdicts(card, gold: str = "gold", alpha: float = 0.05):
    """Per model, does each measure say "forgotten like the gold model"? (True/False per column).

    For accuracy, extraction strength and the MIA AUCs: the model's 95 % interval overlaps the gold
    model's. For forget quality (TOFU's convention): the KS p-value against the gold model is at least
    ``alpha``, for each truth-ratio form present. ``disagree``: the verdicts are not all the same.
    A heuristic for reading a card, not a test: overlapping intervals do not prove equality.
    """
    import pandas as pd

    if gold not in card.index:
        raise ValueError(f"gold={gold!r} is not a row of the card; rows: {list(card.index)}")
    g = card.loc[gold]
    rows = {}
    for name, r in card.drop(index=gold).iterrows():
        v = {label: bool(r[f"{c}_lo"] <= g[f"{c}_hi"] and g[f"{c}_lo"] <= r[f"{c}_hi"])
             for label, c in VERDICTS.items() if c in card.columns}
        for label, c in (("forget quality", "forget_quality"),
                         ("forget quality (verbatim)", "forget_quality_verbatim")):
            if c in card.columns:
                v[label] = bool(r[c] >= alpha)
        v["disagree"] = len(set(v.values())) > 1
        rows[name] = v
    return pd.DataFrame.from_dict(rows, orient="index")


def agreement_heatmap(card, metrics=None, gold: str = "gold", ax=None, title: str | None = None):
    """Spearman rank correlation, across the models other than ``gold``, of the forget measures read
    as closeness to the gold model (:func:`forgetting_view`).

    +1: two measures rank the models the same way; near 0 or negative: they disagree about which
    model is closest to retraining."""
    import matplotlib.pyplot as plt

    view = forgetting_view(card, metrics, gold)
    corr = view.rank().corr(method="pearson")  # Pearson on ranks = Spearman
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * len(corr) + 2.5, 0.5 * len(corr) + 1.5))
    im = ax.imshow(corr.to_numpy(), cmap="RdBu", vmin=-1, vmax=1)
    labels = [LABELS.get(c, c).replace("\n", " ") for c in corr.columns]
    ax.set_xticks(range(len(corr)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(corr)), labels, fontsize=8)
    ax.grid(False)
    for i in range(len(corr)):
        for j in range(len(corr)):
            ax.text(j, i, f"{corr.iat[i, j]:.1f}", ha="center", va="center", fontsize=7)
    ax.figure.colorbar(im, ax=ax, shrink=0.7, label="rank correlation")
    ax.set_title(title or "Do the forget measures agree on which model is closest to gold?")
    return ax


def rank_plot(card, metrics=None, gold: str = "gold", ax=None, title: str | None = None):
    """Each model's rank (1 = closest to the gold model) under each forget measure: crossing lines = disagreement."""
    import matplotlib.pyplot as plt

    view = forgetting_view(card, metrics, gold)
    ranks = view.rank(ascending=False, method="average")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.8 * len(view.columns) + 2.5, 3.6))
    colors = model_colors(view.index)
    x = np.arange(len(view.columns))
    for n in view.index:
        ax.plot(x, ranks.loc[n].to_numpy(), "o-", color=colors[n], label=str(n), lw=1.2, ms=4, alpha=0.85)
    ax.set_xticks(x, [LABELS.get(c, c).replace("\n", " ") for c in view.columns], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("rank (1 = closest to gold)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title(title or "Which model is closest to retraining? Each measure's ranking")
    return ax


def seed_strip(card, metric: str, by: str = "method", ax=None, title: str | None = None):
    """One dot per seed, a bar at the mean, per group ``by``: is a ranking of methods bigger than the seed spread?"""
    import matplotlib.pyplot as plt

    if by not in card.columns:
        raise ValueError(f"by={by!r} is not a column of the card (tag the rows with scorecards(..., tags=...))")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.0))
    groups = list(dict.fromkeys(card[by]))
    colors = model_colors(groups)
    for i, g in enumerate(groups):
        vals = card.loc[card[by] == g, metric].to_numpy(float)
        ax.scatter(np.full(vals.size, i) + np.linspace(-0.12, 0.12, vals.size), vals, color=colors[g], s=22, zorder=3)
        ax.hlines(vals.mean(), i - 0.25, i + 0.25, color=colors[g], lw=2)
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylabel(LABELS.get(metric, metric).replace("\n", " "))
    ax.set_title(title or f"{LABELS.get(metric, metric)}: one dot per seed")
    return ax


def mia_histograms(scores: dict, score: str = "min_k_pp", bins: int = 30, title: str | None = None):
    """Per model (``{name: ModelScores}``), the membership score on forget (members) vs holdout people."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores), 2.8), sharey=True, squeeze=False)
    for ax, (name, s) in zip(axes.flat, scores.items()):
        f, h = s.per_question["forget"][f"mia_{score}"], s.per_question["holdout"][f"mia_{score}"]
        edges = np.histogram_bin_edges(np.r_[f, h], bins=bins)
        ax.hist(h, bins=edges, density=True, alpha=0.5, color=COLORS["holdout"], label="holdout (never seen)")
        ax.hist(f, bins=edges, density=True, histtype="step", lw=2, color=COLORS["forget"], label="forget set")
        ax.set_title(str(name), fontsize=9)
        ax.set_xlabel(f"{score} score (higher = member)")
    axes.flat[0].set_ylabel("density")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "Membership scores: forget set vs people never trained on", fontsize=10)
    fig.tight_layout()
    return fig


def sustainability_plot(table, ax=None, title: str | None = None):
    """``muse.sustainability`` output: accuracy on each request and retain accuracy, after each request."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    x = table.index.to_numpy()
    reqs = [c for c in table.columns if c.startswith("forget_acc_request")]
    for j, c in enumerate(reqs):
        ax.plot(x, table[c], "o-", color=COLORS["forget"], alpha=0.35 + 0.65 * (j + 1) / len(reqs), lw=1.2,
                ms=4, label=f"forget accuracy, request {j + 1}")
    v, err = _err(table, "retain_acc")
    ax.errorbar(x, v, yerr=err, fmt="s-", color=COLORS["retain"], capsize=2, label="retain accuracy")
    ax.set_xticks(x)
    ax.set_xlabel("deletion requests processed")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title(title or "Sustainability: requests one after another")
    return ax


def scalability_plot(table, ax=None, title: str | None = None):
    """``muse.scalability`` output: forget and retain accuracy (with intervals) vs forget-set size."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    x = table["forget_people"].to_numpy(float)
    for col, color in (("forget_acc", COLORS["forget"]), ("retain_acc", COLORS["retain"]),
                       ("model_utility", COLORS["world"])):
        v, err = _err(table, col)
        ax.errorbar(x, v, yerr=err, fmt="o-", color=color, capsize=2, label=LABELS.get(col, col))
    ax.set_xscale("log")
    ax.set_xticks(x, [f"{int(p)}\n{s}" for p, s in zip(x, table.index)])
    ax.minorticks_off()
    ax.set_xlabel("people to forget (split)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    ax.set_title(title or "Scalability: the same method on bigger forget sets")
    return ax
