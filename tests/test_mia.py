"""Membership-inference scores against independent numpy computations on a model with known log-probs.

The fake model is a bigram table: the logits at a position are a fixed row of a random matrix picked
by the current token, so every log-probability, arg-max and next-token distribution can be recomputed
by hand from the table. A tiny GPT-2 that memorised a few people checks the behaviour (members score
higher than strangers).
"""
from __future__ import annotations

import functools
import math
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from course_lib.data import people
from course_lib.evaluation import mia, stats
from course_lib.models.lm import TextModel, build_tokenizer
from course_lib.models.people_lm import corpus_texts


class Bigram(torch.nn.Module):
    """logits[b, t] = table[input_ids[b, t]]: known log-probs; works with TextModel.answer (KV cache unused)."""

    def __init__(self, vocab: int, seed: int = 0, scale: float = 3.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=g) * scale)

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        logits = self.table[input_ids]
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                     labels[:, 1:].reshape(-1), ignore_index=-100)
        return SimpleNamespace(logits=logits, past_key_values=None, loss=loss)


@pytest.fixture(scope="session")
def facts():
    from course_lib.runtime import cpu_threads

    torch.set_num_threads(cpu_threads())  # as cl.setup does: KIT_THREADS=1 on a busy machine
    return people.load(mode="fast")


@pytest.fixture(scope="session")
def tokenizer(facts):
    return build_tokenizer(corpus_texts(facts), vocab_size=300)


def bigram_model(tokenizer, seed: int = 0, scale: float = 3.0) -> TextModel:
    return TextModel(Bigram(len(tokenizer), seed, scale), tokenizer, name="bigram")


@pytest.fixture(scope="session")
def bigram(tokenizer):
    return bigram_model(tokenizer)


def by_hand(model: TextModel, question: str, answer: str, with_eos: bool = True):
    """(token log-probs, arg-max hits, mu, sigma) of the answer, from the bigram table with numpy."""
    tok = model.tokenizer
    prompt = tok(model.prompt(question), add_special_tokens=False)["input_ids"]
    ans = tok(" " + answer + (tok.eos_token if with_eos else ""), add_special_tokens=False)["input_ids"]
    seq = prompt + ans
    table = model.model.table.detach().double().numpy()
    rows = table[seq[len(prompt) - 1:-1]]                     # the logits that predict each answer token
    logp = rows - np.log(np.exp(rows - rows.max(1, keepdims=True)).sum(1, keepdims=True)) - rows.max(1, keepdims=True)
    p = np.exp(logp)
    lp = logp[np.arange(len(ans)), ans]
    mu = (p * logp).sum(1)
    sigma = np.sqrt((p * logp ** 2).sum(1) - mu ** 2)
    return lp, rows.argmax(1) == np.array(ans), mu, sigma


def test_token_stats_match_the_bigram_table(bigram, facts):
    qa = facts.qa[:7] + facts.world_qa[:3]  # different lengths: padding must not leak
    ts = mia.token_stats(bigram, qa.questions, qa.answers, batch_size=4)
    for i, q in enumerate(qa):
        lp, hit, mu, sigma = by_hand(bigram, q.question, q.answer)
        np.testing.assert_allclose(ts.logp[i], lp, atol=1e-4)
        np.testing.assert_array_equal(ts.hit[i], hit)
        np.testing.assert_allclose(ts.mu[i], mu, atol=1e-4)
        np.testing.assert_allclose(ts.sigma[i], sigma, atol=1e-4)
    short = ts.without_eos()
    assert all(len(a) == len(b) - 1 for a, b in zip(short.logp, ts.logp))
    plain = mia.token_stats(bigram, qa.questions, qa.answers, with_eos=False, full=False)
    assert plain.mu is None and all(np.allclose(a, b, atol=1e-5) for a, b in zip(plain.logp, short.logp))


def test_min_k_plus_plus_recomputed_with_numpy_from_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(10, 25))
    target = rng.integers(0, 25, size=10)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    p = np.exp(logp)
    mu = (p * logp).sum(1)
    sigma = np.sqrt((p * (logp - mu[:, None]) ** 2).sum(1))  # the same variance, written as E[(x - mu)^2]
    z = (logp[np.arange(10), target] - mu) / sigma
    want = np.sort(z)[:math.ceil(0.3 * 10)].mean()
    assert mia.min_k_plus_plus(logp[np.arange(10), target], mu, sigma, k=0.3) == pytest.approx(want, abs=1e-12)
    # The mode of a peaked distribution scores high, a rare token low.
    mode, rare = mia.min_k_plus_plus_tokens([-0.01, -6.0], [-0.1, -0.1], [0.5, 0.5])
    assert mode > 0 > rare


def test_mia_scores_by_hand(bigram, facts):
    qa = facts.qa[:6]
    ts = mia.token_stats(bigram, qa.questions, qa.answers)
    got = mia.mia_scores(ts, qa.answers, k=0.5)
    for i, q in enumerate(qa):
        lp, _, mu, sigma = by_hand(bigram, q.question, q.answer)
        assert got["loss"][i] == pytest.approx(lp.mean(), abs=1e-5)
        assert got["zlib"][i] == pytest.approx(lp.mean() / len(zlib.compress(q.answer.encode())), abs=1e-6)
        n = math.ceil(0.5 * lp.size)
        assert got["min_k"][i] == pytest.approx(np.sort(lp)[:n].mean(), abs=1e-5)
        assert got["min_k_pp"][i] == pytest.approx(np.sort((lp - mu) / sigma)[:n].mean(), abs=1e-4)
    with pytest.raises(ValueError, match="full=True"):
        mia.mia_scores(mia.token_stats(bigram, qa.questions, qa.answers, full=False), qa.answers)


def test_token_stats_checks_its_input(bigram):
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        mia.token_stats(bigram, ["a?", "b?"], ["x"])
    with pytest.raises(ValueError, match="batch_size"):
        mia.token_stats(bigram, ["a?"], ["x"], batch_size=0)


@functools.lru_cache(maxsize=1)
def _train_memoriser():
    from course_lib.models.people_lm import LMPreset, lm_loss, new_model, qa_batches
    from course_lib.runtime import seed_everything
    from course_lib.train import TrainConfig, fit

    facts = people.load(mode="fast")
    seed_everything(0)
    split = facts.split("forget05")
    tm = new_model(facts, LMPreset(n_embd=48, n_layer=1, n_head=2, num_steps=0, batch_size=32, lr=1e-2,
                                   vocab_size=400, n_positions=96))
    fit(tm.model, list(split.forget), lm_loss, TrainConfig(num_steps=120, batch_size=36, lr=1e-2, warmup_steps=5,
                                                           progress=False), collate_fn=qa_batches(tm))
    return tm, split


@pytest.fixture(scope="session")
def memoriser(facts):
    """A tiny GPT-2 trained only on the forget05 people (members); holdout people are strangers.
    Trained once per test session, whichever test module asks first."""
    return _train_memoriser()


def test_token_stats_on_gpt2_equal_answer_logprobs(memoriser):
    """The GPT-2 path projects only the answer positions: it must equal the full forward of lm.py."""
    tm, split = memoriser
    qa = split.forget[:5] + split.holdout[:5] + split.world[:3]
    assert mia._answer_head(tm.model) is not None
    ts = mia.token_stats(tm, qa.questions, qa.answers, with_eos=True, batch_size=4)
    ref = tm.answer_logprobs(qa.questions, qa.answers, with_eos=True)
    for a, b in zip(ts.logp, ref):
        np.testing.assert_allclose(a, b, atol=1e-5)
    with torch.no_grad():
        enc = tm.encode_qa(qa.questions[:1], qa.answers[:1])
        logits = tm.model(**{k: enc[k] for k in ("input_ids", "attention_mask")}).logits[0, :-1]
        keep = enc["labels"][0, 1:] != -100
        logp = torch.log_softmax(logits[keep], -1)
        mu = (logp.exp() * logp).sum(-1)
    np.testing.assert_allclose(ts.mu[0], mu.numpy(), atol=1e-5)


def test_members_score_higher_than_strangers(memoriser):
    tm, split = memoriser
    aucs = mia.mia_aucs(tm, split.forget, split.holdout[:120])
    print({k: round(v, 3) for k, v in aucs.items()})  # measured: every AUC 1.0
    assert set(aucs) == set(mia.MIA_SCORES)
    assert all(v > 0.9 for v in aucs.values()), aucs
    # Reversed roles: strangers as "members" score as badly as the members scored well.
    assert mia.mia_aucs(tm, split.holdout[:120], split.forget)["loss"] < 0.1
    assert stats.mia_auc([1, 2], [3, 4]) == 0.0
