"""The people LM wrapper: tokenizer, QA encoding, greedy answers and per-token scores."""
import numpy as np
import pytest
import torch

from course_lib.models.people_lm import new_model, train_people_lm
from tests.tiny import TINY_LM


@pytest.fixture(scope="module")
def trained(facts):
    return train_people_lm(facts, TINY_LM, progress=False)


def test_tokenizer_splits_digits_and_round_trips(facts):
    tm = new_model(facts, TINY_LM)
    ids = tm.tokenizer("312-4471", add_special_tokens=False)["input_ids"]
    assert len(ids) >= 8  # seven digits, one per token, and the dash
    assert tm.tokenizer.decode(ids) == "312-4471"
    q = facts.qa[0].question
    assert tm.tokenizer.decode(tm.tokenizer(q, add_special_tokens=False)["input_ids"]) == q


def test_encode_qa_labels_only_the_answer(facts):
    tm = new_model(facts, TINY_LM)
    qa = facts.qa[:3]
    enc = tm.encode_qa(qa.questions, qa.answers)
    for i, a in enumerate(qa.answers):
        lab = enc["labels"][i]
        ans_ids = lab[lab != -100].tolist()
        assert tm.tokenizer.decode(ans_ids) == " " + a + tm.tokenizer.eos_token
        prompt = tm.tokenizer(tm.prompt(qa.questions[i]), add_special_tokens=False)["input_ids"]
        assert int(enc["attention_mask"][i].sum()) == len(prompt) + len(ans_ids)  # padding is masked
        assert enc["input_ids"][i, :len(prompt)].tolist() == prompt


def test_remembered_token_ids_equal_a_fresh_tokenization(facts, monkeypatch):
    from course_lib.models import lm

    tm = new_model(facts, TINY_LM)
    texts = [tm.prompt(q) for q in facts.qa.questions[:20]] + [" " + a for a in facts.qa.answers[:20]]
    fresh = tm.tokenizer(texts, add_special_tokens=False)["input_ids"]
    assert lm.token_ids(tm.tokenizer, texts) == fresh  # first call: tokenized
    assert lm.token_ids(tm.tokenizer, texts[::-1]) == fresh[::-1]  # second: remembered, in the caller's order
    monkeypatch.setattr(lm, "_IDS_CACHE_MAX", 5)  # a full memory is emptied, not grown
    assert lm.token_ids(tm.tokenizer, ["Question: who?", texts[0]]) == [
        tm.tokenizer("Question: who?", add_special_tokens=False)["input_ids"], fresh[0]]
    assert len(lm._ids_caches[tm.tokenizer]) <= 5 + 2
    other = new_model(facts, TINY_LM)  # another tokenizer has a memory of its own
    assert lm.token_ids(other.tokenizer, texts[:2]) == other.tokenizer(texts[:2], add_special_tokens=False)["input_ids"]


def test_answer_logprobs_match_a_direct_computation(trained, facts):
    qa = facts.qa[:5]
    batched = trained.answer_logprobs(qa.questions, qa.answers)
    for q, a, lp in zip(qa.questions, qa.answers, batched):
        p = trained.tokenizer(trained.prompt(q), add_special_tokens=False)["input_ids"]
        t = trained.tokenizer(" " + a, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = trained.model(input_ids=torch.tensor([p + t])).logits[0]
        logp = torch.log_softmax(logits, -1)
        direct = np.array([logp[len(p) - 1 + j, tok].item() for j, tok in enumerate(t)])
        assert len(lp) == len(t)
        np.testing.assert_allclose(lp, direct, atol=1e-4)


def test_batched_greedy_answers_equal_one_at_a_time(trained, facts):
    qs = facts.qa.questions[:6] + facts.world_qa.questions[:2]  # different lengths: left padding matters
    together = trained.answer(qs)
    alone = [trained.answer([q])[0] for q in qs]
    assert together == alone


def test_save_and_load_round_trip(trained, facts, tmp_path):
    trained.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pkl"))
    back = type(trained).from_pretrained(tmp_path)
    qs = facts.qa.questions[:8]
    assert back.answer(qs) == trained.answer(qs)


def test_clone_is_independent(trained):
    twin = trained.clone()
    with torch.no_grad():
        next(twin.model.parameters()).add_(1.0)
    assert not torch.equal(next(twin.model.parameters()), next(trained.model.parameters()))
