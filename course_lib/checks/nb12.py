"""Checkers for notebook 12 (models, outputs, uses: Cooper et al.'s mismatches 3-5)."""
from __future__ import annotations

from . import not_attempted, passed


def _cases():
    """(retain person, forget people) pairs from the fast-mode people, for two split sizes."""
    from ..data import people

    facts = people.load(mode="fast")
    out = []
    for name in ("forget05", "forget10"):
        split = facts.split(name)
        forget = [facts.person(p) for p in split.forget_people]
        out += [(facts.person(p), forget, split) for p in split.retain.people if p not in split.forget_people]
    return facts, out


def check_shared_values(fn) -> None:
    """Exercise: ``fn(person, forget_people)`` counts the attributes (phone left out) whose value the person
    shares with *at least one* forget person: ``cl.evaluation.side_effects.similarity_to_forget``'s
    ``shared_values``."""
    from ..data.people import ATTRIBUTES
    from ..evaluation.side_effects import similarity_to_forget

    facts, cases = _cases()
    person, forget, _ = cases[0]
    try:
        fn(person, forget)
    except NotImplementedError:
        not_attempted("shared_values")
        return
    attrs = [a for a in ATTRIBUTES if a != "phone"]
    tables = {}
    for person, forget, split in cases:
        table = tables.setdefault(split.name, similarity_to_forget(facts, split))
        got, want = fn(person, forget), int(table.loc[person.id, "shared_values"])
        if got is None:
            raise AssertionError("shared_values returned None: did you forget `return`?")
        if got == want:
            continue
        with_phone = sum(any(getattr(person, a) == getattr(f, a) for f in forget) for a in ATTRIBUTES)
        per_pair = sum(getattr(person, a) == getattr(f, a) for f in forget for a in attrs)
        closest = max(sum(getattr(person, a) == getattr(f, a) for a in attrs) for f in forget)
        hint = {with_phone: "leave the phone out: it is unique, and comparing it only adds noise",
                per_pair: "you counted every (forget person, attribute) match: count an attribute once if *any* "
                          "forget person has the same value",
                closest: "that is the overlap with the single closest forget person (max_overlap); count an "
                         "attribute if any forget person shares it"}.get(got, "for each attribute except phone, "
                                                                             "add 1 if any forget person has the same value")
        raise AssertionError(f"{person.name} ({split.name}): got {got}, expected {want}. Hint: {hint}.")
    passed(f"Your shared_values matches similarity_to_forget on {len(cases)} retain people of two splits.")
