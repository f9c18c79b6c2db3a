"""Checkers for notebook 04 (measuring forgetting)."""
from __future__ import annotations

import numpy as np

from . import not_attempted, passed


def _cases():
    """Hand-made next-token logits: (logits (T, V), target ids (T,), k) with known answers."""
    rng = np.random.default_rng(4)
    cases = []
    for t, v, k in ((1, 7, 0.2), (5, 11, 0.2), (12, 30, 0.5), (9, 50, 1.0)):
        logits = rng.normal(0, 2.5, size=(t, v))
        targets = rng.integers(0, v, size=t)
        targets[0] = int(np.argmax(logits[0]))  # one token that is the mode
        cases.append((logits, targets, k))
    return cases


def _reference(logits, targets, k):
    import torch

    from ..evaluation.mia import min_k_plus_plus

    logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = ((p * logp ** 2).sum(-1) - mu ** 2).clamp_min(0).sqrt()
    tok = logp[torch.arange(len(targets)), torch.as_tensor(targets)]
    return min_k_plus_plus(tok.numpy(), mu.numpy(), sigma.numpy(), k)


def check_min_k_plus_plus(fn) -> None:
    """Exercise 1: ``fn(logits, targets, k)`` is Min-K%++ (Zhang et al. 2024) of one text, with numpy."""
    logits, targets, k = _cases()[1]
    try:
        got = fn(logits.copy(), targets.copy(), k)
    except NotImplementedError:
        not_attempted("min_k_plus_plus")
        return
    if got is None:
        raise AssertionError("min_k_plus_plus returned None: did you forget `return`?")
    for logits, targets, k in _cases():
        want = _reference(logits, targets, k)
        got = float(fn(logits.copy(), targets.copy(), k))
        if np.isclose(got, want, atol=1e-6):
            continue
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        tok = logp[np.arange(len(targets)), targets]
        p = np.exp(logp)
        mu = (p * logp).sum(-1)
        var = (p * logp ** 2).sum(-1) - mu ** 2
        z = (tok - mu) / np.sqrt(var)
        n = int(np.ceil(k * len(z)))
        hints = [
            (np.isclose(got, -want, atol=1e-6), "the sign is flipped: the score is (log p(x_t) - mu_t) / sigma_t"),
            (np.isclose(got, np.sort((tok - mu) / var)[:n].mean(), atol=1e-6),
             "you divided by the variance; divide by its square root, the standard deviation"),
            (np.isclose(got, np.sort(z)[-n:].mean(), atol=1e-6), "take the k % LOWEST token scores, not the highest"),
            (np.isclose(got, z.mean(), atol=1e-6), "average only the ceil(k * T) lowest token scores, not all"),
            (np.isclose(got, np.sort(tok)[:n].mean(), atol=1e-6),
             "that is Min-K% (plain log-probabilities); Min-K%++ standardises each token's log-probability"),
        ]
        logits_raw = logits[np.arange(len(targets)), targets]
        hints.append((np.isclose(got, np.sort((logits_raw - mu) / np.sqrt(var))[:n].mean(), atol=1e-6),
                      "use log-probabilities (log-softmax of the logits), not raw logits"))
        hint = next((h for ok, h in hints if ok), "compare your per-token scores with (log p - mu) / sigma, "
                    "mu = sum_z p(z) log p(z), sigma^2 = sum_z p(z) (log p(z))^2 - mu^2")
        raise AssertionError(f"for {len(targets)} tokens, vocabulary {logits.shape[1]}, k={k}: got {got:.6f}, "
                             f"expected {want:.6f}. Hint: {hint}.")
    passed("Your Min-K%++ matches cl.evaluation.mia.min_k_plus_plus on every test case.")
