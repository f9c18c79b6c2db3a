"""MUSE's scalability and sustainability experiments on the people data (notebook 04).

Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models", ask two questions
beyond one forget set:

- **Scalability**: does a method still work as the forget set grows? :func:`scalability` runs the same
  method and hyper-parameters on ``forget01``, ``forget05`` and ``forget10`` (1, 5 and 10 % of the
  people) and scores each result (forget and utility measures; forget quality when a retrained model
  per split is given).
- **Sustainability**: deletion requests arrive one after another. :func:`sustainability` splits a pool
  of people (``forget10`` by default) into disjoint requests, unlearns them in sequence (each request
  starts from the previous result) and measures after each request: the forget accuracy of every
  request so far (does the first one stay forgotten?) and the utility on people never requested.

Both call ``cl.unlearn(model, forget, retain, method=..., seed=..., **hparams)``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .scorecard import scorecard

MUSE_SPLITS = ("forget01", "forget05", "forget10")


def _progress(items, desc: str):
    import os

    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False, disable=os.environ.get("KIT_PROGRESS") == "0")


def scalability(model, facts, method: str, hparams: dict | None = None, splits: Sequence[str] = MUSE_SPLITS, *,
                references: dict | None = None, seed: int = 0, rt=None, n_boot: int = 200,
                retain_questions: int | None = 400):
    """One scorecard row per split: ``method`` with ``hparams`` unlearning that split's forget set.

    ``references``: optional ``{split name: retrained model}`` for forget quality / privacy leak.
    Returns a DataFrame indexed by split with ``forget_people`` and ``forget_questions`` columns.
    """
    import pandas as pd

    from ..unlearning import unlearn

    if not splits:
        raise ValueError("splits is empty; e.g. splits=('forget01', 'forget05', 'forget10')")
    rows = []
    for name in _progress(list(splits), "scalability"):
        split = facts.split(name)
        res = unlearn(model, split.forget, split.retain, method=method, rt=rt, seed=seed, progress=False,
                      **(hparams or {}))
        ref = (references or {}).get(name)
        card = scorecard(res, split, reference=ref, name=name, n_boot=n_boot, seed=seed,
                         retain_questions=retain_questions,
                         tags={"method": method, "forget_people": len(split.forget_people)})
        rows.append(card)
    out = pd.concat(rows)
    out.index.name = "split"
    return out


def deletion_requests(facts, n_requests: int = 4, pool: str = "forget10") -> list:
    """``n_requests`` disjoint :class:`~course_lib.data.people_qa.Split` objects, in arrival order.

    The people of split ``pool`` are dealt into consecutive groups (as equal as possible). Request ``i``
    forgets its group; its retain set excludes every group requested up to and including ``i`` (what was
    forgotten is not retained), while later groups are still retained: nobody has asked yet.
    """
    people = list(facts.split(pool).forget_people)
    if not 1 <= n_requests <= len(people):
        raise ValueError(f"n_requests must be in [1, {len(people)}] (the people of {pool!r}), got {n_requests}")
    size, extra = divmod(len(people), n_requests)
    groups, start = [], 0
    for i in range(n_requests):
        stop = start + size + (i < extra)
        groups.append(people[start:stop])
        start = stop
    requests, done = [], []
    for i, group in enumerate(groups):
        split = facts.custom_split(group, name=f"request{i + 1}")
        done += list(split.forget.ids)
        requests.append(dataclasses.replace(split, retain=split.retain.exclude(done)))
    return requests


def sustainability(model, facts, method: str, hparams: dict | None = None, n_requests: int = 4,
                   pool: str = "forget10", *, seed: int = 0, rt=None, n_boot: int = 200,
                   retain_questions: int | None = 400):
    """Unlearn :func:`deletion_requests` one after another; one row per state (0 = before any request).

    Columns: ``forget_acc_request{j}`` for every request j, done or not yet (a request not yet made
    should stay known; one made should stay forgotten); ``forget_acc_done`` (all requests made so far
    together, with its CI; NaN before the first); ``retain_acc``, ``model_utility``,
    ``retain_perplexity`` and ``retain_degenerate`` on the people no request names (with CIs); the
    cumulative unlearning ``seconds``. Request i unlearns with seed ``seed + i - 1``.
    """
    import pandas as pd

    from ..data.people_qa import QASet
    from ..unlearning import unlearn
    from .text import correct

    requests = deletion_requests(facts, n_requests, pool)
    never = requests[-1].retain  # people no request named: the utility is measured on them throughout
    keep = ("retain_acc", "model_utility", "retain_perplexity", "retain_degenerate")
    every = QASet(q for r in requests for q in r.forget)
    rows, current, total = [], model, 0.0
    for i in _progress(range(n_requests + 1), "sustainability"):
        if i > 0:
            req = requests[i - 1]
            res = unlearn(current, req.forget, req.retain, method=method, rt=rt, seed=seed + i - 1,
                          progress=False, **(hparams or {}))
            current, total = res.model, total + res.seconds
        done = requests[:i] or requests[:1]  # state 0: the card's forget columns are not reported
        state = dataclasses.replace(requests[0], name=f"after{i}", retain=never,
                                    forget=QASet(q for r in done for q in r.forget),
                                    unseen_forget=QASet(q for r in done for q in r.unseen_forget),
                                    forget_people=tuple(p for r in done for p in r.forget_people))
        card = scorecard(current, state, name=str(i), n_boot=n_boot, seed=seed, retain_questions=retain_questions,
                         sets=("forget", "retain", "world"))
        hits = dict(zip(every.ids, correct(current, every)))  # one batched generation for every request
        row = {"request": i, "forget_people_done": sum(len(r.forget_people) for r in requests[:i]), "seconds": total}
        row.update({f"forget_acc_request{j}": float(np.mean([hits[q] for q in r.forget.ids]))
                    for j, r in enumerate(requests, start=1)})
        for b in ("", "_lo", "_hi"):
            row[f"forget_acc_done{b}"] = card[f"forget_acc{b}"].iloc[0] if i > 0 else float("nan")
        row.update({f"{c}{b}": card[f"{c}{b}"].iloc[0] for c in keep for b in ("", "_lo", "_hi")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("request")
