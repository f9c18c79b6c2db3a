"""The latent part of a secret: what a model produces without having seen it (notebook 11).

Cooper et al. (2024, "Machine Unlearning Doesn't Do What You Think", mismatch 2: *removal does not give
suppression*): a model retrained without some data can still produce what that data said, when it follows
from what the model did see. In the people data a phone number is ``"<area code>-<4 digits>"`` and the area
code is the one of the person's birth city (``facts.world["area_code_of_city"]``), so a phone number has two
parts:

- the **area code**, *inferable*: it follows from the birth city and the world fact "Lisbon has area code 312",
  a rule the model can learn from the people it was trained on;
- the **last four digits**, *not inferable*: drawn at random per person; only memorisation produces them.

Three ways to ask for the area code, each measured by how often the answer carries the right one:

- **direct** (:func:`area_code_hits`): the phone question; the area code is the answer's digits before ``-``.
  The whole number (``exact``) is measured on the same answers.
- **city in context** (``context="birth_city"``): the same, with the birth city put before the question in
  the open-book form ``"Question: Where was X born?\\nAnswer: Lisbon\\n"``; ``context="other_city"`` puts a
  *wrong* city there, a control (a model that applies the rule follows the city it is given).
- **two steps** (:func:`two_step_hits`): "Where was X born?", then "What is the phone area code of <that
  city>?": the rule applied through outputs, as a user would.

A model retrained without a person's *phone number* still knows the birth city; one retrained without *all*
the person's facts (the forget05 gold model) does not, and can only guess. :func:`latent_table` puts the
rates side by side with :func:`constant_guess_rate`, what a model that ignores the person gets.
"""
from __future__ import annotations

from collections import Counter

import pandas as pd

from ..data.people_world import AREA_CODE_OF_CITY, QUESTION_TEMPLATES, WORLD_TEMPLATES
from ..models.lm import PROMPT
from .text import normalize

CONTEXTS = ("none", "birth_city", "other_city")


def area_code(phone: str) -> str | None:
    """The digits before the first ``-`` of an answer (``"312-4471"`` -> ``"312"``); None if there are none."""
    head = phone.strip().split("-")[0].strip()
    return head if head.isdigit() else None


def other_city(city: str) -> str:
    """The next city of :data:`AREA_CODE_OF_CITY` (a different area code): the ``other_city`` control."""
    cities = list(AREA_CODE_OF_CITY)
    return cities[(cities.index(city) + 1) % len(cities)]


def _phone_questions(qaset):
    phones = qaset.filter(attribute="phone")
    if not len(phones):
        raise ValueError("qaset has no phone questions: pass e.g. split.forget or facts.holdout "
                         "(only the phone questions are used)")
    return phones


def city_contexts(qaset, facts, context: str = "birth_city") -> list[str]:
    """One open-book context per phone question of ``qaset``: ``"Question: Where was X born?\\nAnswer: Lisbon\\n"``
    with the person's true birth city (``"birth_city"``), a different city (``"other_city"``) or nothing
    (``"none"``: empty strings). The birth city comes from ``facts.person`` (train and holdout people)."""
    if context not in CONTEXTS:
        raise ValueError(f"context={context!r}; allowed values: {', '.join(map(repr, CONTEXTS))}")
    out = []
    for q in _phone_questions(qaset):
        if context == "none":
            out.append("")
            continue
        p = facts.person(q.person)
        city = p.birth_city if context == "birth_city" else other_city(p.birth_city)
        out.append(PROMPT.format(q=QUESTION_TEMPLATES["birth_city"][0].format(name=p.name)) + f" {city}\n")
    return out


def area_code_hits(model, qaset, facts, context: str = "none") -> pd.DataFrame:
    """The phone questions of ``qaset`` asked of ``model`` (greedy), one row per question: ``person``,
    ``answer`` (the true number), ``prediction``, ``context_city`` (the city put in the prompt, or None),
    ``area_code_right`` (the prediction's area code is the true one), ``follows_context`` (it is the area
    code of the city in the prompt), ``exact`` (the whole number, normalised exact match). Notebook 11."""
    phones = _phone_questions(qaset)
    contexts = city_contexts(phones, facts, context)
    preds = model.answer(list(phones.questions), prefix=contexts)
    rows = []
    for q, ctx, pred in zip(phones, contexts, preds):
        city = ctx.rsplit(" ", 1)[-1].strip() if ctx else None
        code = area_code(pred)
        rows.append({"person": q.person, "answer": q.answer, "prediction": pred, "context_city": city,
                     "area_code_right": code is not None and code == area_code(q.answer),
                     "follows_context": city is not None and code == AREA_CODE_OF_CITY[city],
                     "exact": normalize(pred) == normalize(q.answer)})
    return pd.DataFrame(rows)


def two_step_hits(model, qaset, facts) -> pd.DataFrame:
    """The area code through outputs, one row per phone question of ``qaset``: the birth-city question
    (training template 0), then the world question about the model's city. Columns: ``person``, ``answer``,
    ``city`` (the model's step-1 answer), ``city_right``, ``prediction`` (step 2), ``area_code_right``.
    Works for holdout people too (their names come from ``facts.person``). Notebook 11."""
    phones = _phone_questions(qaset)
    people = [facts.person(q.person) for q in phones]
    cities = model.answer([QUESTION_TEMPLATES["birth_city"][0].format(name=p.name) for p in people])
    known = {normalize(c): c for c in AREA_CODE_OF_CITY}
    codes = model.answer([WORLD_TEMPLATES["area_code_of_city"].format(city=known.get(normalize(c), c)) for c in cities])
    return pd.DataFrame({"person": [q.person for q in phones], "answer": [q.answer for q in phones], "city": cities,
                         "city_right": [normalize(c) == normalize(p.birth_city) for c, p in zip(cities, people)],
                         "prediction": codes,
                         "area_code_right": [area_code(c) is not None and area_code(c) == area_code(q.answer)
                                             for c, q in zip(codes, phones)]})


def constant_guess_rate(qaset) -> float:
    """The best a model that ignores the person can do on the area code: the share of the phone questions
    whose area code is the most common one among them (about 1 / 12 for the 12 cities)."""
    codes = [area_code(q.answer) for q in _phone_questions(qaset)]
    return Counter(codes).most_common(1)[0][1] / len(codes)


def latent_table(models: dict, sets: dict, facts) -> pd.DataFrame:
    """Every model x set of people, one row each (notebook 11): the area-code rate by the three routes of
    the module docstring (``direct``, ``city in context``, ``two steps``), the whole number (``exact``, from
    the direct answers), the birth city (step 1 of the two-step route) and ``constant guess``. ``models``:
    name -> model; ``sets``: name -> QA set (only its phone questions are asked)."""
    rows = []
    for set_name, qaset in sets.items():
        guess = constant_guess_rate(qaset)
        for name, model in models.items():
            direct = area_code_hits(model, qaset, facts, "none")
            in_context = area_code_hits(model, qaset, facts, "birth_city")
            chained = two_step_hits(model, qaset, facts)
            rows.append({"model": name, "people": set_name, "questions": len(direct),
                         "whole number": direct["exact"].mean(), "area code: direct": direct["area_code_right"].mean(),
                         "area code: city in context": in_context["area_code_right"].mean(),
                         "birth city": chained["city_right"].mean(),
                         "area code: two steps": chained["area_code_right"].mean(), "constant guess": guess})
    return pd.DataFrame(rows).set_index(["people", "model"])


__all__ = ["CONTEXTS", "area_code", "other_city", "city_contexts", "area_code_hits", "two_step_hits",
           "constant_guess_rate", "latent_table"]
