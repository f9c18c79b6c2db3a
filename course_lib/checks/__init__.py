"""Answer checkers for the notebooks' exercises: each says what is wrong, not only that it is wrong.

A checker raises ``AssertionError`` with a hint, or prints a success line. Notebooks 00-02's checkers
live in ``early`` and are re-exported here (``cl.checks.check_steps_for``); later notebooks have a
module each, reached as ``cl.checks.nb03``, ``cl.checks.nb04``, ... (imported on first use).
"""
from __future__ import annotations

import importlib

from .early import (STEPS_PER_MODE, check_failed_objective, check_ga_loss, check_loss_gap,  # noqa: F401
                    check_shards_to_retrain, check_steps_for, passed)


def not_attempted(name: str) -> None:
    """What a checker prints while the exercise's stub still raises ``NotImplementedError``."""
    print(f"Not attempted yet: fill in `{name}` and run the cell again (the reference solution is below it).")


def run_stub(fn, name: str, *args, **kwargs):
    """Call the learner's ``fn``: None (after :func:`not_attempted`) while it still raises ``NotImplementedError``,
    a clear error if it returns None, else its result. What every checker does first."""
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        not_attempted(name)
        return None
    assert out is not None, f"{name} returned None: did you forget `return`?"
    return out


def __getattr__(name: str):
    if name.startswith("nb") and name[2:].isdigit():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
