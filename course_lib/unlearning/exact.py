"""Exact unlearning for the people LM (notebook 07): retrain from scratch, and SISA's sharded retraining.

Exact unlearning returns the model the training algorithm A gives on the data without the forget set:
A(D \\ D_f) (Cao & Yang 2015; the gold model of notebooks 02-06). Two ways to get it:

- ``retrain``: run the whole recipe again without D_f. Exact, and as costly as the first training.
- ``sisa`` (Bourtoule et al. 2021): the model is an ensemble of k shard models (:func:`train_sisa` builds
  a ``models.sisa_lm.SISAEnsemble``), each trained only on its shard; deleting D_f retrains only the
  shards that held it. Each retrained shard is A(D_j \\ D_f), so the ensemble is exactly the SISA model
  trained without D_f, at about 1/k of the cost per request when the request sits in one shard.

Also here: the cost model of many requests (:func:`expected_touched_shards`, :func:`cost_curves`),
the accuracy of the aggregation rules (:func:`aggregation_accuracy`) and the two-hop analysis of
knowledge composed across shards (:func:`two_hop_chain`, :func:`colocated_two_hop`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..models import zoo
from ..models.sisa_lm import (SISAEnsemble, check_aggregation, assign_people, cached_facts, most_confident,
                              shard_question_ids, shard_recipe_name, vote)
from .registry import Outcome, register


def _need_rt(ctx, method: str):
    if ctx.rt is None:
        raise ValueError(f"{method} trains from scratch through the zoo and needs the runtime: "
                         f"cl.unlearn(model, forget, retain, method={method!r}, rt=rt)")
    return ctx.rt


# ---------------------------------------------------------------- retrain
@register("retrain", family="exact", modality="text", hparams={},
          paper="Cao & Yang 2015, Towards Making Systems Forget with Machine Unlearning (retraining as baseline)",
          summary="train the same recipe from scratch without the forget set: the gold standard")
def retrain(model, forget, retain, ctx):
    """Exact unlearning by retraining (notebooks 02 and 07): theta' = A(D \\ D_f).

    Replays the zoo recipe ``people-lm`` (same config, seed and steps) from scratch on the training set
    without the forget questions: ``cl.zoo.load("people-lm", rt, exclude=forget)``, cached. The weights
    of ``model`` are not used and ``retain`` is implied (everything not forgotten). Extras: the cost of
    training, read from the zoo manifest (so it is reported even when the model comes from the cache).
    """
    rt = _need_rt(ctx, "retrain")
    if isinstance(model, SISAEnsemble):
        raise TypeError("retrain replays the people-lm recipe; to unlearn from a SISAEnsemble use method='sisa'")
    from ..models.people_lm import PeopleLMRecipe

    cached = (zoo.entry_path("people-lm", rt, exclude=forget) / zoo.MANIFEST).is_file()
    gold = zoo.load("people-lm", rt, exclude=forget, verbose=ctx.progress)
    info = zoo.info("people-lm", rt, exclude=forget)
    preset = PeopleLMRecipe().preset(rt)
    extras = {"train_seconds": info.get("train_seconds", float("nan")), "steps": preset.num_steps,
              "examples_processed": preset.num_steps * preset.batch_size,
              "train_examples": info.get("train_examples"), "from_cache": cached, "recipe": "people-lm"}
    history = [{"step": s, "loss": loss} for s, loss in info.get("loss_curve", [])]
    return Outcome(gold, history, extras)


# ---------------------------------------------------------------- SISA
def shards_holding(people_per_shard: Sequence[Sequence[str]], forget, facts) -> list[int]:
    """The shards whose training data hold at least one ``forget`` example (QA or ids): a person's
    question lives in that person's shard, a world fact in every shard; other ids hold nowhere."""
    trained = facts.training_set()
    owner = {p: j for j, people in enumerate(people_per_shard) for p in people}
    touched: set[int] = set()
    for item in ([forget] if isinstance(forget, str) else forget):
        qid = getattr(item, "id", item)
        if qid in trained:
            person = trained[qid].person
            touched |= set(range(len(people_per_shard))) if person is None else {owner[person]}
    return sorted(touched)


def train_sisa(facts, rt, k: int, aggregation: str = "confidence", verbose: bool = True) -> SISAEnsemble:
    """SISA training: the ensemble of ``k`` shard people-LMs for ``rt`` (``models.sisa_lm``); each shard is
    trained once, on its shard only, then cached by the zoo."""
    if facts.mode != rt.mode:
        raise ValueError(f"facts are for mode {facts.mode!r} but rt.mode is {rt.mode!r}")
    people = assign_people(facts, k, rt.seed)
    check_aggregation(aggregation)
    shards, costs, fresh, unpacked = [], [], 0, 0
    for j in range(k):
        name = shard_recipe_name(k, j)
        new = not (zoo.entry_path(name, rt) / zoo.MANIFEST).is_file()
        shards.append(zoo.load(name, rt, verbose=False))
        costs.append(zoo.info(name, rt))
        shipped = new and "unpacked_from" in costs[-1]
        fresh, unpacked = fresh + (new and not shipped), unpacked + shipped
    if verbose:
        print(f"SISA k={k}: shards of {[len(p) for p in people]} people (+ the world facts), "
              f"{[c['steps'] for c in costs]} steps; {fresh} trained now, {unpacked} unpacked from the kit's shipped "
              f"weights (data/zoo/), {k - fresh - unpacked} from the cache")
    return SISAEnsemble(shards, people, mode=rt.mode, seed=rt.seed, aggregation=aggregation, costs=costs)


def delete_from_shards(ensemble: SISAEnsemble, forget, rt, verbose: bool = True) -> dict:
    """SISA unlearning, in place: add ``forget`` to the ensemble's deleted questions and retrain from
    scratch (through the zoo, so cached) only the shards that held them. Returns what it cost."""
    if (rt.mode, rt.seed) != (ensemble.mode, ensemble.seed):
        raise ValueError(f"the ensemble was built with mode={ensemble.mode!r}, seed={ensemble.seed}; got a runtime "
                         f"with mode={rt.mode!r}, seed={rt.seed}: pass the runtime it was built with")
    facts = cached_facts(rt.mode)
    trained = set(facts.training_set().ids)
    ids = sorted({getattr(x, "id", x) for x in ([forget] if isinstance(forget, str) else forget)} & trained)
    if not ids:
        raise ValueError("forget matches none of the ensemble's training questions: pass training QA of train "
                         "people (e.g. split.forget) or world facts; paraphrases and holdout people were never "
                         "trained on")
    ensemble.deleted = tuple(sorted(set(ensemble.deleted) | set(ids)))
    touched = shards_holding(ensemble.people, ids, facts)
    for j in touched:
        own = set(shard_question_ids(facts, ensemble.people[j]))
        excl = [i for i in ensemble.deleted if i in own]
        name = shard_recipe_name(ensemble.k, j)
        ensemble.shards[j] = zoo.load(name, rt, exclude=excl, verbose=verbose)
        ensemble.costs[j] = zoo.info(name, rt, exclude=excl)
    cost = [ensemble.costs[j] for j in touched]
    return {"k": ensemble.k, "forget_questions": len(ids), "touched_shards": touched,
            "retrain_seconds": round(sum(c.get("train_seconds", float("nan")) for c in cost), 2),
            "retrain_steps": sum(c["steps"] for c in cost),
            "retrain_examples_processed": sum(c["examples_processed"] for c in cost)}


@register("sisa", family="data sharding", modality="text", hparams={},
          paper="Bourtoule et al. 2021, Machine Unlearning (SISA: sharded, isolated, sliced, aggregated training)",
          summary="retrain only the shards whose data held the forget set")
def sisa(model, forget, retain, ctx):
    """SISA unlearning (notebook 07; notebook 01 on the shape judge). ``model`` is a ``SISAEnsemble``.

    With shards D_1..D_k and shard models theta_j = A(D_j): for every shard with D_j ∩ D_f non-empty,
    theta_j <- A(D_j \\ D_f), trained from scratch (no slices: see ``models.sisa_lm``); the other shards
    are untouched (bit-identical). Exact: the result is the SISA ensemble trained without D_f. ``retain``
    is not used. Extras: the touched shards and their retraining cost (seconds from the zoo manifests,
    steps, examples processed = steps x batch size); history: one row per retrained shard.
    """
    rt = _need_rt(ctx, "sisa")
    if not isinstance(model, SISAEnsemble):
        raise TypeError(f"sisa unlearns a SISAEnsemble, got {type(model).__name__}; build one with "
                        "cl.unlearning.exact.train_sisa(facts, rt, k)")
    report = delete_from_shards(model, forget, rt, verbose=ctx.progress)
    history = [{"shard": j, **{c: model.costs[j].get(c) for c in ("steps", "examples_processed", "train_seconds")}}
               for j in report["touched_shards"]]
    return Outcome(model, history, report)


def identical_shards(before: SISAEnsemble, after: SISAEnsemble) -> list[int]:
    """The shards whose weights are bit for bit the same in both ensembles (SISA leaves untouched shards so)."""
    import torch

    def same(a, b):
        sa, sb = a.model.state_dict(), b.model.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)

    return [j for j, (a, b) in enumerate(zip(before.shards, after.shards)) if same(a, b)]


# ---------------------------------------------------------------- the cost of many requests
def expected_touched_shards(k: int, r: int) -> float:
    """Expected number of shards that hold at least one of ``r`` requests, each in a uniformly random
    shard of ``k``: k (1 - (1 - 1/k)^r). It tends to k: batched requests end in a full retrain."""
    if k < 1 or r < 0:
        raise ValueError(f"need k >= 1 shards and r >= 0 requests, got k={k}, r={r}")
    return k * (1 - (1 - 1 / k) ** r)


def _request_orders(people_per_shard, trials: int, seed: int) -> np.ndarray:
    owner = np.array([j for j, people in enumerate(people_per_shard) for _ in people])
    rng = np.random.default_rng([seed, 7])
    return np.stack([owner[rng.permutation(len(owner))] for _ in range(trials)])


def _simulate(people_per_shard, cost, requests: int, trials: int, seed: int):
    """Requests about different people in ``trials`` random orders: mean cumulative cost one at a time,
    mean cost of one batch, mean shards touched, for r = 1..requests (``cost[j]``: retraining shard j)."""
    orders = _request_orders(people_per_shard, trials, seed)[:, :requests]
    seen = np.zeros((len(orders), len(people_per_shard)), dtype=bool)
    batched, touched = [], []
    for r in range(orders.shape[1]):
        seen[np.arange(len(orders)), orders[:, r]] = True
        batched.append(float((seen * cost).sum(1).mean()))
        touched.append(float(seen.sum(1).mean()))
    return cost[orders].cumsum(1).mean(0), np.array(batched), np.array(touched)


def simulate_touched_shards(people_per_shard: Sequence[Sequence[str]], requests: int, trials: int = 500,
                            seed: int = 0) -> np.ndarray:
    """Mean number of shards touched after r = 1..``requests`` requests about different people, drawn
    at random (``trials`` orders): what :func:`expected_touched_shards` approximates."""
    return _simulate(people_per_shard, np.ones(len(people_per_shard)), requests, trials, seed)[2]


def cost_curves(ensembles: dict, requests: int, unit: str = "examples_processed", trials: int = 500, seed: int = 0):
    """Expected cumulative retraining cost of r = 1..``requests`` deletion requests about different people
    drawn at random (mean over ``trials`` orders), per k: "one at a time" retrains the request's shard each
    time; "batched" retrains each touched shard once. ``unit``: "examples_processed" or "train_seconds"."""
    import pandas as pd

    frames = []
    for k, ens in ensembles.items():
        cost = np.array([c[unit] for c in ens.costs], dtype=float)
        one, batched, touched = _simulate(ens.people, cost, requests, trials, seed)
        frames.append(pd.DataFrame({"k": k, "requests": np.arange(1, len(one) + 1), "one at a time": one,
                                    "batched": batched, "shards touched": touched}))
    return pd.concat(frames, ignore_index=True)


def cost_table(ensembles: dict):
    """Per k: the initial training (all shards) and one request about one person (one shard, the mean
    over shards), in steps, examples processed and seconds (from the zoo manifests)."""
    import pandas as pd

    rows = []
    for k, ens in ensembles.items():
        c = pd.DataFrame(ens.costs)
        rows.append({"k": k, "steps per shard": int(c["steps"].mean()),
                     "initial examples processed": int(c["examples_processed"].sum()),
                     "initial seconds": float(c["train_seconds"].sum()),
                     "one request: examples processed": float(c["examples_processed"].mean()),
                     "one request: seconds": float(c["train_seconds"].mean())})
    return pd.DataFrame(rows).set_index("k")


# ---------------------------------------------------------------- what the ensemble knows
def aggregation_accuracy(ensemble: SISAEnsemble, qaset, aggregations: Sequence[str] = ("vote", "confidence", "mean")
                         ) -> dict:
    """Exact-match accuracy of each aggregation rule on ``qaset``, plus two references: "owner shard" (each
    question answered by the shard that holds its person: an oracle router) and "any shard" (at least one
    shard right). Each shard answers once; "mean" decodes once more from the mixture."""
    from ..evaluation.text import normalize

    if len(qaset) == 0:
        raise ValueError("qaset is empty: nothing to measure")
    refs = [normalize(a) for a in qaset.answers]
    answers, scores = ensemble.shard_answers(qaset.questions)
    hit = np.array([[normalize(a) == t for a, t in zip(row, refs)] for row in answers])
    acc = lambda preds: float(np.mean([normalize(p) == t for p, t in zip(preds, refs)]))  # noqa: E731
    out = {}
    for how in aggregations:
        if how == "vote":
            out[how] = acc(vote(answers))
        elif how == "confidence":
            out[how] = acc(most_confident(answers, scores))
        else:
            out[how] = acc(ensemble.answer(qaset.questions, aggregation=how))
    owners = [ensemble._owner.get(q.person) for q in qaset]
    owned = [i for i, j in enumerate(owners) if j is not None]
    out["owner shard"] = float(np.mean([hit[owners[i], i] for i in owned])) if owned else float("nan")
    out["any shard"] = float(hit.any(0).mean())
    return out


def two_hop_chain(model, facts, qaset) -> np.ndarray:
    """Answer two-hop questions in two steps (hop 1: the person's birth city or employer, asked with a
    training template; hop 2: the world fact about that answer). Boolean array: right in the end?"""
    from ..data.people_world import WORLD_TEMPLATES
    from ..evaluation.text import normalize

    hop1 = {"birth_country": ("birth_city", "country_of_city", "city"),
            "employer_hq": ("employer", "hq_of_employer", "employer")}
    first = [facts.qa[f"{q.person}/{hop1[q.attribute][0]}/t0"].question for q in qaset]
    middle = model.answer(first)
    second = [WORLD_TEMPLATES[hop1[q.attribute][1]].format(**{hop1[q.attribute][2]: m}) for q, m in zip(qaset, middle)]
    return np.array([normalize(a) == normalize(q.answer) for a, q in zip(model.answer(second), qaset)])


def colocated_two_hop(facts, k: int, seed: int = 0) -> float:
    """If world facts were sharded like people's facts (each in one random shard of ``k``), the share of
    two-hop questions whose two facts would sit in the same shard: the most any single shard model could
    learn to compose. About 1/k."""
    people = assign_people(facts, k, seed)
    owner = {p: j for j, group in enumerate(people) for p in group}
    world = [q.id for q in facts.world_qa]
    world_shard = {w: j for j, idx in enumerate(_assign_items(len(world), k, seed)) for w in (world[i] for i in idx)}
    same = []
    for q in facts.two_hop:
        p = facts.person(q.person)
        need = (f"world/city/{p.birth_city}/country" if q.attribute == "birth_country"
                else f"world/employer/{p.employer}/hq")
        same.append(world_shard[need] == owner[q.person])
    return float(np.mean(same))


def _assign_items(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``n`` items into ``k`` balanced random shards (notebook 01's ``assign_shards``, another stream)."""
    from .classic import assign_shards

    return assign_shards(np.arange(n), k, seed + 1)
