"""Side effects by similarity (notebook 12): who among the retain people pays for an unlearning request."""
import numpy as np
import pytest

from course_lib.data import people
from course_lib.evaluation import side_effects as S


class Lookup:
    """A stand-in model: answers every training question right, except the ones in ``forgotten``."""

    def __init__(self, facts, forgotten=()):
        drop = {q.id for q in forgotten}
        self.known = {q.question: q.answer for q in facts.qa if q.id not in drop}

    def answer(self, questions, prefix="", **kw):
        return [self.known.get(q, "?") for q in questions]


def test_similarity_counts_shared_values_by_hand(facts, split):
    sim = S.similarity_to_forget(facts, split)
    assert set(sim.index) == set(split.retain.people) - set(split.forget_people)
    forget = [facts.person(p) for p in split.forget_people]
    attrs = [a for a in people.ATTRIBUTES if a != "phone"]
    for pid in sim.index[:10]:
        p = facts.person(pid)
        shared = sum(any(getattr(p, a) == getattr(f, a) for f in forget) for a in attrs)
        closest = max(sum(getattr(p, a) == getattr(f, a) for a in attrs) for f in forget)
        assert sim.loc[pid, "shared_values"] == shared and sim.loc[pid, "max_overlap"] == closest
    assert (sim["max_overlap"] <= sim["shared_values"]).all() and sim["shared_values"].max() <= len(attrs)
    namesakes = {q.id for f in split.forget_people for q in facts.namesakes(f)} - set(split.forget_people)
    assert set(sim.index[sim["shared_name"]]) == namesakes


def test_damage_lands_where_the_model_forgot(facts, split):
    sim = S.similarity_to_forget(facts, split)
    near = list(sim.index[sim["max_overlap"] >= 2])
    assert near, "the fast split has people who share two values with a forget person"
    hurt = split.retain.filter(person=near, attribute="pet")  # the stand-in forgets their pets
    loc = S.locality_by_similarity(Lookup(facts), Lookup(facts, hurt), facts, split)
    assert np.allclose(loc.loc[near, "damage"], 2 / 18) and (loc.drop(index=near)["damage"] == 0).all()
    assert (loc["base_acc"] == 1.0).all()
    buckets = S.damage_by_bucket(loc, "max_overlap")
    assert buckets.loc[0, "damage"] == 0 and buckets["people"].sum() == len(loc)
    assert buckets.loc[buckets.index >= 2, "damage"].gt(0).all()
    assert S.similarity_correlation(loc)["max_overlap"] > 0.5
    with pytest.raises(ValueError, match="by="):
        S.damage_by_bucket(loc, "height")


def test_no_damage_means_no_correlation(facts, split):
    loc = S.locality_by_similarity(Lookup(facts), Lookup(facts), facts, split)
    assert (loc["damage"] == 0).all() and S.similarity_correlation(loc).isna().all()


def test_damage_by_shared_answer_splits_questions(facts, split):
    forget = [facts.person(p) for p in split.forget_people]
    shared = [q for q in split.retain if q.attribute != "phone" and q.person not in split.forget_people
              and any(getattr(f, q.attribute) == q.answer for f in forget)]
    table = S.damage_by_shared_answer(Lookup(facts), Lookup(facts, shared), facts, split)
    assert table.loc[True, "questions"] == len(shared) and table.loc[True, "damage"] == 1.0
    assert table.loc[False, "damage"] == 0.0
    fig = S.plot_damage(S.locality_by_similarity(Lookup(facts), Lookup(facts, shared), facts, split), shared=table)
    assert len(fig.axes) == 2
