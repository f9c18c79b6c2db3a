"""Exact memorisation, extraction strength, perplexity and degenerate outputs, each against an
independent computation: greedy generation from every prefix, numpy on a bigram table, hand-made strings."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.data import people
from course_lib.evaluation import extraction, fluency
from tests.test_mia import bigram, bigram_model, by_hand, facts, memoriser, tokenizer  # noqa: F401 (fixtures)


@pytest.mark.parametrize("hits,es,em", [([True, True, True], 1.0, 1.0), ([True, True, False], 0.0, 2 / 3),
                                        ([False, True, True, True], 0.75, 0.75), ([True, False, True], 1 / 3, 2 / 3),
                                        ([False], 0.0, 0.0), ([True], 1.0, 1.0)])
def test_extraction_strength_and_em_by_hand(hits, es, em):
    assert extraction.extraction_strength(hits) == pytest.approx(es)
    assert extraction.exact_memorization(hits) == pytest.approx(em)


def test_empty_answer_is_an_error():
    with pytest.raises(ValueError, match="hits is empty"):
        extraction.extraction_strength([])


def _greedy_es(generate_next, prompt: list, answer: list) -> float:
    """ES by brute force: for k = 0, 1, ..., decode len(answer) - k tokens greedily after prompt + answer[:k]."""
    n = len(answer)
    for k in range(n + 1):
        seq = prompt + answer[:k]
        for _ in range(n - k):
            seq = seq + [generate_next(seq)]
        if seq[len(prompt):] == answer:
            return 1 - k / n
    raise AssertionError("unreachable: k = n always reproduces the answer")


def _ids(model, q, with_eos=False):
    tok = model.tokenizer
    prompt = tok(model.prompt(q.question), add_special_tokens=False)["input_ids"]
    ans = tok(" " + q.answer + (tok.eos_token if with_eos else ""), add_special_tokens=False)["input_ids"]
    return prompt, ans


def test_extraction_strength_equals_greedy_generation_from_every_prefix(memoriser):
    tm, split = memoriser
    qa = split.forget[:12] + split.holdout[:6]  # memorised and never-seen answers: a spread of ES values
    got = extraction.memorization_scores(tm, qa)

    @torch.no_grad()
    def next_token(seq):
        return int(tm.model(input_ids=torch.tensor([seq])).logits[0, -1].argmax())

    want_es, want_em = [], []
    for q in qa:
        prompt, ans = _ids(tm, q)
        want_es.append(_greedy_es(next_token, prompt, ans))
        with torch.no_grad():
            logits = tm.model(input_ids=torch.tensor([prompt + ans])).logits[0]
        want_em.append(np.mean([int(logits[len(prompt) - 1 + j].argmax()) == t for j, t in enumerate(ans)]))
    print("ES", np.round(want_es, 2))
    np.testing.assert_allclose(got["es"], want_es, atol=1e-12)
    np.testing.assert_allclose(got["em"], want_em, atol=1e-12)
    assert len(set(np.round(want_es, 3))) >= 2, "the check needs answers with different extraction strengths"


def test_memorization_on_the_bigram_table(bigram, facts):
    qa = facts.qa[:8]
    got = extraction.memorization_scores(bigram, qa)
    table = bigram.model.table.detach().numpy()
    for i, q in enumerate(qa):
        prompt, ans = _ids(bigram, q)
        _, hits, _, _ = by_hand(bigram, q.question, q.answer, with_eos=False)
        assert got["em"][i] == pytest.approx(hits.mean())
        assert got["es"][i] == pytest.approx(_greedy_es(lambda s: int(table[s[-1]].argmax()), prompt, ans))


@pytest.mark.parametrize("text,reasons", [
    ("", ["empty"]), ("   ", ["empty"]), ("...!?", ["no_alnum"]), ("Lisbon Lisbon Lisbon", ["repeated_word"]),
    ("the, the, the", ["repeated_word"]), ("aaaaa", ["repeated_char"]), ("1111111", ["repeated_char"]),
    ("-----", ["no_alnum", "repeated_char"]), ("Lisbon Lisbon", []), ("312-4471", []), ("ballet dancer", []),
    ("1999", []), ("born in Lisbon", [])])
def test_degenerate_rule(text, reasons):
    assert fluency.degenerate_reasons(text) == reasons
    assert fluency.is_degenerate(text) == bool(reasons)


def test_no_answer_of_the_people_data_is_degenerate():
    facts = people.load(mode="full")
    texts = set()
    for qs in (facts.qa, facts.holdout, facts.world_qa, facts.two_hop, facts.paraphrases):
        for q in qs:
            texts |= {q.answer, q.paraphrased_answer, *q.perturbed_answers}
    bad = sorted(t for t in texts if fluency.is_degenerate(t))
    assert not bad, bad[:5]
    assert fluency.degenerate_fraction(["", "Lisbon", "x x x", "1984"]) == 0.5
    assert math.isnan(fluency.degenerate_fraction([]))
    with pytest.raises(TypeError, match="string"):
        fluency.degenerate_reasons(None)


def test_perplexity_by_hand(bigram, facts):
    assert fluency.perplexity([np.log([0.5, 0.25]), np.log([0.125])]) == pytest.approx(2 ** (6 / 3))
    with pytest.raises(ValueError, match="empty"):
        fluency.perplexity([np.array([])])
    qa = facts.qa[:10]
    lps = np.concatenate([by_hand(bigram, q.question, q.answer)[0] for q in qa])
    assert fluency.retain_perplexity(bigram, qa) == pytest.approx(np.exp(-lps.mean()), rel=1e-5)


def test_a_collapsed_model_is_caught(tokenizer, facts):
    """A model whose every next token is one letter, or the end token: all its answers are degenerate."""
    qa = facts.qa[:10]
    for token in ("a", tokenizer.eos_token):
        collapsed = bigram_model(tokenizer, seed=1)
        with torch.no_grad():
            collapsed.model.table[:, tokenizer.convert_tokens_to_ids(token)] = 100.0
        out = fluency.fluency(collapsed, qa)
        assert out["degenerate"] == 1.0, token
        assert out["perplexity"] > 1e6  # the reference answers are now nearly impossible
    uniform = fluency.fluency(bigram_model(tokenizer, seed=1, scale=0.0), qa)  # every token equally likely:
    assert uniform["perplexity"] == pytest.approx(len(tokenizer), rel=1e-4)   # perplexity = vocabulary size
