"""SISA for the people LM (notebook 07): k people-LMs, each trained only on its own shard of the people.

Sharded, Isolated, Sliced, Aggregated training (Bourtoule et al. 2021, "Machine Unlearning") for a
*generative* model; notebook 01 applies it to the shape judge (``unlearning.classic.SISA``). Here:
**shards by person** (:func:`assign_people`: a request about a person touches one shard); **world facts
in every shard** (general knowledge every shard model needs; deleting one retrains all); each shard
model is **the people-LM recipe on its shard**, seeded ``rt.seed + j``, for :func:`shard_schedule`'s
steps, and **a zoo entry** (``people-lm-sisa{k}-shard{j}``, ``exclude=`` its deleted questions, cached);
with k = 1 the shard is the base model. **No slices**: a checkpoint per slice per shard would save about
half of a shard's retraining, but the recipe has no incremental data schedule (notebook 07 explains).
**Aggregation** of generated answers is the hard part (:data:`AGGREGATIONS`, :class:`SISAEnsemble`).
SISA's training and unlearning (``train_sisa``, method "sisa") live in ``unlearning.exact``.
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import zoo
from .lm import TextModel
from .people_lm import LMPreset, PeopleLMRecipe, train_people_lm, training_examples
from .sisa_aggregate import AGGREGATIONS, check_aggregation, mixture_answer, most_confident, vote  # noqa: F401

MIN_STEPS_PER_WARMUP = 3  # a shard trains at least 3 x the warm-up steps (300 for the fast and default presets)
STEP_RULE = ("steps = max(round(base_steps * shard_examples / all_examples), 3 * warmup_steps); "
             "warmup_steps as in the base preset")


# ---------------------------------------------------------------- shards of people
def assign_people(facts, k: int, seed: int = 0) -> list[tuple[str, ...]]:
    """The person ids of each of ``k`` shards: a seeded random, balanced partition of ``facts.people``.

    Reuses notebook 01's :func:`~course_lib.unlearning.classic.assign_shards` with one unit per person.
    """
    from ..unlearning.classic import assign_shards

    n = len(facts.people)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k (the number of shards) must be a whole number, got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} shards is not possible: allowed values are 1..{n}, the number of train people "
                         f"in mode {facts.mode!r} (shards are by person, each needs at least one)")
    return [tuple(facts.people[i].id for i in s) for s in assign_shards(np.arange(n), int(k), seed)]


def shard_question_ids(facts, people: Sequence[str]) -> list[str]:
    """The training questions of a shard: its people's training QA and every world fact."""
    return facts.qa.filter(person=list(people)).ids + facts.world_qa.ids


def shard_schedule(preset: LMPreset, shard_examples: int, all_examples: int) -> tuple[int, int]:
    """(steps, warm-up steps) of a shard with ``shard_examples`` of the base recipe's ``all_examples``.

    Steps proportional to the data (the same number of epochs as the base model: Bourtoule et al.'s
    choice), at least 3 x the warm-up steps; the warm-up stays the base preset's. Measured (own-question
    accuracy of one shard): a 25-person default shard, 597 steps, memorised 59 % with the warm-up scaled
    down to 15 steps (at lr 1e-2) and 100 % with the base 100; a 10-person fast shard 61 % in 175 steps,
    99 % in 230, 100 % in 300. Small shards need a fixed number of steps to learn to answer at all.
    """
    proportional = round(preset.num_steps * shard_examples / all_examples)
    steps = min(preset.num_steps, max(MIN_STEPS_PER_WARMUP * preset.warmup_steps, proportional, 1))
    return steps, min(preset.warmup_steps, steps)


# ---------------------------------------------------------------- one zoo recipe per shard
def shard_recipe_name(k: int, j: int) -> str:
    """The zoo name of shard ``j`` of ``k`` (registered on first use: ``cl.zoo.load`` then knows it)."""
    name = f"people-lm-sisa{k}-shard{j}"
    if name not in zoo._REGISTRY:
        zoo.register(name, lambda: SISAShardRecipe(k, j))
    return name


class SISAShardRecipe(PeopleLMRecipe):
    """Zoo recipe of SISA shard ``j`` of ``k``: the people-LM recipe on that shard's people and the world
    facts (``exclude=``: the shard's deleted questions), with the steps of :func:`shard_schedule`."""

    description = "one SISA shard of the people LM (notebook 07)"

    def __init__(self, k: int, j: int):
        self.k, self.j = k, j
        self.name = f"people-lm-sisa{k}-shard{j}"

    def facts(self, rt):
        return cached_facts(rt.mode)

    def people(self, rt) -> tuple[str, ...]:
        return _plan(rt.mode, self.k, rt.seed, super().preset(rt))[0][self.j]

    def preset(self, rt) -> LMPreset:
        steps, warmup = _plan(rt.mode, self.k, rt.seed, super().preset(rt))[1][self.j]
        return replace(super().preset(rt), num_steps=steps, warmup_steps=warmup)

    def config(self, rt) -> dict:
        return {**super().config(rt), "sisa": {"k": self.k, "shard": self.j, "people": list(self.people(rt)),
                                               "seed": rt.seed + self.j, "step_rule": STEP_RULE}}

    def exclude_ids(self, exclude, rt) -> list[str]:
        ids = {getattr(x, "id", x) for x in ([exclude] if isinstance(exclude, str) else exclude)}
        own = set(shard_question_ids(self.facts(rt), self.people(rt)))
        hit = sorted(ids & own)
        if not hit:
            raise ValueError(f"exclude matches none of the {len(own)} training questions of SISA shard {self.j} "
                             f"of {self.k}; this shard holds people {list(self.people(rt))[:3]}... and the world facts")
        return hit

    def train(self, rt, exclude_ids, callbacks=()):
        from ..evaluation.text import answer_accuracy

        facts, preset = self.facts(rt), self.preset(rt)
        people, deleted = self.people(rt), list(exclude_ids or ())
        n_examples = len(training_examples(facts, _others(facts, people) + deleted, preset.open_book_fraction))
        cost = {"k": self.k, "shard": self.j, "people": len(people), "train_examples": n_examples,
                "steps": preset.num_steps, "examples_processed": preset.num_steps * min(preset.batch_size, n_examples),
                "deleted": len(deleted)}
        if self.k == 1:  # the same computation as the base recipe (seed, steps, data): share its cache entry
            assert preset == super().preset(rt), "k = 1 must replay the base preset"
            model = zoo.load("people-lm", rt, exclude=deleted or None, verbose=False)
            model.name = self.name
            model.zoo_info = {**cost, "train_seconds": zoo.info("people-lm", rt, exclude=deleted or None)
                              .get("train_seconds", float("nan")), "shared_with": "people-lm"}
            return model
        model = train_people_lm(facts, preset, _others(facts, people) + deleted, device=rt.device,
                                seed=rt.seed + self.j, callbacks=callbacks)
        model.name = self.name
        own = facts.qa.filter(person=list(people)).exclude(deleted)
        model.zoo_info = {**cost, "own_accuracy": round(answer_accuracy(model, own.sample(300, seed=self.j)), 4),
                          "final_loss": round(model.train_result.history[-1]["loss"], 4)}
        return model

    def load(self, path: Path, rt):
        return TextModel.from_pretrained(path, device=rt.device, name=self.name)


@lru_cache(maxsize=4)
def cached_facts(mode: str):
    """``people.load(mode=mode)``, read once per mode (the data are immutable)."""
    from ..data import people as people_data

    return people_data.load(mode=mode)


@lru_cache(maxsize=64)
def _plan(mode: str, k: int, seed: int, preset: LMPreset):
    """(people per shard, (steps, warmup) per shard) for ``k`` shards: computed once per mode, k, seed, preset."""
    facts = cached_facts(mode)
    people = assign_people(facts, k, seed)
    n_all = len(training_examples(facts, (), preset.open_book_fraction))
    sizes = [len(training_examples(facts, _others(facts, p), preset.open_book_fraction)) for p in people]
    return people, [shard_schedule(preset, n, n_all) for n in sizes]


def _others(facts, people) -> list[str]:
    keep = set(people)
    return [q.id for q in facts.qa if q.person not in keep]


# ---------------------------------------------------------------- the ensemble
class SISAEnsemble:
    """k shard people-LMs behind the :class:`~course_lib.models.lm.TextModel` interface (notebook 07).

    ``shards[j]`` is a TextModel trained only on ``people[j]`` and the world facts. ``aggregation`` (a key
    of :data:`AGGREGATIONS`) decides whose answer is the ensemble's. ``answer_logprobs`` returns, for
    "mean", the token-level mixture log(1/k sum_j p_j(x_t | x_<t)); for "vote" and "confidence", the
    log-probabilities of the shard that gives the answer the highest mean (the shard confidence trusts).
    SISA's unlearning (retrain only the shards that held the forget data) is ``cl.unlearn(ens, forget,
    method="sisa", rt=rt)`` (``unlearning.exact``).
    """

    modality = "text"

    def __init__(self, shards: Sequence[TextModel], people: Sequence[Sequence[str]], *, mode: str, seed: int,
                 aggregation: str = "confidence", deleted: Sequence[str] = (), costs: Sequence[dict] | None = None):
        if len(shards) != len(people) or not shards:
            raise ValueError(f"{len(shards)} shard models but {len(people)} groups of people: give one group per model")
        self.shards, self.people = list(shards), [tuple(p) for p in people]
        self.mode, self.seed = mode, seed
        self.aggregation = check_aggregation(aggregation)
        self.deleted = tuple(sorted(deleted))
        self.costs = [dict(c) for c in costs] if costs is not None else [dict(m.zoo_info) for m in shards]
        self._owner = {p: j for j, group in enumerate(self.people) for p in group}
        self.k, self.name = len(self.shards), f"people-lm-sisa{len(self.shards)}"

    @property
    def tokenizer(self):
        return self.shards[0].tokenizer

    @property
    def device(self) -> torch.device:
        return self.shards[0].device

    @property
    def model(self):
        raise AttributeError(f"a SISAEnsemble has no single `.model`: it holds {self.k} shard models "
                             "(`.shards[j].model`). Unlearn it with method='sisa', or pass one shard to other methods.")

    def to(self, device) -> "SISAEnsemble":
        self.shards = [m.to(device) for m in self.shards]
        return self

    def parameters(self):
        return (p for m in self.shards for p in m.parameters())

    def num_parameters(self) -> int:
        return sum(m.num_parameters() for m in self.shards)

    def shard_of(self, person: str) -> int:
        """The shard that holds ``person`` (an id such as "p0007")."""
        if person not in self._owner:
            raise KeyError(f"person {person!r} is in no shard (holdout people and unknown ids are in none)")
        return self._owner[person]

    def clone(self) -> "SISAEnsemble":
        return SISAEnsemble([m.clone() for m in self.shards], self.people, mode=self.mode, seed=self.seed,
                            aggregation=self.aggregation, deleted=self.deleted, costs=self.costs)

    def __repr__(self) -> str:
        return (f"SISAEnsemble(k={self.k}, people per shard={[len(p) for p in self.people]}, aggregation="
                f"{self.aggregation!r}, deleted={len(self.deleted)} questions, "
                f"{self.num_parameters() / 1e6:.2f}M parameters)")

    # -- answers ----------------------------------------------------------------------------------
    def shard_answers(self, questions: Sequence[str], max_new_tokens: int = 12, batch_size: int = 256,
                      prefix: Sequence[str] | str = "") -> tuple[list[list[str]], np.ndarray]:
        """Every shard's greedy answers and its confidence in them: (answers[j][i], scores (k, n)), the
        score being the mean token log-probability of the answer, end token included."""
        answers, scores = [], []
        for m in self.shards:
            a = m.answer(list(questions), max_new_tokens, batch_size, prefix)
            lps = m.answer_logprobs(list(questions), a, batch_size, with_eos=True, prefix=prefix)
            answers.append(a)
            scores.append([float(lp.mean()) for lp in lps])
        return answers, np.asarray(scores, dtype=float).reshape(self.k, len(questions))

    def answer(self, questions: Sequence[str], max_new_tokens: int = 12, batch_size: int = 256,
               prefix: Sequence[str] | str = "", aggregation: str | None = None) -> list[str]:
        """The ensemble's greedy answers, aggregated with ``aggregation`` (default: ``self.aggregation``)."""
        how, questions = check_aggregation(aggregation or self.aggregation), list(questions)
        if not questions:
            return []
        if how == "mean":
            return mixture_answer(self.shards, questions, max_new_tokens, batch_size, prefix)
        if how == "vote":
            return vote([m.answer(questions, max_new_tokens, batch_size, prefix) for m in self.shards])
        return most_confident(*self.shard_answers(questions, max_new_tokens, batch_size, prefix))

    def answer_logprobs(self, questions: Sequence[str], answers: Sequence[str], batch_size: int = 256,
                        with_eos: bool = False, prefix: Sequence[str] | str = "") -> list[np.ndarray]:
        """Per answer, log-probabilities of its tokens under the ensemble (see the class docstring)."""
        per = [m.answer_logprobs(list(questions), list(answers), batch_size, with_eos, prefix) for m in self.shards]
        if self.aggregation == "mean":
            return [np.logaddexp.reduce(np.stack([p[i] for p in per]), axis=0) - np.log(self.k)
                    for i in range(len(answers))]
        means = np.array([[lp.mean() if len(lp) else 0.0 for lp in p] for p in per])
        return [per[j][i] for i, j in enumerate(np.argmax(means, axis=0))]

    # -- checkpoints ------------------------------------------------------------------------------
    def save_pretrained(self, path) -> None:
        """Each shard with ``save_pretrained`` (safetensors) in ``shard{j}/``, the rest in ``sisa.json``."""
        path = Path(path)
        for j, m in enumerate(self.shards):
            m.save_pretrained(path / f"shard{j}")
        meta = {"format": 1, "k": self.k, "people": [list(p) for p in self.people], "mode": self.mode,
                "seed": self.seed, "aggregation": self.aggregation, "deleted": list(self.deleted), "costs": self.costs}
        (path / "sisa.json").write_text(json.dumps(meta, indent=1, default=str))

    @classmethod
    def from_pretrained(cls, path, device="cpu") -> "SISAEnsemble":
        meta = json.loads((Path(path) / "sisa.json").read_text())
        shards = [TextModel.from_pretrained(Path(path) / f"shard{j}", device=device,
                                            name=f"people-lm-sisa{meta['k']}-shard{j}") for j in range(meta["k"])]
        return cls(shards, meta["people"], **{k: meta[k] for k in ("mode", "seed", "aggregation", "deleted", "costs")})

