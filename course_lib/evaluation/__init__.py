"""Measuring forgetting (notebooks 02 and 04).

``text``: answer accuracy and answer loss on a QA set; ``objectives``: the survey's Accuracy,
Locality and Generalizability; ``classic``: metrics for classifiers (notebook 01).
"""
from . import classic, text, objectives
from .text import answer_accuracy, answer_loss, correct
from .objectives import accuracy_objective, generalizability, locality, objectives as three_objectives

__all__ = ["classic", "text", "objectives", "answer_accuracy", "answer_loss", "correct", "accuracy_objective",
           "locality", "generalizability", "three_objectives"]
