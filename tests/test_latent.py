"""course_lib.evaluation.latent (notebook 11): the inferable area code of a phone number, with stand-in models."""
from __future__ import annotations

import pytest

import course_lib as cl
from course_lib.data.people_world import AREA_CODE_OF_CITY
from course_lib.evaluation import latent


@pytest.fixture(scope="module")
def facts():
    return cl.data.people.load(mode="fast")


class StandIn:
    """A model with the TextModel ``answer`` interface: ``rule(question, context) -> answer``."""

    def __init__(self, rule):
        self.rule, self.calls = rule, []

    def answer(self, questions, max_new_tokens=12, batch_size=256, prefix=""):
        contexts = [prefix] * len(questions) if isinstance(prefix, str) else list(prefix)
        self.calls.append(contexts)
        return [self.rule(q, c) for q, c in zip(questions, contexts)]


def by_name(facts):
    people = facts.people + facts.holdout_people
    return lambda q: next((p for p in people if p.name in q), None)


def test_area_code_parsing():
    assert latent.area_code("312-4471") == "312"
    assert latent.area_code(" 729-5086.") == "729"
    assert latent.area_code("896") == "896"
    assert latent.area_code("Arequipa") is None and latent.area_code("I don't know") is None
    assert latent.area_code("") is None
    assert latent.other_city("Lisbon") != "Lisbon" and latent.other_city("Arequipa") in AREA_CODE_OF_CITY


def test_a_model_that_applies_the_rule_gets_the_area_code_not_the_number(facts):
    """A stand-in that knows every birth city and the rule, but no digits: area code 1, whole number 0."""
    who = by_name(facts)
    rule = StandIn(lambda q, c: f"{AREA_CODE_OF_CITY[who(q).birth_city]}-0000")
    hits = latent.area_code_hits(rule, facts.holdout, facts)
    assert len(hits) == len(facts.holdout.filter(attribute="phone"))
    assert hits["area_code_right"].all() and not hits["exact"].any()
    assert rule.calls[-1] == [""] * len(hits)  # context "none": nothing before the question
    memoriser = StandIn(lambda q, c: who(q).phone)
    assert latent.area_code_hits(memoriser, facts.qa, facts)["exact"].all()


def test_contexts_name_the_city_and_a_reader_follows_them(facts):
    """``birth_city`` puts the true city in the open-book form; ``other_city`` a wrong one. A stand-in that
    reads the city off its context follows it: right with the true city, wrong with the other."""
    split = facts.split("forget05")
    ctx = latent.city_contexts(split.forget, facts, "birth_city")
    phones = split.forget.filter(attribute="phone")
    assert len(ctx) == len(phones)
    p = facts.person(phones[0].person)
    assert ctx[0] == f"Question: Where was {p.name} born?\nAnswer: {p.birth_city}\n"
    reader = StandIn(lambda q, c: f"{AREA_CODE_OF_CITY[c.rsplit(' ', 1)[-1].strip()]}-1234" if c else "I don't know")
    right = latent.area_code_hits(reader, split.forget, facts, "birth_city")
    wrong = latent.area_code_hits(reader, split.forget, facts, "other_city")
    none = latent.area_code_hits(reader, split.forget, facts, "none")
    assert right["area_code_right"].all() and right["follows_context"].all()
    assert wrong["follows_context"].all() and not wrong["area_code_right"].any()
    assert not none["area_code_right"].any() and not none["follows_context"].any()


def test_two_steps_apply_the_rule_through_outputs(facts):
    """Step 1 the birth city, step 2 the world fact: right area code exactly when the city is right."""
    from course_lib.data.people_world import WORLD_TEMPLATES

    who = by_name(facts)
    city_of = {WORLD_TEMPLATES["area_code_of_city"].format(city=c): code for c, code in AREA_CODE_OF_CITY.items()}

    def knows_half(q, c):  # birth city right for holdout people h0000, h0002, ...; world facts all right
        if q in city_of:
            return city_of[q]
        p = who(q)
        return p.birth_city if int(p.id[1:]) % 2 == 0 else latent.other_city(p.birth_city)

    hits = latent.two_step_hits(StandIn(knows_half), facts.holdout, facts)
    assert len(hits) == len(facts.holdout.filter(attribute="phone"))
    assert (hits["area_code_right"] == hits["city_right"]).all()
    assert 0.3 < hits["city_right"].mean() < 0.7


def test_constant_guess_and_table(facts):
    holdout = facts.holdout
    codes = [latent.area_code(q.answer) for q in holdout.filter(attribute="phone")]
    rate = latent.constant_guess_rate(holdout)
    assert rate == max(codes.count(c) for c in set(codes)) / len(codes)
    assert 1 / len(AREA_CODE_OF_CITY) <= rate < 1
    who = by_name(facts)
    rule = lambda q, c: f"{AREA_CODE_OF_CITY[who(q).birth_city]}-0000" if who(q) else "I don't know"  # noqa: E731
    models = {"rule": StandIn(rule),
              "guess": StandIn(lambda q, c: "312-0000")}
    table = latent.latent_table(models, {"holdout": holdout}, facts)
    assert len(table) == 2 and list(table.index.get_level_values("model")) == ["rule", "guess"]
    assert table.loc[("holdout", "rule"), "area code: direct"] == 1.0
    assert table.loc[("holdout", "rule"), "whole number"] == 0.0
    assert table.loc[("holdout", "guess"), "area code: direct"] == pytest.approx(codes.count("312") / len(codes))
    assert table.loc[("holdout", "guess"), "area code: direct"] <= table.loc[("holdout", "guess"), "constant guess"]
    # neither stand-in answers the birth-city question with a city: the two-step route gets nothing
    assert table["birth city"].max() == 0.0 and table["area code: two steps"].max() == 0.0


def test_clear_errors(facts):
    model = StandIn(lambda q, c: "")
    with pytest.raises(ValueError, match="no phone questions"):
        latent.area_code_hits(model, facts.qa.filter(attribute="pet"), facts)
    with pytest.raises(ValueError, match="allowed values"):
        latent.city_contexts(facts.holdout, facts, "the city")


def test_checker_accepts_the_reference_and_explains_mistakes(capsys):
    from course_lib.checks import nb11

    def reference(predictions, answers):
        return sum(latent.area_code(p) is not None and latent.area_code(p) == latent.area_code(a)
                   for p, a in zip(predictions, answers)) / len(predictions)

    def stub(predictions, answers):
        raise NotImplementedError

    nb11.check_area_code_rate(stub)
    assert "Not attempted" in capsys.readouterr().out
    nb11.check_area_code_rate(reference)
    with pytest.raises(AssertionError, match="startswith"):
        nb11.check_area_code_rate(lambda ps, as_: sum(p.strip().startswith(a[:3]) for p, a in zip(ps, as_)) / len(ps))
    with pytest.raises(AssertionError, match="share"):
        nb11.check_area_code_rate(lambda ps, as_: sum(latent.area_code(p) == latent.area_code(a)
                                                      for p, a in zip(ps, as_)))
    with pytest.raises(AssertionError, match="no area code"):
        nb11.check_area_code_rate(lambda ps, as_: sum(int(p.split("-")[0]) == int(a.split("-")[0])
                                                      for p, a in zip(ps, as_)) / len(ps))
