"""Attacks that test whether forgotten knowledge is really gone (notebooks 08, 09, 11, 12).

Submodules: ``embedding`` (an optimised prompt embedding brings an erased image concept back,
notebook 09); the text attacks (relearning, quantization, paraphrase, in-context, probes) come with
notebook 08. Submodules are imported on first use (``cl.attacks.embedding``).
"""
from __future__ import annotations

import importlib as _importlib


def __getattr__(name: str):
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
