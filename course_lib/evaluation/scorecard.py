"""The scorecard: every measure of notebook 04 for one model, with bootstrap confidence intervals.

``scorecard(model, split, reference=gold)`` runs each model **once per set** (one batched greedy
generation, one batched teacher-forced forward over the true, paraphrased and perturbed answers,
:func:`score_model`) and derives every measure from those cached per-question numbers:

========================= ================================================================================
column                    definition (set; "higher" direction)
========================= ================================================================================
``{set}_acc``             greedy exact match (``evaluation.text``); sets forget, unseen_forget, retain, world, holdout
``{set}_rouge``           ROUGE-L recall of the greedy answer (``stats.rouge_l_recall``; TOFU)
``{set}_prob``            P(a|q)^(1/|a|), answer tokens without end token (TOFU); ``world_prob``: TOFU's
                          multiple-choice form P(a)^(1/|a|) / (that + sum over the 4 perturbed answers)
``forget_truth_ratio``    mean of min(R, 1/R) (TOFU's code, open-unlearning's ``closer_to_1_better``):
                          1 = the model is indifferent between true and false answers; its complement
                          1 - min(R, 1/R) is the "still knows (or anti-knows) it" form
``retain/world_truth_ratio`` mean of max(0, 1 - R) (TOFU's model utility, ``true_better``): 1 = prefers truth;
                          on world facts with R_verbatim (below), as TOFU has no paraphrase there
``forget_em``/``_es``     exact token memorisation / extraction strength (``evaluation.extraction``)
``mia_auc_{score}``       AUC of a membership score (``mia.MIA_SCORES``), forget (members) vs holdout
``privacy_leak_{score}``  MUSE's (AUC - AUC_ref) / AUC_ref against the reference model (0 = like it)
``forget_quality``        TOFU: KS-test p-value, truth ratios R of this model vs the reference on forget
``*_verbatim``            the same with R_verbatim: the *trained* answer vs the raw perturbed answers
                          (what a model that learned strings, not facts, can show; notebook 04)
``model_utility``         TOFU: harmonic mean of retain and world prob, ROUGE-L and truth ratio (6 numbers)
``retain_perplexity``     exp(NLL per token) of retain answers (``evaluation.fluency``)
``{set}_degenerate``      fraction of degenerate greedy answers (``fluency.degenerate_reasons``)
``objective_*``           the survey's Accuracy (1 - forget_acc), Locality (retain_acc), Generalizability
========================= ================================================================================

R is TOFU's truth ratio (``stats.truth_ratio``): mean over the 4 perturbed answers of P(perturbed)^(1/n)
over P(paraphrased)^(1/n); both said in the paraphrase template (``people.paraphrase_answer``), as
TOFU's perturbed answers are perturbed paraphrases. A tiny model trained from scratch memorises strings,
not facts, so it barely prefers "born in Halifax" to "born in Porto" even when it answers "Halifax":
``forget_truth_ratio_verbatim`` / ``forget_quality_verbatim`` use R_verbatim = mean P(perturbed)^(1/n) /
P(answer)^(1/n) with the trained answer and the raw perturbed answers instead (the form TOFU's
evaluation uses on its world-fact and real-author questions, which have no paraphrase), which does
separate the base model from the retrained one.

**Confidence intervals** (``_lo``/``_hi``, percentile bootstrap, ``n_boot`` resamples, ``seed``): a mean
resamples its set's questions; an AUC resamples members and non-members independently; model utility
resamples retain and world questions and recomputes the harmonic mean; perplexity is a ratio of sums
over the resampled questions. **forget quality**: the forget questions are resampled *paired* (the same
questions for this model and the reference) and the KS p-value recomputed on each resample; duplicated
questions make it a rough band of how much the p-value moves with the choice of forget questions, not
an exact interval. Privacy leak pairs the same resamples for both models. The resampling unit is the
question: the questions of one person are correlated, so the intervals are optimistic for small sets.
"""
from __future__ import annotations

import warnings
import zlib as _zlib
from dataclasses import dataclass, field

import numpy as np

from ..data.people import paraphrase_answer
from . import stats
from .extraction import exact_memorization, extraction_strength
from .fluency import degenerate_flags
from .mia import MIA_SCORES, mia_scores, token_stats
from .text import normalize

SETS = ("forget", "unseen_forget", "retain", "world", "holdout")
UTILITY_PARTS = ("retain_prob", "retain_rouge", "retain_truth_ratio", "world_prob", "world_rouge", "world_truth_ratio")


@dataclass
class ModelScores:
    """Per-question numbers of one model on each set of a split (what :func:`score_model` returns)."""

    per_question: dict            # set -> measure -> array over the set's questions
    split_name: str
    ids: dict = field(default_factory=dict)  # set -> QA ids (the same questions for every model)
    seconds: float = float("nan")  # time it took to score


def _sets(split, retain_questions: int | None) -> dict:
    retain = split.retain if retain_questions is None else split.retain.sample(retain_questions, seed=0)
    return {"forget": split.forget, "unseen_forget": split.unseen_forget, "retain": retain,
            "world": split.world, "holdout": split.holdout}


# What each set needs: greedy answers ("gen"), the true answers teacher-forced ("tf"), the truth
# ratio's paraphrased / perturbed answers ("tr"), and the raw perturbed answers for TOFU's
# multiple-choice probability on world facts ("mc"). Holdout people only serve as non-members.
PLAN = {"forget": ("gen", "tf", "tr", "mc"), "unseen_forget": ("gen",), "retain": ("gen", "tf", "tr"),
        "world": ("gen", "tf", "mc"), "holdout": ("gen", "tf")}


def _set_measures(model, qs, plan, k: float, batch_size: int, max_new_tokens: int) -> dict:
    """Every per-question number of one set: one batched generation, and each sequence run once."""
    n = len(qs)
    preds = model.answer(qs.questions, max_new_tokens=max_new_tokens, batch_size=batch_size)
    out = {"correct": np.array([normalize(p) == normalize(a) for p, a in zip(preds, qs.answers)], dtype=float),
           "rouge": np.array([stats.rouge_l_recall(p, a) for p, a in zip(preds, qs.answers)]),
           "degenerate": degenerate_flags(preds).astype(float)}
    if "tf" not in plan:
        return out
    # The true answers with the end token and the full next-token distribution (Min-K%++) ...
    true = token_stats(model, qs.questions, qs.answers, with_eos=True, full=True, batch_size=batch_size)
    p_true = np.array([np.exp(lp[:-1].mean()) for lp in true.logp])
    out.update({
        "prob": p_true,
        "em": np.array([exact_memorization(h[:-1]) for h in true.hit]),
        "es": np.array([extraction_strength(h[:-1]) for h in true.hit]),
        "nll": np.array([-lp.sum() for lp in true.logp]), "ntok": np.array([lp.size for lp in true.logp], float),
        **{f"mia_{name}": v for name, v in mia_scores(true, qs.answers, k=k).items()}})
    # ... then the paraphrased answer and the 4 perturbed paraphrases ("tr"), the 4 raw perturbed
    # answers ("mc": TOFU's multiple-choice probability and the verbatim truth ratio).
    n_pert = len(qs[0].perturbed_answers)
    alts = []
    if "tr" in plan:
        alts += [q.paraphrased_answer for q in qs] + \
            [paraphrase_answer(q.attribute, q.perturbed_answers[j]) for j in range(n_pert) for q in qs]
    if "mc" in plan:
        alts += [q.perturbed_answers[j] for j in range(n_pert) for q in qs]
    if not alts:
        return out
    alt = token_stats(model, list(qs.questions) * (len(alts) // n), alts, with_eos=False, full=False,
                      batch_size=batch_size)
    blocks = iter(np.array([np.exp(lp.mean()) for lp in alt.logp]).reshape(-1, n))
    if "tr" in plan:
        p_para = next(blocks)
        ratio = np.stack([next(blocks) for _ in range(n_pert)], axis=1).mean(1) / p_para
        out.update({"truth_ratio": ratio, "tr_forget": np.minimum(ratio, 1 / ratio),
                    "tr_keep": np.maximum(0.0, 1 - ratio)})
    if "mc" in plan:
        p_raw = np.stack([next(blocks) for _ in range(n_pert)], axis=1)
        verbatim = p_raw.mean(1) / p_true
        out.update({"prob_mc": p_true / (p_true + p_raw.sum(1)), "truth_ratio_verbatim": verbatim,
                    "tr_forget_verbatim": np.minimum(verbatim, 1 / verbatim),
                    "tr_keep_verbatim": np.maximum(0.0, 1 - verbatim)})
    return out


def score_model(model, split, *, retain_questions: int | None = 400, k: float = 0.2, batch_size: int = 128,
                max_new_tokens: int = 12, sets=SETS) -> ModelScores:
    """The per-question numbers of ``model`` on the sets of ``split`` (default: all of :data:`SETS`).

    ``retain_questions``: evaluate a fixed seeded sample of that many retain questions (TOFU evaluates
    400); ``None``: all of them. ``k``: Min-K% / Min-K%++'s fraction of tokens. ``sets``: a subset of
    :data:`SETS` (the card then leaves out what needs the others: MIA needs forget and holdout)."""
    import time

    model = _as_model(model)
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    unknown = [x for x in sets if x not in SETS]
    if unknown or "forget" not in sets:
        raise ValueError(f"sets={tuple(sets)!r}; allowed values: {', '.join(SETS)} (forget is required)")
    start = time.perf_counter()
    sets = {name: qs for name, qs in _sets(split, retain_questions).items() if name in sets}
    per = {name: _set_measures(model, qs, PLAN[name], k, batch_size, max_new_tokens)
           for name, qs in sets.items() if len(qs)}
    return ModelScores(per, split.name, {name: qs.ids for name, qs in sets.items()}, time.perf_counter() - start)


def _as_model(obj):
    return obj.model if hasattr(obj, "model") and hasattr(obj, "seconds") and hasattr(obj, "method") else obj


# ---------------------------------------------------------------- bootstrap
def _index(n: int, n_boot: int, seed: int, tag: str) -> np.ndarray:
    """Resampling indices (n_boot x n) that depend only on (seed, set, n): paired across models."""
    rng = np.random.default_rng([seed, _zlib.crc32(tag.encode()), n])
    return rng.integers(0, n, size=(n_boot, n))


def _interval(boots: np.ndarray, ci: float) -> tuple[float, float]:
    boots = np.asarray(boots, dtype=float)
    boots = boots[np.isfinite(boots)]
    if boots.size == 0:
        return float("nan"), float("nan")
    a = (1 - ci) / 2 * 100
    lo, hi = np.percentile(boots, [a, 100 - a])
    return float(lo), float(hi)


def boot_auc(members: np.ndarray, nonmembers: np.ndarray, idx_m: np.ndarray, idx_n: np.ndarray) -> np.ndarray:
    """ROC AUC on every resample at once (Mann-Whitney with average ranks for ties)."""
    from scipy.stats import rankdata

    m, n = idx_m.shape[1], idx_n.shape[1]
    ranks = rankdata(np.concatenate([members[idx_m], nonmembers[idx_n]], axis=1), axis=1)
    return (ranks[:, :m].sum(1) - m * (m + 1) / 2) / (m * n)


def harmonic_mean(values) -> np.ndarray:
    """Harmonic mean along the last axis; 0 where any value is <= 0 (TOFU's model utility)."""
    v = np.asarray(values, dtype=float)
    safe = np.where(v > 0, v, 1.0)
    out = v.shape[-1] / (1.0 / safe).sum(-1)
    return np.where((v <= 0).any(-1), 0.0, out)


# ---------------------------------------------------------------- the card
MEANS = {  # column: (set, per-question measure)
    "forget_acc": ("forget", "correct"), "forget_rouge": ("forget", "rouge"), "forget_prob": ("forget", "prob"),
    "forget_truth_ratio": ("forget", "tr_forget"), "forget_truth_ratio_verbatim": ("forget", "tr_forget_verbatim"),
    "forget_em": ("forget", "em"), "forget_es": ("forget", "es"),
    "forget_degenerate": ("forget", "degenerate"),
    "unseen_forget_acc": ("unseen_forget", "correct"), "unseen_forget_rouge": ("unseen_forget", "rouge"),
    "retain_acc": ("retain", "correct"), "retain_rouge": ("retain", "rouge"), "retain_prob": ("retain", "prob"),
    "retain_truth_ratio": ("retain", "tr_keep"), "retain_em": ("retain", "em"),
    "retain_degenerate": ("retain", "degenerate"),
    "world_acc": ("world", "correct"), "world_rouge": ("world", "rouge"), "world_prob": ("world", "prob_mc"),
    "world_truth_ratio": ("world", "tr_keep_verbatim"),
    "holdout_acc": ("holdout", "correct"), "holdout_em": ("holdout", "em"),
}


def _card_row(s: ModelScores, ref: ModelScores | None, n_boot: int, seed: int, ci: float) -> dict:
    P = s.per_question
    idx = {name: _index(len(v["correct"]), n_boot, seed, name) for name, v in P.items()}
    row, boots = {}, {}
    for col, (st, meas) in MEANS.items():
        if st not in P or meas not in P[st]:
            continue
        x = P[st][meas]
        boots[col] = x[idx[st]].mean(1)
        row[col] = float(x.mean())
    if "retain" in P:
        nll, ntok = P["retain"]["nll"], P["retain"]["ntok"]
        row["retain_perplexity"] = float(np.exp(nll.sum() / ntok.sum()))
        boots["retain_perplexity"] = np.exp(nll[idx["retain"]].sum(1) / ntok[idx["retain"]].sum(1))
    if all(c in row for c in UTILITY_PARTS):
        row["model_utility"] = float(harmonic_mean([row[c] for c in UTILITY_PARTS]))
        boots["model_utility"] = harmonic_mean(np.stack([boots[c] for c in UTILITY_PARTS], axis=-1))
    for name in MIA_SCORES if "holdout" in P and (ref is None or "holdout" in ref.per_question) else ():
        m, h = P["forget"][f"mia_{name}"], P["holdout"][f"mia_{name}"]
        row[f"mia_auc_{name}"] = stats.mia_auc(m, h)
        boots[f"mia_auc_{name}"] = boot_auc(m, h, idx["forget"], idx["holdout"])
        if ref is not None:
            rm, rh = ref.per_question["forget"][f"mia_{name}"], ref.per_question["holdout"][f"mia_{name}"]
            ref_auc = stats.mia_auc(rm, rh)
            row[f"privacy_leak_{name}"] = stats.privacy_leak(row[f"mia_auc_{name}"], ref_auc)
            ref_boots = boot_auc(rm, rh, idx["forget"], idx["holdout"])  # the same resamples: paired
            boots[f"privacy_leak_{name}"] = (boots[f"mia_auc_{name}"] - ref_boots) / ref_boots
    if ref is not None:
        from scipy.stats import ks_2samp

        for col, key in (("forget_quality", "truth_ratio"), ("forget_quality_verbatim", "truth_ratio_verbatim")):
            if key not in P["forget"] or key not in ref.per_question["forget"]:
                continue
            a, b = P["forget"][key], ref.per_question["forget"][key]
            with warnings.catch_warnings():  # samples with ties fall back to the asymptotic p-value
                warnings.simplefilter("ignore", RuntimeWarning)
                row[col] = stats.forget_quality(a, b)
                boots[col] = ks_2samp(a[idx["forget"]], b[idx["forget"]], axis=1).pvalue
    for col, src, flip in (("objective_accuracy", "forget_acc", True), ("objective_locality", "retain_acc", False),
                           ("objective_generalizability", "unseen_forget_acc", True)):
        if src in row:
            row[col], boots[col] = (1 - row[src], 1 - boots[src]) if flip else (row[src], boots[src])
    out = {}
    for col, value in row.items():
        lo, hi = _interval(boots[col], ci)
        out.update({col: value, f"{col}_lo": lo, f"{col}_hi": hi})
    return out


def _check_same_questions(s: ModelScores, ref: ModelScores) -> None:
    for name in ("forget", "holdout"):
        if name in s.ids and name in ref.ids and s.ids[name] != ref.ids[name]:
            raise ValueError(f"the reference was scored on other {name} questions (split {ref.split_name!r} vs "
                             f"{s.split_name!r}); score both on the same split")


def scorecard(model, split, reference=None, name: str | None = None, seconds: float | None = None,
              n_boot: int = 1000, seed: int = 0, *, ci: float = 0.95, retain_questions: int | None = 400,
              k: float = 0.2, tags: dict | None = None, sets=SETS):
    """One tidy row (a pandas DataFrame indexed by ``model``) with every measure, its CI and the cost.

    ``model``: a TextModel, an ``UnlearnResult`` (its ``.model``; ``.seconds`` is the cost) or the
    :class:`ModelScores` of :func:`score_model`. ``reference``: the retrained gold model (or its
    scores) for forget quality and privacy leak; ``None`` leaves those columns out. ``seconds``: the
    unlearning cost (``UnlearnResult.seconds`` when not given). ``tags``: extra columns (``method``,
    ``seed``). ``sets``: score only these sets (see :func:`score_model`). Columns and intervals: see
    the module docstring.
    """
    import pandas as pd

    if n_boot < 10:
        raise ValueError(f"n_boot must be >= 10 for a percentile interval, got {n_boot}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if seconds is None:
        seconds = getattr(model, "seconds", None) if hasattr(model, "method") else None
    opts = {"retain_questions": retain_questions, "k": k, "sets": sets}
    s = model if isinstance(model, ModelScores) else score_model(model, split, **opts)
    ref = None
    if reference is not None:
        ref = reference if isinstance(reference, ModelScores) else score_model(reference, split, **opts)
        _check_same_questions(s, ref)
    if name is None:
        name = getattr(model, "method", None) or getattr(_as_model(model), "name", "model")
    row = {"model": name, **(tags or {}), **_card_row(s, ref, n_boot, seed, ci),
           "seconds": float("nan") if seconds is None else float(seconds), "eval_seconds": s.seconds,
           "forget_questions": len(s.per_question["forget"]["correct"])}
    return pd.DataFrame([row]).set_index("model")


def scorecards(models: dict, split, reference=None, n_boot: int = 1000, seed: int = 0, *,
               seconds: dict | None = None, tags: dict | None = None, **kwargs):
    """``scorecard`` for each ``{name: model_or_result}``, stacked; the reference is scored once.

    ``seconds``/``tags``: per-name costs and extra columns (e.g. ``{"npo s1": {"method": "npo", "seed": 1}}``).
    """
    import pandas as pd

    if not models:
        raise ValueError("models is empty: pass {name: model or UnlearnResult}")
    opts = {k: kwargs[k] for k in ("retain_questions", "k", "sets") if k in kwargs}
    ref = reference
    if reference is not None and not isinstance(reference, ModelScores):
        ref = score_model(reference, split, **opts)
    rows = []
    for name, m in models.items():
        same = reference is not None and _as_model(m) is _as_model(reference)
        scored = ref if same else m
        cost = (seconds or {}).get(name, getattr(m, "seconds", None) if hasattr(m, "method") else None)
        rows.append(scorecard(scored, split, ref, name=name, seconds=cost, n_boot=n_boot, seed=seed,
                              tags=(tags or {}).get(name), **kwargs))
    return pd.concat(rows)


def measures(card) -> list[str]:
    """The measure columns of a card (without ``_lo``/``_hi``, tags and costs)."""
    return [c for c in card.columns if f"{c}_lo" in card.columns]


def with_ci(card, columns=None, digits: int = 3):
    """A display table: "value [lo, hi]" for each measure column."""
    import pandas as pd

    columns = columns or measures(card)
    fmt = lambda v, lo, hi: f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"  # noqa: E731
    return pd.DataFrame({c: [fmt(v, lo, hi) for v, lo, hi in zip(card[c], card[f"{c}_lo"], card[f"{c}_hi"])]
                         for c in columns}, index=card.index)


def spread_over_seeds(card, by: str = "method", columns=None):
    """Mean, standard deviation, min and max of measures over the rows of each ``by`` group (seeds)."""
    if by not in card.columns:
        raise ValueError(f"by={by!r} is not a column of the card; pass tags={{name: {{{by!r}: ...}}}} to scorecards")
    columns = columns or measures(card)
    return card.groupby(by)[columns].agg(["mean", "std", "min", "max"])
