"""Claim checks with margins: the last cell of every notebook states what it showed, as numbers.

``cl.claims.at_least(label, measured, threshold)`` (and ``at_most``) prints one line::

    ✅ the people LM memorised its training questions: measured 0.981, threshold >= 0.930, margin +0.051

and raises ``AssertionError`` (with the same line) when the margin is negative. A claim is portable when
its margin is wide compared with how much the measured value moves between CPUs and thread counts
(README "What is identical on every machine"); ``bench/claims.py`` tabulates every claim's margin.

``measured`` may be a number or a ``(low, high)`` interval (a bootstrap interval, or the range over seeds):
an ``at_least`` claim then needs its *low* end above the threshold, an ``at_most`` claim its *high* end below.
:func:`difference` gives the interval of a difference of two such measurements.

Set ``KIT_CLAIMS_LOG`` to a file and every claim is also appended to it as one JSON line (what
``bench/claims.py`` reads). Notebook 02 introduces these checks.
"""
from __future__ import annotations

import json
import math
import os
from typing import Sequence

__all__ = ["at_least", "at_most", "difference", "record", "read_log"]


def _ends(measured) -> tuple[float, float]:
    if isinstance(measured, (tuple, list)):
        if len(measured) != 2:
            raise ValueError(f"measured={measured!r}: give a number or a (low, high) interval")
        low, high = float(measured[0]), float(measured[1])
        if low > high:
            raise ValueError(f"measured={measured!r}: an interval's low end must not exceed its high end")
        return low, high
    value = float(measured)
    return value, value


def _shown(measured) -> str:
    low, high = _ends(measured)
    return f"{low:.3f}" if low == high else f"[{low:.3f}, {high:.3f}]"


def record(entry: dict) -> None:
    """Append one claim to ``KIT_CLAIMS_LOG`` (a JSON-lines file) when that variable is set."""
    path = os.environ.get("KIT_CLAIMS_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def read_log(path) -> list[dict]:
    """The claims a run appended to ``path`` (see :func:`record`)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _check(label: str, measured, threshold: float, direction: str, notebook: str | None) -> float:
    if not isinstance(label, str) or not label:
        raise ValueError("label must be a non-empty string saying what the claim is")
    low, high = _ends(measured)
    threshold = float(threshold)
    if any(math.isnan(v) for v in (low, high, threshold)):
        raise ValueError(f"claim {label!r}: measured={measured!r}, threshold={threshold!r} must not be NaN")
    margin = low - threshold if direction == ">=" else threshold - high
    ok = margin >= 0
    line = (f"{'✅' if ok else '❌'} {label}: measured {_shown(measured)}, threshold {direction} {threshold:.3f}, "
            f"margin {margin:+.3f}")
    print(line)
    record({"notebook": notebook or os.environ.get("KIT_NOTEBOOK", ""), "mode": os.environ.get("KIT_MODE", ""),
            "claim": label, "measured": [low, high], "direction": direction, "threshold": threshold,
            "margin": round(margin, 6), "passed": ok})
    if not ok:
        raise AssertionError(line)
    return margin


def at_least(label: str, measured: float | Sequence[float], threshold: float, *, notebook: str | None = None) -> float:
    """Check ``measured >= threshold`` (an interval: its low end); print and return the margin."""
    return _check(label, measured, threshold, ">=", notebook)


def at_most(label: str, measured: float | Sequence[float], threshold: float, *, notebook: str | None = None) -> float:
    """Check ``measured <= threshold`` (an interval: its high end); print and return the margin."""
    return _check(label, measured, threshold, "<=", notebook)


def difference(a, b) -> tuple[float, float]:
    """The interval of ``a - b`` for two measurements (numbers or ``(low, high)`` intervals): from
    ``a``'s low end minus ``b``'s high end to ``a``'s high end minus ``b``'s low end. Conservative: a
    claim that ``a`` exceeds ``b`` by a margin holds for every pair of values inside the two intervals."""
    a_lo, a_hi = _ends(a)
    b_lo, b_hi = _ends(b)
    return a_lo - b_hi, a_hi - b_lo
