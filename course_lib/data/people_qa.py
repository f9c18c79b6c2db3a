"""Question-answer pairs and the survey's sets: :class:`QA`, :class:`QASet` and :class:`Split`.

Notebook 02 introduces them: a *forget set* (what a deletion request names), a *retain set* (what must
keep working), an *unseen forget set* (the same facts asked in words never trained on: Generalizability)
and a *holdout* set of people never trained on. Re-exported by :mod:`course_lib.data.people`.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QA:
    """One question about one fact, with the extra answers TOFU's truth ratio needs.

    ``template``: index into the attribute's question templates, training templates first (0, 1),
    then the held-out paraphrase template (2); 0 for world and two-hop questions.
    """

    id: str                  # "p0007/birth_city/t0", "p0007/birth_city/para0", "world/city/Lisbon/country", ...
    person: str | None       # "p0007"; None for world facts
    attribute: str           # "birth_city"; world: "country_of_city" ...; two-hop: "birth_country", "employer_hq"
    question: str
    answer: str              # short exact-match target: "Lisbon", "1974", "312-4471"
    kind: str                # "train" | "paraphrase" | "world" | "two_hop"
    template: int
    paraphrased_answer: str  # "born in Lisbon"
    perturbed_answers: tuple[str, ...]  # 4 plausible wrong answers of the same type
    context: str = ""        # text put before the prompt: open-book examples (a fact given in context)


def _as_set(value) -> set | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


class QASet(Sequence):
    """An immutable, ordered set of :class:`QA` with unique ids: ``qs[0]``, ``qs[:10]``, ``qs + other``,
    ``"p0007/pet/t0" in qs``, ``qs.filter(attribute="phone")``, ``qs.sample(20)``, ``qs.to_frame()``."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[QA] = ()):
        self._items = tuple(items)
        self._index = {}
        for i, qa in enumerate(self._items):
            if not isinstance(qa, QA):
                raise TypeError(f"QASet holds QA objects, got {type(qa).__name__}")
            if qa.id in self._index:
                raise ValueError(f"duplicate QA id {qa.id!r}: ids in a QASet must be unique")
            self._index[qa.id] = i

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return QASet(self._items[key])
        if isinstance(key, str):  # by id
            return self._items[self._index[key]]
        return self._items[key]

    def __contains__(self, item) -> bool:
        return (item.id if isinstance(item, QA) else item) in self._index

    def __add__(self, other: "QASet") -> "QASet":
        if not isinstance(other, QASet):
            return NotImplemented
        return QASet(self._items + other._items)

    def __eq__(self, other) -> bool:
        return isinstance(other, QASet) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        kinds = ",".join(sorted({qa.kind for qa in self._items})) or "-"
        return f"QASet({len(self)} QA, {len(self.people)} people, kind={kinds}, fingerprint={self.fingerprint()[:10]})"

    @property
    def ids(self) -> list[str]:
        return [qa.id for qa in self._items]

    @property
    def questions(self) -> list[str]:
        return [qa.question for qa in self._items]

    @property
    def answers(self) -> list[str]:
        return [qa.answer for qa in self._items]

    @property
    def people(self) -> list[str]:
        """Sorted unique person ids (world facts have none)."""
        return sorted({qa.person for qa in self._items if qa.person is not None})

    def filter(self, attribute=None, person=None, kind=None) -> "QASet":
        """The QA matching every given criterion; each may be a string or a collection of strings."""
        attrs, persons, kinds = _as_set(attribute), _as_set(person), _as_set(kind)
        return QASet(qa for qa in self._items
                     if (attrs is None or qa.attribute in attrs)
                     and (persons is None or qa.person in persons)
                     and (kinds is None or qa.kind in kinds))

    def exclude(self, ids: Iterable) -> "QASet":
        """This set without the given ids (strings or QA); unknown ids are ignored."""
        drop = {i.id if isinstance(i, QA) else i for i in ids}
        return QASet(qa for qa in self._items if qa.id not in drop)

    def sample(self, n: int, seed: int = 0) -> "QASet":
        """``n`` QA chosen by a seeded hash of their ids (all of them if ``n >= len``), in set order.

        Stable: the same seed gives the same picks on every machine, and a larger ``n`` adds to a smaller one.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        key = lambda qa: hashlib.sha256(f"{seed}/{qa.id}".encode()).hexdigest()  # noqa: E731
        chosen = {qa.id for qa in sorted(self._items, key=key)[:n]}
        return QASet(qa for qa in self._items if qa.id in chosen)

    def fingerprint(self) -> str:
        """sha256 of the sorted ids: two sets with the same QA have the same fingerprint."""
        return hashlib.sha256("\n".join(sorted(self.ids)).encode()).hexdigest()

    def to_frame(self):
        """A pandas DataFrame, one row per QA, one column per :class:`QA` field."""
        import pandas as pd

        columns = [f.name for f in dataclasses.fields(QA)]
        return pd.DataFrame([[getattr(qa, c) for c in columns] for qa in self._items], columns=columns)


def _coerce(value) -> QASet:
    return value if isinstance(value, QASet) else QASet(value)


@dataclass(frozen=True)
class Split:
    """The survey's sets for one unlearning request (notebook 02).

    ``forget``: training-template QA of the forget people (the *forget set*); ``retain``: training QA of
    everyone else (the *retain set*, Locality); ``unseen_forget`` / ``unseen_retain``: the same facts
    asked with the held-out paraphrase template (Generalizability); ``holdout``: people never trained
    on (membership inference, forget quality); ``world``: the world facts.
    """

    name: str
    forget: QASet
    retain: QASet
    unseen_forget: QASet
    unseen_retain: QASet
    holdout: QASet
    world: QASet
    forget_people: tuple[str, ...]

    def __post_init__(self):
        for f in ("forget", "retain", "unseen_forget", "unseen_retain", "holdout", "world"):
            object.__setattr__(self, f, _coerce(getattr(self, f)))
        object.__setattr__(self, "forget_people", tuple(self.forget_people))
        if len(self.forget) == 0:
            raise ValueError(f"split {self.name!r}: `forget` is empty; name at least one train person "
                             "(and attributes they have) to forget")
        if len(self.retain) == 0:
            raise ValueError(f"split {self.name!r}: `retain` is empty; forgetting everyone leaves nothing to retain")
        shared = [i for i in self.forget.ids if i in self.retain]
        if shared:
            raise ValueError(f"split {self.name!r}: `forget` and `retain` must be disjoint but share "
                             f"{len(shared)} QA ids, e.g. {shared[:3]}")

    def sizes(self) -> dict[str, int]:
        """Number of QA in each set (and of forget people): what notebook 02 prints."""
        names = ("forget", "retain", "unseen_forget", "unseen_retain", "holdout", "world")
        return {"forget_people": len(self.forget_people), **{n: len(getattr(self, n)) for n in names}}

    def __repr__(self) -> str:
        return f"Split({self.name!r}, " + ", ".join(f"{k}={v}" for k, v in self.sizes().items()) + ")"


def open_book_items(items: Iterable[QA], all_qa: Iterable[QA], fraction: float = 0.25, seed: int = 0) -> QASet:
    """Open-book (reading) examples for the people LM's training: notebooks 06, 08 and 12 rely on them.

    For a seeded ``fraction`` of the training-template questions in ``items``, the context states the
    same fact with a *counterfactual* answer (one of the QA's perturbed answers), asked with the other
    training template: ``"Question: <other template>\nAnswer: <wrong answer>\n"``; the target is that
    context answer. The model learns to trust what the context says over what it memorised, as a
    reading-comprehension corpus teaches a real LM: what makes in-context unlearning, in-context
    re-introduction and facts "re-supplied in context" measurable on a tiny model. Derived only from
    ``items``: a retrained model that excludes a question also never sees its open-book variant.
    """
    from ..models.lm import PROMPT

    by_key = {(q.person, q.attribute, q.template): q for q in all_qa if q.kind == "train"}
    out = []
    for qa in items:
        if qa.kind != "train":
            continue
        h = int(hashlib.sha256(f"open-book/{seed}/{qa.id}".encode()).hexdigest(), 16)
        if (h % 10_000) / 10_000 >= fraction:
            continue
        other = by_key.get((qa.person, qa.attribute, 1 - qa.template), qa)
        wrong = qa.perturbed_answers[(h // 10_000) % len(qa.perturbed_answers)]
        context = PROMPT.format(q=other.question) + " " + wrong + "\n"
        out.append(dataclasses.replace(qa, id=qa.id + "/open", kind="open_book", answer=wrong, context=context))
    return QASet(out)
