"""Is the model still a working language model? Perplexity and degenerate outputs (notebooks 03 and 04).

Unlearning by gradient ascent can *collapse* a model: it stops answering anything sensibly. Two
measures catch that where accuracy alone cannot tell "forgot the fact" from "forgot how to talk":

- **Perplexity on retain text**: ``exp(total NLL / total tokens)`` over the answer tokens (with the end
  token) of retain questions, conditioned on the question: the token-weighted perplexity of the text
  the model should still produce. The base model is near 1 on memorised answers; a collapsed one is huge.
- **Degenerate outputs**: the fraction of greedy answers that are degenerate, by the precise rule of
  :func:`degenerate_reasons` (empty; no letter or digit; a word repeated three times in a row; a
  character repeated five times in a row). No correct answer of the people data is degenerate by
  this rule (years and area codes have at most four digits; tests check every answer).
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from .mia import token_stats

_REPEATED_WORD = re.compile(r"\b(\w+)(?:\W+\1\b){2,}", re.IGNORECASE)  # "lisbon lisbon lisbon", "the, the, the"
_REPEATED_CHAR = re.compile(r"(.)\1{4,}", re.DOTALL)                     # "aaaaa", "11111", "....."


def degenerate_reasons(text: str) -> list[str]:
    """Why ``text`` is degenerate: any of ``"empty"``, ``"no_alnum"``, ``"repeated_word"``,
    ``"repeated_char"``; an empty list if it is not."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    t = text.strip()
    if not t:
        return ["empty"]
    reasons = []
    if not any(ch.isalnum() for ch in t):
        reasons.append("no_alnum")
    if _REPEATED_WORD.search(t):
        reasons.append("repeated_word")
    if _REPEATED_CHAR.search(t):
        reasons.append("repeated_char")
    return reasons


def is_degenerate(text: str) -> bool:
    """True if :func:`degenerate_reasons` finds anything."""
    return bool(degenerate_reasons(text))


def degenerate_flags(texts: Iterable[str]) -> np.ndarray:
    """Boolean array: is each text degenerate?"""
    return np.array([is_degenerate(t) for t in texts], dtype=bool)


def degenerate_fraction(texts: Sequence[str]) -> float:
    """The fraction of degenerate texts (NaN for none)."""
    flags = degenerate_flags(texts)
    return float(flags.mean()) if flags.size else float("nan")


def perplexity(token_logprobs: Sequence[np.ndarray]) -> float:
    """Token-weighted perplexity ``exp(-sum of log-probs / number of tokens)`` over several texts."""
    arrs = [np.asarray(x, dtype=float).ravel() for x in token_logprobs]
    n = sum(a.size for a in arrs)
    if n == 0:
        raise ValueError("token_logprobs is empty: no tokens to score")
    return float(np.exp(-sum(a.sum() for a in arrs) / n))


def retain_perplexity(model, qaset, batch_size: int = 128) -> float:
    """Perplexity of the reference answers (with end token) of ``qaset`` given their questions."""
    ts = token_stats(model, qaset.questions, qaset.answers, with_eos=True, full=False, batch_size=batch_size)
    return perplexity(ts.logp)


def fluency(model, qaset, max_new_tokens: int = 12) -> dict[str, float]:
    """``{"perplexity": ..., "degenerate": ...}`` on ``qaset`` (e.g. ``split.retain``)."""
    answers = model.answer(list(qaset.questions), max_new_tokens=max_new_tokens)
    return {"perplexity": retain_perplexity(model, qaset), "degenerate": degenerate_fraction(answers)}
