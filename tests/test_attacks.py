"""Text attacks (notebook 08) on a tiny people LM: each shows its defining behaviour.

The model is a 2-layer, 32-wide GPT-2 trained on 16 fast-mode people only (about 12 s), so that it
memorises a share of their facts: 4 of them are the forget people, the other 12 the retain people.
Numbers in the comments were measured on one 2-core x86 machine (1 thread); the assertions leave margins for other CPUs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import course_lib as cl
from course_lib.attacks import text as A
from course_lib.data.people_qa import QASet, Split
from course_lib.models import people_lm
from course_lib.models.lm import TextModel

SMALL = people_lm.LMPreset(n_embd=32, n_layer=2, n_head=2, num_steps=400, batch_size=32, lr=1e-2, warmup_steps=10,
                           vocab_size=400, n_positions=96)


@pytest.fixture(scope="module")
def world():
    """(facts, split, model): a model that knows about 44 % of the forget and retain answers."""
    rt = cl.setup(mode="fast", verbose=False)
    facts = cl.data.people.load(rt)
    keep = [p.id for p in facts.people[:16]]
    full = facts.custom_split(keep[:4])
    split = Split("small", full.forget, full.retain.filter(person=keep[4:]), full.unseen_forget,
                  full.unseen_retain.filter(person=keep[4:]), full.holdout, full.world, full.forget_people)
    others = [q.id for q in facts.qa if q.person not in keep]
    lm = people_lm.train_people_lm(facts, SMALL, exclude_ids=others, device="cpu", seed=0, progress=False)
    return facts, split, lm


def logits(model, qaset) -> torch.Tensor:
    enc = model.encode_qa(qaset.questions, qaset.answers)
    with torch.no_grad():
        return model.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.model.state_dict().items()}


# ---------------------------------------------------------------------------------------------- relearning
def test_split_by_fact_keeps_each_fact_on_one_side(world):
    _, split, _ = world
    relearn_set, held_back = A.split_by_fact(split.forget, 0.5, seed=0)
    facts_of = lambda qs: {(q.person, q.attribute) for q in qs}  # noqa: E731
    assert len(relearn_set) + len(held_back) == len(split.forget)
    assert not facts_of(relearn_set) & facts_of(held_back)
    assert len(facts_of(relearn_set)) == len(facts_of(split.forget)) // 2
    assert A.split_by_fact(split.forget, 0.5, seed=0)[0] == relearn_set, "the cut is seeded"
    with pytest.raises(ValueError, match="relearn_fraction"):
        A.split_by_fact(split.forget, 1.0)
    with pytest.raises(ValueError, match="forget is empty"):
        A.split_by_fact(QASet(), 0.5)


def test_relearning_brings_back_the_held_back_facts_of_a_ga_model(world):
    """GA (10 steps) hides nearly every forget answer; 10 steps on half the facts bring others back:
    measured 0.056 -> 0.222 on the held-back half."""
    _, split, lm = world
    ga = cl.unlearn(lm, split.forget, split.retain, method="ga", num_steps=10, lr=1e-3, progress=False).model
    before = state(ga)
    res = A.relearn(ga, split, num_steps=10, lr=1e-3, eval_every=5)
    assert all(torch.equal(v, state(ga)[k]) for k, v in before.items()), "the attacked model was modified"
    assert res.before <= 0.1 and res.after >= res.before + 0.1, res
    assert list(res.details["step"]) == [0, 5, 10]
    assert res.details["relearn_acc"].iloc[-1] > res.details["relearn_acc"].iloc[0], "it should learn what it is shown"
    assert res.row()["gain"] == pytest.approx(res.after - res.before)
    assert list(A.relearn(ga, split, num_steps=3, eval_every=0).details["step"]) == [0, 3]
    with pytest.raises(ValueError, match="share"):
        A.relearn(ga, relearn_set=split.forget[:4], eval_set=split.forget[2:6])
    with pytest.raises(ValueError, match="eval_set is empty"):
        A.relearn(ga, relearn_set=split.forget[:4], eval_set=QASet())


# ---------------------------------------------------------------------------------------------- quantization
def test_fake_quantize_is_per_channel_round_to_nearest():
    w = torch.tensor([[1.0, -0.5, 0.26, 0.0], [0.01, 0.02, -0.04, 0.03]])
    q = A.fake_quantize(w, 4, channel_dim=0)
    for row, qrow in zip(w, q):  # one scale per row: max |w| / 7
        scale = row.abs().max() / 7
        assert torch.allclose(qrow, torch.round(row / scale) * scale)
        assert len(set((qrow / scale).round().tolist())) <= 15
    assert torch.equal(A.fake_quantize(torch.zeros(2, 3), 8), torch.zeros(2, 3))


def test_eight_bits_change_the_logits_little_and_four_bits_more(world):
    """Measured: mean |logit change| about 0.01 at 8 bits, 0.15 at 4 bits."""
    _, split, lm = world
    before = state(lm)
    ref = logits(lm, split.forget[:20])
    d8 = (logits(A.quantize(lm, 8), split.forget[:20]) - ref).abs().mean()
    d4 = (logits(A.quantize(lm, 4), split.forget[:20]) - ref).abs().mean()
    assert 0 < d8 < 0.05 and d4 > 4 * d8, (float(d8), float(d4))
    assert all(torch.equal(v, state(lm)[k]) for k, v in before.items()), "quantize must return a copy"
    res = A.quantization_attack(lm, split, bits=8)
    assert res.attack == "quantize8" and set(res.details["precision"]) == {"full precision", "8-bit"}
    for bad in (2, 16, True, "4"):
        with pytest.raises(ValueError, match="bits=.*allowed values: 8, 4"):
            A.quantize(lm, bad)


# ---------------------------------------------------------------------------------------------- prompts
class Reader(TextModel):
    """A stand-in that answers only from its context: the answer of the last "Answer:" in the prefix."""

    def answer(self, questions, max_new_tokens=12, batch_size=256, prefix=""):
        ctx = TextModel._contexts(prefix, len(questions))
        return [c.rsplit("Answer: ", 1)[1].strip() if "Answer: " in c else "?" for c in ctx]


def test_in_context_raises_accuracy_when_the_fact_is_given(world):
    _, split, lm = world
    reader = Reader(lm.model, lm.tokenizer, "reader")
    res = A.in_context(reader, split)
    assert res.before == 0.0 and res.after == 1.0, "the fact (with its true answer) must be in every context"
    ctx = A.contexts_for(split.forget, "fact")
    assert all(c.split("\n")[0] != "Question: " + q.question for c, q in zip(ctx, split.forget)), \
        "the fact is given in the other wording, not as the question itself"
    other = A.in_context(reader, split, context="neighbour")
    assert other.after < 0.3, "another fact of the person does not contain this answer"
    with pytest.raises(ValueError, match="context='verbatim'; allowed values"):
        A.in_context(reader, split, context="verbatim")


def test_paraphrase_measures_the_held_out_wording(world):
    _, split, lm = world
    res = A.paraphrase(lm, split)
    assert res.after == pytest.approx(cl.evaluation.answer_accuracy(lm, split.unseen_forget))
    assert res.n == len(split.unseen_forget) and set(res.details["attribute"]) == {q.attribute for q in split.unseen_forget}
    with pytest.raises(ValueError, match="paraphrases is empty"):
        A.paraphrase(lm, split, paraphrases=QASet())


# ---------------------------------------------------------------------------------------------- hidden states
def test_logit_lens_at_the_last_layer_is_the_models_own_logits(world):
    _, split, lm = world
    qs = split.forget[:8]
    states = A.prompt_states(lm, qs.questions)
    assert states.shape == (SMALL.n_layer + 1, len(qs), SMALL.n_embd)
    lens = A.lens_logits(lm, states)
    for i, q in enumerate(qs):
        ids = lm.tokenizer(lm.prompt(q.question), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            own = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert torch.allclose(lens[-1, i], own, atol=1e-4)
    res = A.logit_lens(lm, split)
    forget_rows = res.details[res.details["set"] == "forget"]
    assert list(forget_rows["layer"]) == [0, 1, 2] and res.after == forget_rows["top1"].max()


def test_a_probe_reads_answers_off_a_trained_model_but_not_off_random_features(world):
    """Measured: best-layer probe accuracy on the forget people 0.30 for the trained model, 0.14 for the
    same architecture untrained (chance 0.09); on holdout people (never trained on) both at chance."""
    facts, split, lm = world
    trained = A.probe(lm, split)
    random_features = A.probe(people_lm.new_model(facts, SMALL), split)
    chance = trained.extras["chance"]
    assert random_features.after <= chance + 0.1, random_features.details
    assert trained.after >= random_features.after + 0.1, trained.details
    holdout = trained.details[trained.details["set"] == "holdout"]["probe_acc"]
    assert holdout.max() <= chance + 0.1, "nobody can read off facts the model never saw"
    with pytest.raises(ValueError, match="attributes=.*allowed values"):
        A.probe(lm, split, attributes=["phone"])


# ---------------------------------------------------------------------------------------------- the table
def test_attack_table_compares_every_attack_with_the_control(world):
    _, split, lm = world
    models = {"gold": lm, "filter": cl.unlearn(lm, split.forget, split.retain, method="filter", progress=False).model}
    table = A.attack_table(models, split, attacks=["paraphrase", "in_context", "logit_lens"], progress=False)
    assert len(table) == 6 and set(table.columns) >= {"model", "attack", "before", "after", "gain", "control", "excess"}
    assert (table.loc[table["model"] == "gold", "excess"] == 0).all()
    lens = table.set_index(["model", "attack"]).loc[("filter", "logit_lens")]
    assert lens["before"] == 0.0 and lens["after"] == lens["control"], "the filter hides outputs, not weights"
    matrix = A.recovery_matrix(table)
    assert list(matrix.index) == ["gold", "filter"] and list(matrix.columns) == ["paraphrase", "in_context", "logit_lens"]
    assert isinstance(A.only_hidden(table), pd.Series)
    with pytest.raises(ValueError, match="attacks=.*'jailbreak'.*allowed values: relearn"):
        A.attack_table(models, split, attacks=["jailbreak"])
    with pytest.raises(ValueError, match="control='retrained' is not one of the models"):
        A.attack_table(models, split, attacks=["paraphrase"], control="retrained")
    with pytest.raises(ValueError, match="settings names attacks that are not run"):
        A.attack_table(models, split, attacks=["paraphrase"], settings={"relearn": {}})
    with pytest.raises(ValueError, match="models is empty"):
        A.attack_table({}, split)


def test_attacks_are_reached_lazily_from_the_package():
    assert cl.attacks.text.attack_table is A.attack_table
    assert np.isclose(A.AttackResult("x", "m", 0.2, 0.5, 10).gain, 0.3)


def test_the_notebook_exercise_checker_says_what_is_wrong(capsys):
    from course_lib.checks import nb08

    def stub(weight, bits):
        raise NotImplementedError

    nb08.check_fake_quantize(stub)
    assert "Not attempted" in capsys.readouterr().out
    nb08.check_fake_quantize(lambda w, bits: A.fake_quantize(w, bits, channel_dim=0))
    assert "Correct" in capsys.readouterr().out

    def per_tensor(w, bits):
        scale = w.abs().max() / (2 ** (bits - 1) - 1)
        return torch.round(w / scale) * scale

    with pytest.raises(AssertionError, match="one scale per row"):
        nb08.check_fake_quantize(per_tensor)


def test_excess_interval_is_newcombes_interval_over_each_rows_n():
    import pandas as pd

    from course_lib.attacks.text import excess_interval
    from course_lib.evaluation.stats import proportion_difference_interval

    table = pd.DataFrame([{"model": "gold", "attack": "probe", "after": 0.1, "n": 180},
                          {"model": "ga", "attack": "probe", "after": 0.3, "n": 90}])
    table.attrs["control"] = "gold"
    assert excess_interval(table, "ga", "probe") == proportion_difference_interval(0.3, 90, 0.1, 180)
    lo, hi = excess_interval(table, "gold", "probe")
    assert lo < 0 < hi and lo == pytest.approx(-hi)
    with pytest.raises(ValueError, match="not a row"):
        excess_interval(table, "npo", "probe")
