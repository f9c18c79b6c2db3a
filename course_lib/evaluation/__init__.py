"""Measuring forgetting (notebooks 02 and 04).

``text``: answer accuracy and answer loss on a QA set; ``objectives``: the survey's Accuracy,
Locality and Generalizability; ``stats``: the benchmarks' statistical core on plain arrays
(forget quality, MIA AUC, privacy leak, Min-K%, ROUGE-L); ``classic``: metrics for classifiers (notebook 01).
Notebook 04: ``mia`` (LOSS, zlib, Min-K%, Min-K%++ membership scores), ``extraction`` (exact memorisation,
extraction strength), ``fluency`` (perplexity, degenerate answers), ``scorecard`` (every measure with
bootstrap intervals: ``scorecard``, ``scorecards``, ``score_model``) and ``muse`` (scalability, sustainability).
Notebook 09: ``image`` (UnlearnCanvas-style rates); notebook 12: ``side_effects`` (damage to retain people by their
similarity to the forgotten ones); notebook 13: ``policy`` (the policy scorecard and its lenses).
Submodules not imported here load on first use (``cl.evaluation.side_effects``).
"""
import importlib as _importlib

from . import classic, stats, text, objectives
from .stats import (bootstrap_mean, forget_quality, mia_auc, min_k_percent, privacy_leak, proportion_difference_interval,
                    proportion_interval, rouge_l_recall, truth_ratio)
from .text import answer_accuracy, answer_loss, correct
from .objectives import accuracy_objective, generalizability, locality, objectives as three_objectives
from . import mia, extraction, fluency, muse
from .mia import mia_aucs, token_stats
from .extraction import exact_memorization, extraction_strength
from .fluency import degenerate_fraction, is_degenerate, perplexity
from .scorecard import ModelScores, score_model, scorecard, scorecards, spread_over_seeds, with_ci

__all__ = ["classic", "stats", "text", "bootstrap_mean", "proportion_interval", "proportion_difference_interval", "forget_quality", "mia_auc", "min_k_percent", "privacy_leak",
           "rouge_l_recall", "truth_ratio", "objectives", "answer_accuracy", "answer_loss", "correct", "accuracy_objective",
           "locality", "generalizability", "three_objectives",
           "mia", "extraction", "fluency", "muse", "mia_aucs", "token_stats", "exact_memorization", "extraction_strength",
           "degenerate_fraction", "is_degenerate", "perplexity", "ModelScores", "score_model", "scorecard", "scorecards",
           "spread_over_seeds", "with_ci"]


def __getattr__(name: str):
    """Submodules added by later notebooks (``image``, ``mia``, ...) are imported on first use."""
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
