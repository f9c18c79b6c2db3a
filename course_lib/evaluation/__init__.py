"""Measuring forgetting (notebooks 02 and 04).

``text``: answer accuracy and answer loss on a QA set; ``objectives``: the survey's Accuracy,
Locality and Generalizability; ``stats``: the benchmarks' statistical core on plain arrays
(forget quality, MIA AUC, privacy leak, Min-K%, ROUGE-L); ``classic``: metrics for classifiers (notebook 01).
"""
from . import classic, stats, text, objectives
from .stats import forget_quality, mia_auc, min_k_percent, privacy_leak, rouge_l_recall, truth_ratio
from .text import answer_accuracy, answer_loss, correct
from .objectives import accuracy_objective, generalizability, locality, objectives as three_objectives

__all__ = ["classic", "stats", "text", "forget_quality", "mia_auc", "min_k_percent", "privacy_leak",
           "rouge_l_recall", "truth_ratio", "objectives", "answer_accuracy", "answer_loss", "correct", "accuracy_objective",
           "locality", "generalizability", "three_objectives"]
