"""Membership inference on QA answers, batched over a set (notebook 04).

A membership-inference attack (MIA) scores an example by how "familiar" the model finds it; an
example the model was trained on (a *member*) tends to score higher than one it never saw. Every
score here is "higher = more likely a member", computed on the **answer tokens and the end token**
(the tokens the people LM is trained on, as in ``evaluation.text.answer_loss``):

- **LOSS** (Yeom et al. 2018, "Privacy risk in machine learning"): minus the mean negative
  log-likelihood per answer token.
- **zlib** (Carlini et al. 2021, "Extracting training data from large language models"): the loss
  divided by the zlib-compressed length of the answer text (``stats.zlib_ratio``): a text that is
  simply easy (short, repetitive) is discounted.
- **Min-K%** (Shi et al. 2024, "Detecting pretraining data from large language models"): the mean of
  the k % lowest token log-probabilities (``stats.min_k_percent``): a member has few surprising tokens.
- **Min-K%++** (Zhang et al. 2024, "Min-K%++: Improved baseline for detecting pre-training data from
  large language models"): per token ``(log p(x_t|x_<t) - mu_t) / sigma_t`` with ``mu_t = E_z[log p(z|x_<t)]``
  and ``sigma_t^2 = E_z[(log p(z|x_<t))^2] - mu_t^2`` under the model's own next-token distribution
  ``z ~ p(.|x_<t)``; then the mean of the k % lowest. A token scores high when it is a *mode* of the
  distribution, not merely likely.

:func:`token_stats` is the one batched forward all of them (and ``extraction``/``fluency``) read:
per answer token its log-probability, whether it is the arg-max (teacher-forced greedy), and the
mean and standard deviation of the log-probability under the next-token distribution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import stats

MIA_SCORES = ("loss", "zlib", "min_k", "min_k_pp")
"""The membership scores :func:`mia_scores` returns, each "higher = more likely a member"."""
SIGMA_FLOOR = 1e-6  # a next-token distribution with (almost) all mass on one token has sigma ~ 0


@dataclass
class TokenStats:
    """Per example, one array per answer token (plus the end token if ``with_eos``).

    ``logp``: log p(x_t | x_<t); ``hit``: x_t is the arg-max of p(. | x_<t) (what greedy decoding
    would produce given the true prefix); ``mu``/``sigma``: mean and standard deviation of log p(z | x_<t)
    for z drawn from p(. | x_<t) (``None`` unless ``full=True``)."""

    logp: list
    hit: list
    mu: list | None = None
    sigma: list | None = None
    with_eos: bool = True

    def __len__(self) -> int:
        return len(self.logp)

    def without_eos(self) -> "TokenStats":
        """The same numbers without the end token (causal: earlier tokens do not depend on it)."""
        if not self.with_eos:
            return self
        cut = lambda xs: None if xs is None else [x[:-1] for x in xs]  # noqa: E731
        return TokenStats(cut(self.logp), cut(self.hit), cut(self.mu), cut(self.sigma), with_eos=False)


@torch.no_grad()
def token_stats(model, questions: Sequence[str], answers: Sequence[str], *, with_eos: bool = True,
                full: bool = True, contexts: Sequence[str] | str | None = None,
                batch_size: int = 128) -> TokenStats:
    """One teacher-forced forward per batch of (question, answer) pairs: see :class:`TokenStats`.

    ``model``: a :class:`~course_lib.models.lm.TextModel` (uses its ``encode_qa`` and ``.model``).
    ``full=True`` also computes ``mu``/``sigma`` from the whole next-token distribution (Min-K%++).
    """
    questions, answers = list(questions), list(answers)
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    net = model.model
    was_training = net.training
    net.eval()
    ctx = model._contexts(contexts, len(questions))
    # Batches of similar length waste little on padding; results go back to the input order.
    order = sorted(range(len(questions)), key=lambda i: len(ctx[i]) + len(questions[i]) + len(answers[i]))
    head = _answer_head(net)
    rows: dict[int, tuple] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = model.encode_qa([questions[i] for i in idx], [answers[i] for i in idx], with_eos=with_eos,
                              contexts=[ctx[i] for i in idx])
        enc = {k: v.to(model.device) for k, v in enc.items()}
        target = enc["labels"][:, 1:]
        keep = target != -100
        if head is not None:
            # Only the answer positions need the vocabulary projection (most positions are the question).
            hidden = net.base_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            logits = head(hidden[:, :-1][keep]).float()
        else:
            logits = net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, :-1][keep].float()
        logp_all = torch.log_softmax(logits, dim=-1)
        tgt = target[keep]
        cols = [logp_all.gather(-1, tgt.unsqueeze(-1)).squeeze(-1), logits.argmax(-1) == tgt]
        if full:
            p = logp_all.exp()
            mu = (p * logp_all).sum(-1)
            cols += [mu, ((p * logp_all.square()).sum(-1) - mu.square()).clamp_min(0).sqrt()]
        cols = [c.cpu().numpy() for c in cols]
        bounds = np.cumsum([0] + keep.sum(-1).tolist())
        for j, i in enumerate(idx):
            rows[i] = tuple(c[bounds[j]:bounds[j + 1]] for c in cols)
    logps = [rows[i][0].astype(np.float64) for i in range(len(questions))]
    hits = [rows[i][1] for i in range(len(questions))]
    mus = [rows[i][2].astype(np.float64) for i in range(len(questions))] if full else None
    sigmas = [rows[i][3].astype(np.float64) for i in range(len(questions))] if full else None
    net.train(was_training)
    return TokenStats(logps, hits, mus, sigmas, with_eos=with_eos)


def _answer_head(net):
    """The output projection, if logits are exactly ``head(base_model(...).last_hidden_state)``."""
    from transformers import PreTrainedModel

    if not isinstance(net, PreTrainedModel) or net.base_model is net:
        return None
    if getattr(net.config, "final_logit_softcapping", None) or getattr(net.config, "logit_scale", None):
        return None
    return net.get_output_embeddings()


def min_k_plus_plus_tokens(logp, mu, sigma) -> np.ndarray:
    """Min-K%++'s per-token score ``(log p(x_t) - mu_t) / sigma_t`` (sigma floored at 1e-6)."""
    logp, mu, sigma = (np.asarray(x, dtype=float) for x in (logp, mu, sigma))
    return (logp - mu) / np.maximum(sigma, SIGMA_FLOOR)


def min_k_plus_plus(logp, mu, sigma, k: float = 0.2) -> float:
    """Min-K%++ of one example: the mean of the ceil(k * n) lowest per-token scores (Zhang et al. 2024)."""
    return stats.min_k_percent(min_k_plus_plus_tokens(logp, mu, sigma), k=k)


def mia_scores(ts: TokenStats, texts: Sequence[str], k: float = 0.2) -> dict[str, np.ndarray]:
    """Per example the four membership scores of :data:`MIA_SCORES` ("higher = member").

    ``texts``: the scored text of each example (the answer) for the zlib score. Needs ``full`` stats.
    """
    if ts.mu is None:
        raise ValueError("mia_scores needs token_stats(..., full=True): Min-K%++ reads the whole distribution")
    if len(texts) != len(ts):
        raise ValueError(f"{len(ts)} examples but {len(texts)} texts")
    mean_lp = np.array([lp.mean() for lp in ts.logp])
    return {
        "loss": mean_lp,
        "zlib": np.array([stats.zlib_ratio(-m, t) for m, t in zip(mean_lp, texts)]),
        "min_k": np.array([stats.min_k_percent(lp, k) for lp in ts.logp]),
        "min_k_pp": np.array([min_k_plus_plus(lp, mu, sd, k) for lp, mu, sd in zip(ts.logp, ts.mu, ts.sigma)]),
    }


def qa_mia_scores(model, qaset, k: float = 0.2, batch_size: int = 128) -> dict[str, np.ndarray]:
    """The four membership scores for every QA of ``qaset`` (one batched forward pass)."""
    ts = token_stats(model, qaset.questions, qaset.answers, with_eos=True, full=True, batch_size=batch_size)
    return mia_scores(ts, qaset.answers, k=k)


def mia_aucs(model, members, nonmembers, k: float = 0.2) -> dict[str, float]:
    """AUC of each membership score, ``members`` (e.g. ``split.forget``) vs ``nonmembers`` (``split.holdout``).

    0.5: the attack cannot tell them apart (as for a model retrained without the members); 1.0: it always can.
    """
    m, n = qa_mia_scores(model, members, k), qa_mia_scores(model, nonmembers, k)
    return {name: stats.mia_auc(m[name], n[name]) for name in MIA_SCORES}
