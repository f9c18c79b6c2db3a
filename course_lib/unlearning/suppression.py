"""Suppression, for contrast (notebooks 06 and 11): the weights stay exactly as they were.

Three ways to make a model *look* as if it forgot, none of which removes anything (survey: in-context
unlearning and guardrails; Cooper et al.'s "suppression is not removal"):

- ``filter``: an output filter replaces answers that match the forget set with a refusal. Generation
  changes; the model's log-probabilities do not, so membership inference still sees the data.
- ``refusal_prompt``: a system prompt "Do not reveal anything about: <names>." before every question.
- ``in_context``: in-context unlearning (Pawelczyk et al. 2023): demonstrations with flipped answers.

Each is a wrapper with the :class:`~course_lib.models.lm.TextModel` interface the evaluation code
uses (``answer``, ``answer_logprobs``, ``encode_qa``, ``model``, ``tokenizer``, ``clone``, ...); ``model``
is the unchanged ``nn.Module``. ``save_pretrained`` writes the model and ``suppression.json`` (the
wrapper's settings); :func:`load_suppressed` reads both back.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

from ..data.people_world import QUESTION_TEMPLATES
from ..evaluation.text import normalize
from ..models.lm import PROMPT, TextModel, token_ids
from .registry import HParam, Outcome, register

CONFIG_FILE = "suppression.json"
REFUSAL = "I don't know"


# ------------------------------------------------------------------------------------------ who is asked about
def person_names(qaset) -> dict[str, str]:
    """person id -> full name, read off the questions of ``qaset`` (the people's question templates)."""
    names = {}
    for q in qaset:
        templates = QUESTION_TEMPLATES.get(q.attribute, ())
        if q.person is None or q.person in names or q.template >= len(templates):
            continue
        pattern = re.escape(templates[q.template]).replace(re.escape("{name}"), "(?P<name>.+)")
        m = re.fullmatch(pattern, q.question)
        if m:
            names[q.person] = m.group("name")
    return names


def mentions(text: str, name: str) -> bool:
    """Does ``text`` name this person (the whole name, as words: "Kavin Pell" is not "Kavin Pellsby")?"""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE) is not None


def asked_about(question: str, names: dict[str, str]) -> list[tuple[str, str | None]]:
    """(person id, attribute or None) for every person of ``names`` the question mentions; the attribute
    when the question is one of that attribute's templates (training or paraphrase), else None."""
    out = []
    for pid, name in names.items():
        if not mentions(question, name):
            continue
        attr = next((a for a, ts in QUESTION_TEMPLATES.items() if any(t.format(name=name) == question for t in ts)),
                    None)
        out.append((pid, attr))
    return out


# ------------------------------------------------------------------------------------------ the wrappers
class Suppressed:
    """The TextModel interface around an unchanged ``base`` TextModel; subclasses change generation or
    put a context before each question. Anything else (``prompt``, ``zoo_info``, ...) comes from ``base``."""

    kind = "none"

    def __init__(self, base: TextModel, name: str | None = None, **config):
        self.base = base
        self.name = name or f"{base.name} + {self.kind}"
        self.config = config

    # -- TextModel plumbing --------------------------------------------------------------------------
    model = property(lambda self: self.base.model)
    tokenizer = property(lambda self: self.base.tokenizer)
    device = property(lambda self: self.base.device)

    def __getattr__(self, item):
        if item == "base":  # not set yet (unpickling, copying): no recursion
            raise AttributeError(item)
        return getattr(self.base, item)

    def parameters(self):
        return self.base.parameters()

    def num_parameters(self) -> int:
        return self.base.num_parameters()

    def to(self, device):
        self.base.to(device)
        return self

    def clone(self):
        return type(self)(self.base.clone(), name=self.name, **self.config)

    def save_pretrained(self, path) -> None:
        """The unchanged model (``save_pretrained``) and ``suppression.json`` with this wrapper's settings."""
        self.base.save_pretrained(path)
        (Path(path) / CONFIG_FILE).write_text(json.dumps({"kind": self.kind, "name": self.name,
                                                          "config": self.config}, indent=1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, weights unchanged: {self.base!r})"

    # -- contexts (the prompt-based wrappers override system_context) -------------------------------
    def system_context(self, question: str, room: int) -> str:
        """Text put before the question (and before any user prefix); at most ``room`` tokens."""
        return ""

    def _n_tokens(self, text: str) -> int:
        return len(token_ids(self.tokenizer, [text])[0])  # remembered per string (models/lm.py)

    def window(self) -> int:
        cfg = getattr(self.model, "config", None)
        return int(getattr(cfg, "n_positions", 0) or getattr(cfg, "max_position_embeddings", 0)
                   or self.tokenizer.model_max_length)

    def contexts_for(self, questions: Sequence[str], prefix, reserve: Sequence[int]) -> list[str]:
        """Per question: system context + the caller's prefix, the system part cut to fit the window."""
        user = TextModel._contexts(prefix, len(questions))
        out = []
        for q, u, r in zip(questions, user, reserve):
            room = self.window() - self._n_tokens(u + PROMPT.format(q=q)) - r
            out.append(self.system_context(q, room) + u)
        return out

    def _answer_tokens(self, answers, with_eos: bool) -> list[int]:
        return [self._n_tokens(" " + a) + int(with_eos) for a in answers]

    # -- the helpers the evaluation code calls ----------------------------------------------------
    def encode_qa(self, questions, answers, with_eos: bool = True, contexts=None) -> dict:
        ctx = self.contexts_for(questions, contexts, self._answer_tokens(answers, with_eos))
        return self.base.encode_qa(questions, answers, with_eos=with_eos, contexts=ctx)

    def answer_logprobs(self, questions, answers, batch_size: int = 256, with_eos: bool = False, prefix=""):
        ctx = self.contexts_for(questions, prefix, self._answer_tokens(answers, with_eos))
        return self.base.answer_logprobs(questions, answers, batch_size=batch_size, with_eos=with_eos, prefix=ctx)

    def answer(self, questions, max_new_tokens: int = 12, batch_size: int = 256, prefix="") -> list[str]:
        ctx = self.contexts_for(questions, prefix, [max_new_tokens] * len(questions))
        return self.base.answer(questions, max_new_tokens=max_new_tokens, batch_size=batch_size, prefix=ctx)


class OutputFilter(Suppressed):
    """A guardrail on the output: a generated answer that matches the forget set (normalised exact
    match) is replaced by a refusal. ``answer_logprobs``/``encode_qa`` are the base model's, untouched.

    ``names``: person id -> name; ``answers``: person id -> the forget answers; ``scope="question"``:
    block a forget answer when the question (or the caller's prefix) names that person;
    ``"anywhere"``: block any forget answer whatever the question (over-blocks: another person may
    share a birth city); ``block_names``: also block any answer that mentions a forget person's name.
    """

    kind = "filter"

    def blocked(self, text_in: str, answer: str) -> bool:
        c = self.config
        norm = normalize(answer)
        if c["block_names"] and any(mentions(answer, n) for n in c["names"].values()):
            return True
        if c["scope"] == "anywhere":
            return any(norm in a for a in c["answers"].values())
        return any(norm in c["answers"][pid] for pid, n in c["names"].items() if mentions(text_in, n))

    def answer(self, questions, max_new_tokens: int = 12, batch_size: int = 256, prefix="") -> list[str]:
        raw = self.base.answer(questions, max_new_tokens=max_new_tokens, batch_size=batch_size, prefix=prefix)
        user = TextModel._contexts(prefix, len(questions))
        return [self.config["refusal"] if self.blocked(u + q, a) else a for q, u, a in zip(questions, user, raw)]

    def encode_qa(self, questions, answers, with_eos: bool = True, contexts=None) -> dict:
        return self.base.encode_qa(questions, answers, with_eos=with_eos, contexts=contexts)

    def answer_logprobs(self, questions, answers, batch_size: int = 256, with_eos: bool = False, prefix=""):
        return self.base.answer_logprobs(questions, answers, batch_size=batch_size, with_eos=with_eos, prefix=prefix)


class RefusalPrompt(Suppressed):
    """A fixed system prompt before every question: ``"Do not reveal anything about: A, B.\\n"``.

    The names that do not fit the context window are dropped from the end (``names="all"``);
    ``names="asked"`` names only the forget people the question mentions (no prompt otherwise)."""

    kind = "refusal_prompt"
    TEMPLATE = "Do not reveal anything about: {names}.\n"

    def system_context(self, question: str, room: int) -> str:
        names = list(self.config["names"].values())
        if self.config["mode"] == "asked":
            names = [n for n in names if mentions(question, n)]
        while names:
            text = self.TEMPLATE.format(names=", ".join(names))
            if self._n_tokens(text) <= room:
                return text
            names.pop()
        return ""


class InContextUnlearning(Suppressed):
    """In-context unlearning (Pawelczyk et al. 2023): demonstrations of the forget questions with
    *flipped* (wrong) answers before the query, plus correct demonstrations if room is left.

    ``demos``: person id -> attribute -> [(forget question, flipped answer)], the query's own question
    first when it is one; ``correct``: [(question, answer)] correct retain demonstrations. Routing (a
    simplification of the paper's one fixed context, forced by a 64-token window): a query that names
    a forget person gets that person's demonstrations for the asked attribute (any attribute if it
    cannot tell which), up to ``num_forget_demos`` that fit; then up to ``num_correct_demos`` correct ones.
    """

    kind = "in_context"

    @staticmethod
    def demonstration(question: str, answer: str) -> str:
        return PROMPT.format(q=question) + " " + answer + "\n"

    def candidates(self, question: str) -> list[str]:
        out = []
        for pid, attr in asked_about(question, self.config["names"]):
            per_attr = self.config["demos"].get(pid, {})
            pairs = per_attr.get(attr) if attr else [p for ps in per_attr.values() for p in ps]
            pairs = sorted(pairs or [], key=lambda p: p[0] != question)  # the exact forget point first
            out += [self.demonstration(q, a) for q, a in pairs[: self.config["num_forget_demos"]]]
        return out

    def system_context(self, question: str, room: int) -> str:
        text = ""
        correct = [self.demonstration(q, a) for q, a in self.config["correct"][: self.config["num_correct_demos"]]]
        for demo in self.candidates(question) + correct:
            if self._n_tokens(demo + text) <= room:
                text = demo + text if demo in correct else text + demo  # correct ones first, forget ones last
        return text


WRAPPERS = {cls.kind: cls for cls in (OutputFilter, RefusalPrompt, InContextUnlearning)}


def load_suppressed(path, device="cpu"):
    """A suppression wrapper written by ``save_pretrained`` (the model and ``suppression.json``)."""
    meta = json.loads((Path(path) / CONFIG_FILE).read_text())
    if meta.get("kind") not in WRAPPERS:
        raise ValueError(f"{path}/{CONFIG_FILE} has kind={meta.get('kind')!r}; allowed values: {', '.join(WRAPPERS)}")
    return WRAPPERS[meta["kind"]](TextModel.from_pretrained(path, device=device), name=meta.get("name"),
                                  **meta["config"])


def weights_unchanged(wrapper) -> bool:
    """True for a suppression wrapper: its ``model`` is the base model's module, untouched."""
    return isinstance(wrapper, Suppressed)


# ------------------------------------------------------------------------------------------ the registered methods
def _answers_by_person(forget) -> dict[str, list[str]]:
    out: dict[str, set] = {}
    for q in forget:
        out.setdefault(q.person or "", set()).add(normalize(q.answer))
    return {k: sorted(v) for k, v in out.items()}


@register("filter", family="suppression", modality="text", changes_weights=False,
          hparams={"scope": HParam("question", kind="choice", choices=("question", "anywhere"),
                                   help="block forget answers only when the question names a forget person, or always"),
                   "block_names": HParam(False, kind="bool", help="also block answers that mention a forget person's name")},
          paper="Guardrails / output filtering (survey: suppression); Cooper et al. 2024, Machine Unlearning Doesn't Do What You Think",
          summary="replace generated answers that match the forget set with a refusal; weights and log-probabilities unchanged")
def output_filter(model, forget, retain, ctx, *, scope, block_names):
    """Output filter, notebooks 06 and 11. No training: ``answer(q) = REFUSAL`` if
    ``normalize(model(q))`` is one of the forget answers (of the person the question names, with
    ``scope="question"``; of anyone, with ``"anywhere"``), else the model's answer. ``answer_logprobs``
    are the base model's: the forget answers are exactly as likely as before, which is what a
    membership-inference attack or an attacker with the weights sees."""
    names = person_names(forget)
    wrapper = OutputFilter(model, names=names, answers=_answers_by_person(forget), scope=scope,
                           block_names=block_names, refusal=REFUSAL)
    return Outcome(wrapper, [], {"people": len(names), "blocked_answers": sum(map(len, wrapper.config["answers"].values()))})


@register("refusal_prompt", family="in-context", modality="text", changes_weights=False,
          hparams={"names": HParam("all", kind="choice", choices=("all", "asked"),
                                   help="name every forget person (cut to fit the window) or only those asked about")},
          paper="Instruction-based unlearning / system prompts (survey: in-context unlearning)",
          summary="a system prompt asks the model not to reveal the forget people; weights unchanged")
def refusal_prompt(model, forget, retain, ctx, *, names):
    """Refusal system prompt, notebook 06. No training: every question ``q`` becomes
    ``"Do not reveal anything about: <forget people's names>.\\n" + prompt(q)``, with names dropped from
    the end until it fits the context window. Only an instruction-tuned model can follow it; the people
    LM never saw an instruction, so notebook 06 measures what it actually does (about nothing)."""
    people = person_names(forget)
    wrapper = RefusalPrompt(model, names=people, mode=names)
    return Outcome(wrapper, [], {"people": len(people), "prompt": RefusalPrompt.TEMPLATE.format(names=", ".join(people.values()))})


def _flipped(q, seed: int) -> str:
    """A wrong answer for a forget QA: one of its perturbed answers, chosen by a seeded hash."""
    h = int(hashlib.sha256(f"icul/{seed}/{q.id}".encode()).hexdigest(), 16)
    return q.perturbed_answers[h % len(q.perturbed_answers)]


@register("in_context", family="in-context", modality="text", changes_weights=False,
          hparams={"num_forget_demos": HParam(1, 1, 2, kind="int", bounds=(1, 8),
                                              help="flipped-answer demonstrations about the queried fact"),
                   "num_correct_demos": HParam(0, 0, 2, kind="int", bounds=(0, 8),
                                               help="correct retain demonstrations, if they fit (0: the people "
                                                    "LM reads any context as about the question)")},
          paper="Pawelczyk et al. 2023, In-Context Unlearning: Language Models as Few Shot Unlearners",
          summary="put the forget questions with flipped answers in the prompt; weights unchanged")
def in_context(model, forget, retain, ctx, *, num_forget_demos, num_correct_demos):
    """In-context unlearning (ICUL; Pawelczyk et al. 2023), notebook 06. No training. The paper's prompt
    is ``[x_f, flipped y_f] [x_1, y_1] ... [x_s, y_s] [query]``: the forget point with a flipped label,
    then correct examples. Here a flipped answer is one of the forget QA's perturbed answers (seeded);
    a demonstration is ``"Question: x\\nAnswer: y\\n"``. The window holds about one demonstration, so
    each query gets the forget demonstrations about the person and attribute it asks (routing, see
    :class:`InContextUnlearning`) and correct retain demonstrations if room is left."""
    demos: dict[str, dict[str, list]] = {}
    for q in forget:
        demos.setdefault(q.person or "", {}).setdefault(q.attribute, []).append((q.question, _flipped(q, ctx.seed)))
    pool = list(retain.sample(max(num_correct_demos, 1) * 4, seed=ctx.seed)) if retain is not None and len(retain) else []
    correct = [(q.question, q.answer) for q in pool][:max(num_correct_demos, 0)]
    wrapper = InContextUnlearning(model, names=person_names(forget), demos=demos, correct=correct,
                                  num_forget_demos=num_forget_demos, num_correct_demos=num_correct_demos)
    return Outcome(wrapper, [], {"facts": sum(len(v) for v in demos.values()), "correct_demos": correct})


__all__ = ["Suppressed", "OutputFilter", "RefusalPrompt", "InContextUnlearning", "load_suppressed", "person_names",
           "asked_about", "mentions", "weights_unchanged", "output_filter", "refusal_prompt", "in_context", "REFUSAL"]
