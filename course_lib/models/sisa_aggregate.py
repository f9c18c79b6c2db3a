"""How a SISA ensemble of people LMs answers (notebook 07): aggregating *generated* answers.

For a classifier SISA takes a majority vote of the shards' labels; for a generative model the shards
disagree in free text and only one shard knows a given person, which is why aggregation is a real
problem for SISA on GenAI. Three rules: ``vote``, ``confidence`` and ``mean`` (a token-level mixture).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .lm import TextModel, left_padded_prompts

AGGREGATIONS = {
    "vote": "plurality of the shards' greedy answers (ties: the lowest shard number)",
    "confidence": "the greedy answer of the shard with the highest mean token log-probability of it",
    "mean": "greedy decoding from the mean of the shards' next-token distributions (a soft vote per token)",
}

def vote(answers_per_shard: Sequence[Sequence[str]]) -> list[str]:
    """Per question, the most frequent answer over the shards (compared normalised); ties go to the
    answer given by the lowest-numbered shard. ``answers_per_shard[j][i]``: shard j's answer to question i."""
    from ..evaluation.text import normalize

    out = []
    for answers in zip(*answers_per_shard):
        counts: dict[str, int] = {}
        for a in answers:
            counts[normalize(a)] = counts.get(normalize(a), 0) + 1
        best = max(counts.values())
        out.append(next(a for a in answers if counts[normalize(a)] == best))
    return out


def most_confident(answers_per_shard, scores_per_shard) -> list[str]:
    """Per question, the answer of the shard with the highest score (its mean token log-probability of
    its own answer); ties go to the lowest-numbered shard."""
    scores = np.asarray(scores_per_shard, dtype=float)
    if scores.shape != (len(answers_per_shard), len(answers_per_shard[0]) if len(answers_per_shard) else 0):
        raise ValueError(f"scores_per_shard has shape {scores.shape}; it must be (shards, questions) like the answers")
    best = np.argmax(scores, axis=0)
    return [answers_per_shard[j][i] for i, j in enumerate(best)]


@torch.no_grad()
def mixture_answer(shards: Sequence[TextModel], questions: Sequence[str], max_new_tokens: int = 12,
                   batch_size: int = 256, prefix: Sequence[str] | str = "") -> list[str]:
    """Greedy answers from the mean of the shards' next-token distributions (no KV cache: answers are short).

    The ensemble as one generative model p(x_t | x_<t) = 1/k sum_j p_j(x_t | x_<t); it can splice an
    answer from several shards' guesses, one no shard would give (notebook 07).
    """
    tok = shards[0].tokenizer
    eos, device = tok.eos_token_id, shards[0].device
    ctx = TextModel._contexts(prefix, len(questions))
    answers: list[str] = []
    for s in range(0, len(questions), batch_size):
        ids, mask = left_padded_prompts(tok, questions[s:s + batch_size], ctx[s:s + batch_size], device)
        done = torch.zeros(len(ids), dtype=torch.bool, device=device)
        new = []
        for _ in range(max_new_tokens):
            pos = (mask.cumsum(-1) - 1).clamp_min(0)
            probs = torch.stack([m.model.eval()(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
                                 .float().softmax(-1) for m in shards]).mean(0)
            nxt = torch.where(done, torch.full_like(done, eos, dtype=torch.long), probs.argmax(-1))
            new.append(nxt)
            done |= nxt == eos
            if bool(done.all()):
                break
            ids, mask = torch.cat([ids, nxt[:, None]], 1), torch.cat([mask, torch.ones_like(nxt[:, None])], 1)
        for row in torch.stack(new, 1).cpu().tolist():
            answers.append(tok.decode(row[:row.index(eos)] if eos in row else row).strip())
    return answers


def check_aggregation(how: str) -> str:
    """``how`` if it is a key of :data:`AGGREGATIONS`, else a ValueError listing them."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation={how!r}; allowed values: {', '.join(map(repr, AGGREGATIONS))}")
    return how
