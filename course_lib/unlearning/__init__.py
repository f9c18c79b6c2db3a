"""Unlearning methods: one module per family, each ``method(model, forget, retain, **hparams)``.

``classic``: unlearning on the shape classifier (notebook 01): fine-tuning on the retain set,
gradient ascent on the forget set, SISA shards.
"""
from . import classic

__all__ = ["classic"]
