"""Exact unlearning (notebook 07): retrain through the zoo, SISA shards of the people LM, aggregation, costs."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib.data import people
from course_lib.models import people_lm, sisa_lm, zoo
from course_lib.unlearning import exact
from tests.tiny import TINY_LM

# n_positions 96: with a 400-token vocabulary an open-book example is up to 76 tokens long (TINY_LM has 64).
TINY = replace(TINY_LM, n_positions=96)
# Long enough for a 10-person shard (k = 4: about 100 steps) to learn its people: measured, the owner shard's
# NLL on the forget person's answers is 2.28 before unlearning and 2.92 after.
SHARD_LM = replace(TINY, num_steps=290)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(people_lm.PRESETS, "fast", TINY)


@pytest.fixture
def shard_lm(monkeypatch):
    monkeypatch.setitem(people_lm.PRESETS, "fast", SHARD_LM)


def _weights(tm):
    return {k: v.detach().clone() for k, v in tm.model.state_dict().items()}


def _same(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------- retrain
def test_retrain_returns_the_zoo_exclude_model_and_its_cost(rt, tiny):
    facts = people.load(rt)
    split = facts.split("forget10")
    base = cl.zoo.load("people-lm", rt)
    res = cl.unlearn(base, split.forget, split.retain, method="retrain", rt=rt)
    gold = cl.zoo.load("people-lm", rt, exclude=split.forget)
    assert _same(res.model, gold)
    assert not _same(res.model, base)
    info = zoo.info("people-lm", rt, exclude=split.forget)
    assert res.extras["train_seconds"] == info["train_seconds"] > 0 and res.extras["from_cache"] is False
    assert res.extras["steps"] == people_lm.PRESETS["fast"].num_steps
    again = cl.unlearn(base, split.forget, split.retain, method="retrain", rt=rt)  # now from the cache
    assert again.extras["from_cache"] is True and again.extras["train_seconds"] == info["train_seconds"]


def test_retrain_and_sisa_need_the_runtime(rt, tiny):
    facts = people.load(rt)
    split = facts.split("forget05")
    base = cl.zoo.load("people-lm", rt)
    for method in ("retrain", "sisa"):
        with pytest.raises(ValueError, match="needs the runtime"):
            cl.unlearn(base, split.forget, split.retain, method=method)


# ---------------------------------------------------------------- shards
def test_shards_are_by_person_deterministic_disjoint_and_balanced():
    facts = people.load(mode="fast")
    for k in (1, 3, 8, len(facts.people)):
        shards = sisa_lm.assign_people(facts, k, seed=0)
        assert shards == sisa_lm.assign_people(facts, k, seed=0)
        flat = [p for s in shards for p in s]
        assert sorted(flat) == sorted(p.id for p in facts.people) and len(flat) == len(set(flat))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert sisa_lm.assign_people(facts, 4, seed=0) != sisa_lm.assign_people(facts, 4, seed=1)
    # a person's questions all sit in one shard; world facts in every shard
    shards = sisa_lm.assign_people(facts, 4)
    split = facts.split("forget05")
    person = split.forget_people[0]
    owner = next(j for j, s in enumerate(shards) if person in s)
    assert exact.shards_holding(shards, split.forget.filter(person=person), facts) == [owner]
    assert exact.shards_holding(shards, facts.world_qa[:1], facts) == [0, 1, 2, 3]
    assert exact.shards_holding(shards, facts.paraphrases[:5], facts) == []


def test_bad_inputs_give_clear_errors(rt, tiny):
    facts = people.load(rt)
    n = len(facts.people)
    with pytest.raises(ValueError, match=rf"allowed values are 1..{n}"):
        sisa_lm.assign_people(facts, 0)
    with pytest.raises(ValueError, match=rf"allowed values are 1..{n}"):
        sisa_lm.assign_people(facts, n + 1)
    with pytest.raises(TypeError, match="whole number"):
        sisa_lm.assign_people(facts, 2.5)
    ens = exact.train_sisa(facts, rt, 2, verbose=False)
    split = facts.split("forget05")
    with pytest.raises(ValueError, match="forget set is empty"):
        cl.unlearn(ens, facts.qa.filter(person="nobody"), split.retain, method="sisa", rt=rt)
    with pytest.raises(ValueError, match="none of the ensemble's training questions"):
        cl.unlearn(ens, split.unseen_forget, None, method="sisa", rt=rt)
    with pytest.raises(TypeError, match="sisa unlearns a SISAEnsemble"):
        cl.unlearn(ens.shards[0], split.forget, split.retain, method="sisa", rt=rt)
    with pytest.raises(TypeError, match="method='sisa'"):
        cl.unlearn(ens, split.forget, split.retain, method="retrain", rt=rt)
    with pytest.raises(ValueError, match="aggregation='median'"):
        ens.answer(["What is the pet of nobody?"], aggregation="median")
    with pytest.raises(AttributeError, match="no single `.model`"):
        ens.model


# ---------------------------------------------------------------- SISA unlearning
def test_sisa_retrains_only_the_affected_shard_and_forgets(rt, shard_lm):
    facts = people.load(rt)
    ens = exact.train_sisa(facts, rt, 4, verbose=False)
    person = facts.split("forget05").forget_people[0]
    forget = facts.qa.filter(person=person)
    owner = ens.shard_of(person)
    before = ens.shards[owner].answer_logprobs(forget.questions, forget.answers, with_eos=True)
    res = cl.unlearn(ens, forget, facts.qa.exclude(forget), method="sisa", rt=rt)
    out = res.model
    assert res.extras["touched_shards"] == [owner] and len(res.history) == 1
    assert res.extras["retrain_steps"] == ens.costs[owner]["steps"] and res.extras["retrain_seconds"] > 0
    assert exact.identical_shards(ens, out) == [j for j in range(4) if j != owner]  # untouched: bit-identical
    assert ens.deleted == () and out.deleted == tuple(sorted(forget.ids))  # the input ensemble is not modified
    after = out.shards[owner].answer_logprobs(forget.questions, forget.answers, with_eos=True)
    nll_before = -np.mean([lp.mean() for lp in before])
    nll_after = -np.mean([lp.mean() for lp in after])
    print(f"owner shard: forget NLL {nll_before:.3f} -> {nll_after:.3f}")  # measured: 2.28 -> 2.92
    assert nll_after > nll_before + 0.3
    ens_before = -np.mean([lp.mean() for lp in ens.answer_logprobs(forget.questions, forget.answers)])
    ens_after = -np.mean([lp.mean() for lp in out.answer_logprobs(forget.questions, forget.answers)])
    print(f"ensemble: forget NLL {ens_before:.3f} -> {ens_after:.3f}")
    assert ens_after > ens_before
    # the retrained shard is the zoo's entry for that shard without the person: a second request adds to it
    other = facts.qa.filter(person=[p for p in ens.people[owner] if p != person][0])
    res2 = cl.unlearn(out, other, None, method="sisa", rt=rt)
    assert res2.extras["touched_shards"] == [owner] and len(res2.model.deleted) == len(forget) + len(other)
    assert zoo.info(sisa_lm.shard_recipe_name(4, owner), rt, exclude=list(forget.ids) + list(other.ids))


def test_k1_sisa_is_the_base_model_and_its_retrain(rt, tiny):
    facts = people.load(rt)
    ens = exact.train_sisa(facts, rt, 1, verbose=False)
    assert _same(ens.shards[0], cl.zoo.load("people-lm", rt))
    split = facts.split("forget05")
    res = cl.unlearn(ens, split.forget, split.retain, method="sisa", rt=rt)
    assert res.extras["touched_shards"] == [0]
    assert _same(res.model.shards[0], cl.zoo.load("people-lm", rt, exclude=split.forget))
    assert res.extras["retrain_seconds"] == zoo.info("people-lm", rt, exclude=split.forget)["train_seconds"]


def test_shards_are_seeded_and_saved_with_safetensors(rt, tiny, tmp_path, monkeypatch):
    facts = people.load(rt)
    ens = exact.train_sisa(facts, rt, 2, verbose=False)
    assert ens.costs[0]["steps"] == sisa_lm.shard_schedule(people_lm.PRESETS["fast"], ens.costs[0]["train_examples"],
                                                            len(people_lm.training_examples(facts)))[0]
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "other-cache"))
    rt2 = cl.setup(mode="fast", verbose=False)
    twin = exact.train_sisa(facts, rt2, 2, verbose=False)  # trained again, in another cache
    assert all(_same(a, b) for a, b in zip(ens.shards, twin.shards))
    assert not _same(ens.shards[0], ens.shards[1])  # different data and seed per shard
    ens.save_pretrained(tmp_path / "sisa")
    assert sorted(p.name for p in (tmp_path / "sisa").iterdir()) == ["shard0", "shard1", "sisa.json"]
    assert (tmp_path / "sisa" / "shard0" / "model.safetensors").is_file()
    back = sisa_lm.SISAEnsemble.from_pretrained(tmp_path / "sisa")
    qs = facts.qa.questions[:6]
    assert back.answer(qs) == ens.answer(qs) and back.people == ens.people and back.costs == ens.costs
    twin_clone = ens.clone()
    assert all(_same(a, b) for a, b in zip(ens.shards, twin_clone.shards))
    assert twin_clone.shards[0].model is not ens.shards[0].model


# ---------------------------------------------------------------- aggregation
def test_vote_and_confidence_pick_what_they_should():
    answers = [["Lisbon", "1974", "cat", "a"],
               ["Porto", "1974", "dog", "b"],
               ["lisbon.", "1980", "dog", "c"]]
    assert sisa_lm.vote(answers) == ["Lisbon", "1974", "dog", "a"]  # normalised counts; a 3-way tie -> shard 0
    scores = [[-0.1, -2.0, -3.0, -1.0],
              [-0.5, -0.2, -3.0, -1.0],
              [-3.0, -1.0, -0.4, -1.0]]
    assert sisa_lm.most_confident(answers, scores) == ["Lisbon", "1974", "dog", "a"]
    assert sisa_lm.most_confident([["x", "y"], ["z", "w"]], [[-2.0, -0.1], [-0.5, -0.3]]) == ["z", "y"]
    with pytest.raises(ValueError, match="shape"):
        sisa_lm.most_confident(answers, [[0.0, 0.0]])


def test_mean_aggregation_of_identical_shards_is_the_shard(rt, tiny):
    facts = people.load(rt)
    lm = cl.zoo.load("people-lm", rt)
    ens = sisa_lm.SISAEnsemble([lm, lm.clone(), lm.clone()], [("a",), ("b",), ("c",)], mode="fast", seed=0,
                               aggregation="mean")
    qs, ans = facts.qa.questions[:8], facts.qa.answers[:8]
    assert ens.answer(qs) == lm.answer(qs)
    for how in ("vote", "confidence"):
        assert ens.answer(qs, aggregation=how) == lm.answer(qs)
    for a, b in zip(ens.answer_logprobs(qs, ans), lm.answer_logprobs(qs, ans)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_aggregation_accuracy_reports_every_rule(rt, tiny):
    facts = people.load(rt)
    ens = exact.train_sisa(facts, rt, 2, verbose=False)
    acc = exact.aggregation_accuracy(ens, facts.qa.sample(40))
    assert set(acc) == {"vote", "confidence", "mean", "owner shard", "any shard"}
    assert all(0.0 <= v <= 1.0 for v in acc.values())
    assert acc["any shard"] >= max(acc["owner shard"], acc["vote"], acc["confidence"]) - 1e-9
    assert np.isnan(exact.aggregation_accuracy(ens, facts.holdout.sample(10), ())["owner shard"])


# ---------------------------------------------------------------- costs
def test_expected_touched_shards_formula_and_simulation():
    assert exact.expected_touched_shards(1, 5) == 1 and exact.expected_touched_shards(8, 0) == 0
    assert exact.expected_touched_shards(4, 1) == pytest.approx(1.0)
    assert exact.expected_touched_shards(4, 2) == pytest.approx(1.75)
    facts = people.load(mode="fast")
    shards = sisa_lm.assign_people(facts, 4)
    sim = exact.simulate_touched_shards(shards, 12, trials=2000)
    formula = np.array([exact.expected_touched_shards(4, r) for r in range(1, 13)])
    # distinct people: a little more spread than independent draws, never fewer shards
    assert np.all(sim >= formula - 0.02) and np.all(sim - formula < 0.25) and sim[-1] <= 4
    with pytest.raises(ValueError, match="k >= 1"):
        exact.expected_touched_shards(0, 3)


def test_cost_curves_and_table(rt, tiny):
    facts = people.load(rt)
    ensembles = {k: exact.train_sisa(facts, rt, k, verbose=False) for k in (1, 2)}
    curves = exact.cost_curves(ensembles, requests=6)
    one = curves[curves.k == 1]
    assert list(one["shards touched"]) == [1] * 6
    assert one["batched"].nunique() == 1 and one["one at a time"].is_monotonic_increasing
    two = curves[curves.k == 2]
    assert (two["batched"] <= two["one at a time"]).all() and two["shards touched"].max() <= 2
    table = exact.cost_table(ensembles)
    assert table.loc[2, "one request: examples processed"] < table.loc[1, "one request: examples processed"]
    assert exact.colocated_two_hop(facts, 1) == 1.0 and exact.colocated_two_hop(facts, 8) < 0.4


def test_checker_accepts_the_formula_and_explains_mistakes(capsys):
    from course_lib.checks import nb07

    nb07.check_expected_touched_shards(lambda k, r: k * (1 - (1 - 1 / k) ** r))
    assert "Correct" in capsys.readouterr().out

    def stub(k, r):
        raise NotImplementedError

    nb07.check_expected_touched_shards(stub)
    assert "Not attempted" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="NOT touched"):
        nb07.check_expected_touched_shards(lambda k, r: k * (1 - 1 / k) ** r)
    with pytest.raises(AssertionError, match="min"):
        nb07.check_expected_touched_shards(lambda k, r: min(k, r))
