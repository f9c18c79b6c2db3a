"""Checkers for notebook 07 (exact unlearning: retrain and SISA)."""
from __future__ import annotations

import math

from . import not_attempted, passed

CASES = ((1, 5), (2, 1), (4, 3), (8, 10), (8, 0), (16, 40), (3, 2))


def _reference(k: int, r: int) -> float:
    from ..unlearning.exact import expected_touched_shards

    return expected_touched_shards(k, r)


def _hint(got: float, k: int, r: int) -> str:
    wrong = [
        (k * (1 - 1 / k) ** r, "that is the expected number of shards NOT touched: subtract it from k"),
        (1 - (1 - 1 / k) ** r, "that is the probability that one given shard is touched: multiply by k shards"),
        (min(r, k), "min(r, k) assumes every request lands in a new shard; two requests can share a shard"),
        (r / k, "r / k is the number of requests per shard, not the number of shards touched"),
        (k * (1 - (1 - 1 / k) ** (r - 1)) if r else -1, "off by one: r requests, so the exponent is r"),
        (k * (1 - (1 / k) ** r), "a given request misses a given shard with probability 1 - 1/k, not 1/k"),
    ]
    for value, hint in wrong:
        if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9):
            return hint
    return "a shard is untouched when all r requests miss it, each with probability (1 - 1/k)"


def check_expected_touched_shards(fn) -> None:
    """Exercise 1: ``fn(k, r)`` is the expected number of shards that r random requests touch (k shards)."""
    try:
        fn(4, 3)
    except NotImplementedError:
        not_attempted("expected_touched_shards")
        return
    for k, r in CASES:
        got = fn(k, r)
        if got is None:
            raise AssertionError("expected_touched_shards returned None: did you forget `return`?")
        want = _reference(k, r)
        if not math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-9):
            raise AssertionError(f"for k={k} shards and r={r} requests: got {float(got):.4f}, expected {want:.4f}. "
                                 f"Hint: {_hint(float(got), k, r)}.")
    passed("Your formula matches cl.unlearning.exact.expected_touched_shards: with r = k requests about "
           f"{100 * (1 - (1 - 1 / 8) ** 8):.0f} % of k = 8 shards retrain; as r grows, a batch costs a full retrain.")
