"""Verbatim memorisation of answers: exact token memorisation and extraction strength (notebook 04).

Both read one teacher-forced forward pass (``mia.token_stats``): at every answer token, is the
token the arg-max of the model's next-token distribution given the question and the *true* previous
answer tokens? Call that ``hit_t``. Greedy decoding that has reproduced the true prefix so far sees
exactly that context, so ``hit_t`` is what greedy decoding would produce there. Scored on the answer
tokens without the end token.

- **Exact memorisation** (EM; Tirumala et al. 2022, "Memorization without overfitting"; as in
  open-unlearning, Dorna et al. 2025): the fraction of answer tokens with ``hit_t``.
- **Extraction strength** (ES; Wang et al. 2025, "Towards effective evaluations and comparisons for
  LLM unlearning methods", as in open-unlearning; the prefix extraction of Carlini et al. 2021 made a
  score): the shortest prefix of the answer, ``k`` tokens, after which greedy decoding completes the
  rest exactly (``hit_t`` for every ``t >= k``); ``ES = 1 - k / n``. ES = 1: the question alone extracts
  the whole answer; ES = 0: even the answer minus its last token does not give the last (open-unlearning's
  loop stops at ``k = n - 1`` and reports 1/n there; we report 0).
  Because greedy decoding from the true prefix ``a[:k]`` stays on the true answer exactly while every
  ``hit_t`` holds, this equals running the generation once per prefix length (tests check it does).
"""
from __future__ import annotations

import numpy as np

from .mia import token_stats


def _check_hits(hits) -> np.ndarray:
    h = np.asarray(hits, dtype=bool).ravel()
    if h.size == 0:
        raise ValueError("hits is empty: an answer needs at least one token")
    return h


def exact_memorization(hits) -> float:
    """EM of one answer: the fraction of its tokens that are the teacher-forced arg-max."""
    return float(_check_hits(hits).mean())


def extraction_strength(hits) -> float:
    """ES of one answer: ``1 - k / n`` for the smallest ``k`` with every ``hits[k:]`` true (k = n if none)."""
    h = _check_hits(hits)
    misses = np.flatnonzero(~h)
    k = 0 if misses.size == 0 else int(misses[-1]) + 1  # the prefix must reach past the last miss
    return 1.0 - k / h.size


def memorization_scores(model, qaset, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Per QA of ``qaset``: ``{"em": ..., "es": ...}`` from one batched teacher-forced forward pass."""
    ts = token_stats(model, qaset.questions, qaset.answers, with_eos=False, full=False, batch_size=batch_size)
    return {"em": np.array([exact_memorization(h) for h in ts.hit]),
            "es": np.array([extraction_strength(h) for h in ts.hit])}
