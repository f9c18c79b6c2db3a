"""The statistical core of the benchmarks' metrics, as plain functions on arrays (notebook 04).

Exposed on their own so that anyone can check them against their own computation:

- :func:`forget_quality`: TOFU's forget quality (Maini et al. 2024), the two-sample Kolmogorov-Smirnov
  test p-value between the truth ratios of the unlearned model and of the retrained gold model on the
  forget set. High (e.g. > 0.05): indistinguishable from retraining.
- :func:`truth_ratio`: TOFU's truth ratio, mean over perturbed answers of P(perturbed)^(1/|a|) divided by
  P(paraphrased)^(1/|a|), computed from per-token log-probabilities.
- :func:`mia_auc`: area under the ROC curve of a membership score, members vs non-members
  (higher score = more likely a member).
- :func:`privacy_leak`: MUSE's PrivLeak, (AUC - AUC_gold) / AUC_gold.
- :func:`min_k_percent`: Min-K% Prob (Shi et al. 2024), the mean of the k % lowest token log-probs.
- :func:`zlib_ratio`: Carlini et al. (2021)'s zlib membership score, -(loss) / zlib entropy of the text.
- :func:`rouge_l_recall`: ROUGE-L recall of a prediction against a reference (the ``rouge-score`` package).
- :func:`bootstrap_mean`: a percentile-bootstrap interval of a mean (the claim checks, notebook 02).
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np


def _as_1d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has NaN or infinite values")
    return arr


def forget_quality(truth_ratios_unlearned, truth_ratios_gold) -> float:
    """KS-test p-value between two samples of truth ratios (TOFU's forget quality)."""
    from scipy.stats import ks_2samp

    a = _as_1d(truth_ratios_unlearned, "truth_ratios_unlearned")
    b = _as_1d(truth_ratios_gold, "truth_ratios_gold")
    return float(ks_2samp(a, b).pvalue)


def normalized_probability(token_logprobs: Sequence[float]) -> float:
    """P(a|q)^(1/|a|): the geometric mean of the answer's token probabilities."""
    lp = _as_1d(token_logprobs, "token_logprobs")
    return float(np.exp(lp.mean()))


def truth_ratio(perturbed_token_logprobs: Sequence[Sequence[float]], paraphrased_token_logprobs) -> float:
    """TOFU's truth ratio: mean_i P(perturbed_i)^(1/|a_i|) / P(paraphrased)^(1/|a|). Lower = knows the truth."""
    if len(perturbed_token_logprobs) == 0:
        raise ValueError("perturbed_token_logprobs is empty")
    pert = np.mean([normalized_probability(p) for p in perturbed_token_logprobs])
    return float(pert / normalized_probability(paraphrased_token_logprobs))


def mia_auc(member_scores, nonmember_scores) -> float:
    """ROC AUC of telling members from non-members by a score (higher = more likely a member)."""
    from sklearn.metrics import roc_auc_score

    m = _as_1d(member_scores, "member_scores")
    n = _as_1d(nonmember_scores, "nonmember_scores")
    labels = np.r_[np.ones(m.size), np.zeros(n.size)]
    return float(roc_auc_score(labels, np.r_[m, n]))


def privacy_leak(auc: float, gold_auc: float) -> float:
    """MUSE's PrivLeak: (AUC - AUC_gold) / AUC_gold; 0 = like the retrained model, > 0 = leaks membership."""
    if not gold_auc > 0:
        raise ValueError(f"gold_auc must be > 0, got {gold_auc}")
    return float((auc - gold_auc) / gold_auc)


def min_k_percent(token_logprobs: Sequence[float], k: float = 0.2) -> float:
    """Min-K% Prob: the mean of the ceil(k * n) lowest token log-probabilities (higher = more likely a member)."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    lp = np.sort(_as_1d(token_logprobs, "token_logprobs"))
    n = max(1, int(np.ceil(k * lp.size)))
    return float(lp[:n].mean())


def zlib_ratio(mean_loss: float, text: str) -> float:
    """The zlib membership score: -loss / len(zlib.compress(text)) (higher = more likely a member)."""
    if not text:
        raise ValueError("text is empty")
    return float(-mean_loss / len(zlib.compress(text.encode("utf-8"))))


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall of ``prediction`` against ``reference`` (``rouge-score``, with stemming off)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(scorer.score(reference, prediction)["rougeL"].recall)


def bootstrap_mean(values, ci: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap ``ci`` interval of the mean of ``values`` (e.g. per-question correctness).

    What the claim checks compare with their thresholds (``cl.claims.at_least(label, interval, t)``), so a
    claim does not rest on one question. Seeded: the same values give the same interval."""
    arr = _as_1d(values, "values")
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie strictly between 0 and 1")
    idx = np.random.default_rng(seed).integers(0, arr.size, size=(n_boot, arr.size))
    a = (1 - ci) / 2 * 100
    lo, hi = np.percentile(arr[idx].mean(1), [a, 100 - a])
    return float(lo), float(hi)


def proportion_interval(fraction: float, n: int, ci: float = 0.95) -> tuple[float, float]:
    """Wilson score ``ci`` interval of a proportion: ``fraction`` of ``n`` trials (e.g. the share of ``n``
    generated images the judge recognises as the prompted shape, notebooks 09-11).

    Unlike a bootstrap of ``n`` zeros and ones it does not collapse to a point at 0 or 1, so a claim made
    on 12 samples that all succeeded still carries the uncertainty of 12 samples."""
    from statistics import NormalDist

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} must be a positive number of trials")
    if not 0 <= fraction <= 1 or math.isnan(fraction):
        raise ValueError(f"fraction={fraction!r} must lie in [0, 1]")
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci!r} must lie strictly between 0 and 1")
    z = NormalDist().inv_cdf(0.5 + ci / 2)
    centre = (fraction + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference_interval(fraction_a: float, n_a: int, fraction_b: float, n_b: int,
                                   ci: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score ``ci`` interval of ``fraction_a - fraction_b`` (Newcombe 1998, method 10):
    two proportions over ``n_a`` and ``n_b`` trials (e.g. an attacked model's and the gold model's recovered
    fraction, notebook 08). Built from the two Wilson intervals, so it keeps their behaviour at 0 and 1, and is
    narrower than subtracting the ends of the two intervals (``cl.claims.difference``), which covers far more
    than ``ci``."""
    lo_a, hi_a = proportion_interval(fraction_a, n_a, ci)
    lo_b, hi_b = proportion_interval(fraction_b, n_b, ci)
    d = fraction_a - fraction_b
    low = d - math.sqrt((fraction_a - lo_a) ** 2 + (hi_b - fraction_b) ** 2)
    high = d + math.sqrt((hi_a - fraction_a) ** 2 + (fraction_b - lo_b) ** 2)
    return max(-1.0, low), min(1.0, high)
