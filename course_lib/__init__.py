"""Unlearning Lab: a notebook course on machine unlearning for generative AI.

The public API (a contract: notebooks, exercises and tests depend on it; see shared/DESIGN.md)::

    import course_lib as cl
    rt = cl.setup(mode=None, seed=0)
    facts = cl.data.people.load(rt); split = facts.split("forget05")
    lm = cl.zoo.load("people-lm", rt); gold = cl.zoo.load("people-lm", rt, exclude=split.forget)
"""
from . import runtime as _runtime  # noqa: F401  (sets the offline guard before any HF import)
from .runtime import MODES, Runtime, setup
from . import attacks, claims, data, evaluation, plots, train, checks, models, unlearning, widgets
from .models import zoo
from .unlearning import METHODS, unlearn

__all__ = ["attacks", "claims", "MODES", "Runtime", "setup", "data", "evaluation", "plots", "train", "zoo", "checks", "models", "unlearning", "widgets", "METHODS", "unlearn"]
__version__ = "0.1.0"
