"""Decomposition attacks (notebook 12): pieces that pass an output filter, assembled into the secret."""
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import course_lib as cl
from course_lib.attacks import decomposition as D
from course_lib.models.lm import PROMPT, TextModel, build_tokenizer
from tests.tiny import Memoriser
from course_lib.unlearning.suppression import REFUSAL


@pytest.fixture(scope="module")
def tiny(facts):
    """An untrained two-layer GPT-2 and a BPE tokenizer of the people QA: a real net, seconds to build."""
    cl.setup(mode="fast", verbose=False)
    texts = [PROMPT.format(q=q.question) + " " + q.answer for q in facts.qa + facts.world_qa]
    tok = build_tokenizer(texts, vocab_size=300)
    torch.manual_seed(0)
    net = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=96, n_embd=16, n_layer=2, n_head=2))
    return TextModel(net, tok, "tiny")


@pytest.fixture
def memorised_continuations(monkeypatch, facts):
    """Continuations read off the prompt: the rest of the true answer after what is already written."""
    known = {PROMPT.format(q=q.question): q.answer for q in facts.qa}

    def fake_greedy(lm, prompts, max_new_tokens):
        out = []
        for ids in prompts:
            text = lm.tokenizer.decode(ids)
            prompt, _, written = text.rpartition("Answer:")
            full = known.get(prompt + "Answer:", "?")
            out.append(full[len(written.strip()):] if full.startswith(written.strip()) else "?")
        return out

    monkeypatch.setattr(D, "_greedy", fake_greedy)


def test_greedy_matches_generate_one_by_one(tiny, facts):
    qs = facts.qa.filter(attribute=["phone", "pet"])[:6]
    partial = ["", "3", "Lis", "", "729-", "a"]
    got = D.continue_answers(tiny, qs.questions, partial, max_new_tokens=5)
    tok = tiny.tokenizer
    for q, p, g in zip(qs.questions, partial, got):
        ids = tok(PROMPT.format(q=q), add_special_tokens=False)["input_ids"] + tok(" " + p, add_special_tokens=False)["input_ids"]
        ref = tiny.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                  max_new_tokens=5, do_sample=False, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.eos_token_id)[0, len(ids):].tolist()
        eos = tok.eos_token_id
        assert g == tok.decode(ref[:ref.index(eos)] if eos in ref else ref).strip()


def test_partial_answer_is_tokenised_as_in_training(tiny):
    tok = tiny.tokenizer
    whole = tok(" 729-5086", add_special_tokens=False)["input_ids"]
    assert tok(" 729-", add_special_tokens=False)["input_ids"] == whole[:5]


def test_filter_blocks_the_number_but_not_its_pieces(tiny, facts, split, memorised_continuations):
    phones = split.forget.filter(attribute="phone")
    guarded = cl.unlearn(Memoriser(tiny, facts, cut=True), phones, split.retain, method="filter").model
    for route in D.ROUTES:
        table = D.phone_assembly(guarded, facts, phones, route)
        assert table["blocked"].all() and not table["leaked"].any()
        assert table["recovered"].all(), table[["answer", "area_code", "rest"]]
        summary = D.assembly_summary(table)
        assert summary["direct blocked"] == 1.0 and summary["assembled"] == 1.0 and summary["area code right"] == 1.0
    # the filter does check what is generated: asked to continue from nothing, the model writes the number
    q = phones[0]
    assert D.continue_answers(guarded, [q.question], [""]) == [REFUSAL]


def test_a_filter_on_every_forget_fact_stops_the_world_route_only(tiny, facts, split, memorised_continuations):
    phones = split.forget.filter(attribute="phone")
    guarded = cl.unlearn(Memoriser(tiny, facts, cut=True), split.forget, split.retain, method="filter").model
    world = D.phone_assembly(guarded, facts, phones, "world")
    assert world["area_code"].isna().all() and not world["recovered"].any()  # the birth city is refused
    assert D.phone_assembly(guarded, facts, phones, "prefix")["recovered"].all()


def test_nothing_is_recovered_from_a_model_that_does_not_know(tiny, facts, split, memorised_continuations):
    phones = split.forget.filter(attribute="phone")
    table = D.phone_assembly(Memoriser(tiny, facts, cut=True, forgotten=facts.qa.filter(attribute="birth_city")), facts,
                             phones, "world")
    assert not table["recovered"].any() and not table["blocked"].any()
    with pytest.raises(ValueError, match="route"):
        D.area_codes(tiny, facts, phones, route="guess")
    with pytest.raises(ValueError, match="phone"):
        D.phone_assembly(tiny, facts, split.forget.filter(attribute="pet"))


def test_chained_two_hop_follows_hop_one(tiny, facts, split):
    two_hop = facts.two_hop.filter(person=list(split.forget_people))
    assert D.chained_two_hop(Memoriser(tiny, facts, cut=True), facts, two_hop)["correct"].all()
    lost = Memoriser(tiny, facts, cut=True, forgotten=facts.qa.filter(attribute=["birth_city", "employer"]))
    table = D.chained_two_hop(lost, facts, two_hop)
    assert not table["hop1_correct"].any() and not table["correct"].any()
