"""Suppression (notebook 06): an output filter, a refusal prompt and in-context unlearning change what
the model says, never its weights; the filter leaves the log-probabilities exactly as they were."""
import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.models.people_lm import train_people_lm
from course_lib.unlearning import suppression
from tests.tiny import TINY_LM, Memoriser


@pytest.fixture(scope="module")
def tiny(facts):
    cl.setup(mode="fast", verbose=False)  # KIT_THREADS torch threads
    return train_people_lm(facts, TINY_LM, progress=False)


def _state(tm):
    return {k: v.detach().clone() for k, v in tm.model.state_dict().items()}


def test_names_are_read_off_the_questions(facts, split):
    names = suppression.person_names(split.forget)
    assert names == {p: facts.person(p).name for p in split.forget_people}
    q = split.unseen_forget[0]
    assert suppression.asked_about(q.question, names) == [(q.person, q.attribute)]
    assert suppression.asked_about(split.retain[0].question, names) == []


def test_filter_blocks_forget_answers_and_keeps_logprobs(tiny, facts, split):
    mem = Memoriser(tiny, facts)
    res = cl.unlearn(mem, split.forget, split.retain, method="filter")
    f = res.model
    assert cl.evaluation.answer_accuracy(mem, split.forget) == 1.0
    assert cl.evaluation.answer_accuracy(f, split.forget) == 0.0
    assert cl.evaluation.answer_accuracy(f, split.unseen_forget) == 0.0  # same answers, other words
    assert cl.evaluation.answer_accuracy(f, split.retain) == 1.0  # scope="question": nobody else is blocked
    assert set(f.answer(split.forget.questions)) == {suppression.REFUSAL}
    anywhere = cl.unlearn(mem, split.forget, split.retain, method="filter", scope="anywhere").model
    over = cl.evaluation.answer_accuracy(anywhere, split.retain)
    print(f"retain accuracy with scope='anywhere': {over:.3f}")  # measured 0.863: shared cities, colours, ...
    assert over < 0.95, "a filter on answers alone also blocks other people who share a forget answer"
    qs = split.forget[:8]
    for a, b in zip(f.answer_logprobs(qs.questions, qs.answers, with_eos=True),
                    mem.answer_logprobs(qs.questions, qs.answers, with_eos=True)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cl.evaluation.answer_loss(f, qs), cl.evaluation.answer_loss(mem, qs))
    assert not any(not torch.equal(v, _state(mem)[k]) for k, v in _state(f).items())


def test_filter_can_block_names(tiny, facts, split):
    mem = Memoriser(tiny, facts)
    f = cl.unlearn(mem, split.forget, split.retain, method="filter", block_names=True).model
    name = facts.person(split.forget_people[0]).name
    assert f.blocked("Who is this?", f"It is {name}.") and not f.blocked("Who is this?", "Nobody")


def test_prompt_methods_change_no_weights_and_fit_the_window(tiny, split):
    base = _state(tiny)
    qs = split.forget + split.unseen_forget + split.retain[:40]
    for method in ("refusal_prompt", "in_context"):
        res = cl.unlearn(tiny, split.forget, split.retain, method=method)
        assert cl.METHODS[method].changes_weights is False
        assert not any(not torch.equal(v, base[k]) for k, v in _state(res.model).items()), method
        enc = res.model.encode_qa(qs.questions, qs.answers)
        assert enc["input_ids"].shape[1] <= res.model.window(), method
        ctx = res.model.contexts_for(qs.questions, "", [12] * len(qs))
        longest = max(len(tiny.tokenizer(c + tiny.prompt(q), add_special_tokens=False)["input_ids"])
                      for c, q in zip(ctx, qs.questions))
        assert longest + 12 <= res.model.window(), method
        assert len(res.model.answer(qs.questions)) == len(qs)  # greedy decoding stays inside the window
        assert res.history == []


def test_refusal_prompt_names_the_forget_people(tiny, facts, split):
    wrapper = cl.unlearn(tiny, split.forget, split.retain, method="refusal_prompt").model
    ctx = wrapper.contexts_for([split.retain[0].question], "", [12])[0]
    assert ctx.startswith("Do not reveal anything about: ") and facts.person(split.forget_people[0]).name in ctx
    asked = cl.unlearn(tiny, split.forget, split.retain, method="refusal_prompt", names="asked").model
    assert asked.contexts_for([split.retain[0].question], "", [12]) == [""]


def test_in_context_routes_flipped_demonstrations_to_the_asked_fact(tiny, split):
    wrapper = cl.unlearn(tiny, split.forget, split.retain, method="in_context", num_correct_demos=0).model
    for q in list(split.forget[:6]) + list(split.unseen_forget[:3]):
        ctx = wrapper.contexts_for([q.question], "", [12])[0]
        demo_q, demo_a = ctx.split("Question: ")[-1].rstrip("\n").split("\nAnswer: ")
        twin = [f for f in split.forget if f.question == demo_q][0]
        assert (twin.person, twin.attribute) == (q.person, q.attribute)
        assert demo_a in twin.perturbed_answers and demo_a != q.answer  # a flipped answer
        if q.kind == "train":
            assert demo_q == q.question  # the exact forget point, as in the paper
    assert wrapper.contexts_for([split.retain[0].question], "", [12]) == [""]
    with_correct = cl.unlearn(tiny, split.forget, split.retain, method="in_context", num_correct_demos=1).model
    assert with_correct.contexts_for([split.retain[0].question], "", [12])[0].startswith("Question: ")


def test_suppression_wrappers_clone_save_and_load(tiny, split, tmp_path):
    qs = split.forget[:5]
    for method in ("filter", "refusal_prompt", "in_context"):
        w = cl.unlearn(tiny, split.forget, split.retain, method=method).model
        twin = w.clone()
        assert type(twin) is type(w) and twin.model is not w.model and twin.config == w.config
        w.save_pretrained(tmp_path / method)
        back = suppression.load_suppressed(tmp_path / method)
        assert type(back) is type(w) and back.answer(qs.questions) == w.answer(qs.questions)
        np.testing.assert_allclose(cl.evaluation.answer_loss(back, qs), cl.evaluation.answer_loss(w, qs), atol=1e-5)
    with pytest.raises(ValueError, match="num_forget_demos=0 is out of bounds"):
        cl.unlearn(tiny, split.forget, split.retain, method="in_context", num_forget_demos=0)
