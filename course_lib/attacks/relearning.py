"""The relearning attack (notebook 08): fine-tune a few steps on *part* of the forget set and watch the
*rest* of it come back.

Hu et al. 2024 ("Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks") show that
unlearned LLMs relearn facts they were never shown again after a little fine-tuning on a small, related
part of the forgotten data; the limitations survey (Zhou et al. 2024, "On the Limitations and Prospects
of Machine Unlearning for Generative AI") lists relearning as the first sign that unlearning hid the
knowledge instead of removing it. Here the forget set is cut by *fact* (person, attribute): a seeded
``relearn_fraction`` of the facts, with all their questions, is the relearning set; the other facts are
held back and only measured. Facts of one person are drawn independently, so a model that learns the
relearning facts cannot *infer* the held-back ones. A model that never knew them (the retrained gold
model, the control) stays near chance; a model whose unlearning only put a lid on them gets them back.

    res = relearn(npo_model, split, num_steps=20)     # res.before / res.after: held-back forget accuracy
    res.details                                       # the accuracy every ``eval_every`` steps
"""
from __future__ import annotations

import hashlib
import time

import pandas as pd

from ..data.people_qa import QASet
from .result import AttackResult, accuracy, need_items


def split_by_fact(forget, relearn_fraction: float = 0.5, seed: int = 0) -> tuple[QASet, QASet]:
    """(relearning set, held-back set): a seeded ``relearn_fraction`` of the facts (person, attribute) of
    ``forget``, every question of a fact on the same side. At least one fact on each side."""
    need_items(forget, "forget", "pass split.forget")
    if not 0.0 < relearn_fraction < 1.0:
        raise ValueError(f"relearn_fraction={relearn_fraction!r}; it must be in (0, 1): the share of forget "
                         "facts fine-tuned on (the rest is held back and measured)")
    facts = sorted({(q.person, q.attribute) for q in forget},
                   key=lambda f: hashlib.sha256(f"relearn/{seed}/{f[0]}/{f[1]}".encode()).hexdigest())
    if len(facts) < 2:
        raise ValueError(f"forget holds {len(facts)} fact(s): relearning needs at least two facts "
                         "(one to relearn, one to hold back)")
    k = min(len(facts) - 1, max(1, round(relearn_fraction * len(facts))))
    chosen = set(facts[:k])
    return (QASet(q for q in forget if (q.person, q.attribute) in chosen),
            QASet(q for q in forget if (q.person, q.attribute) not in chosen))


def relearn(model, split=None, *, relearn_set=None, eval_set=None, relearn_fraction: float = 0.5,
            num_steps: int = 30, lr: float = 1e-3, batch_size: int = 16, eval_every: int = 5, seed: int = 0,
            progress: bool = False) -> AttackResult:
    """Relearning attack (Hu et al. 2024), notebook 08: fine-tune a copy of ``model`` (all weights,
    Adam, next-token loss on the answers, constant ``lr``) for ``num_steps`` steps on ``relearn_set``
    and measure greedy accuracy on ``eval_set`` before and after.

    By default both come from ``split.forget`` (:func:`split_by_fact`): ``relearn_fraction`` of the
    facts to fine-tune on, the rest to measure. Pass ``relearn_set`` (e.g. *related but different*
    facts) and ``eval_set`` to choose them yourself; they must not share questions. ``model`` is never
    changed; a suppression wrapper keeps its wrapper (its weights are fine-tuned underneath).
    ``details``: step, accuracy on the held-back and on the relearning set, every ``eval_every`` steps.
    ``extras["model"]``: the relearned copy.
    """
    from ..unlearning import text_loop
    from ..unlearning.registry import Context
    from ..unlearning.suppression import Suppressed

    if relearn_set is None or eval_set is None:
        if split is None:
            raise ValueError("split is None: pass a split (its forget set is cut into a relearning part and "
                             "a held-back part), or both relearn_set= and eval_set=")
        auto_relearn, auto_eval = split_by_fact(split.forget, relearn_fraction, seed)
        relearn_set = auto_relearn if relearn_set is None else relearn_set
        eval_set = auto_eval if eval_set is None else eval_set
    need_items(relearn_set, "relearn_set", "pass the questions to fine-tune on")
    need_items(eval_set, "eval_set", "pass the held-back questions to measure")
    shared = set(relearn_set.ids) & set(eval_set.ids)
    if shared:
        raise ValueError(f"relearn_set and eval_set share {len(shared)} questions (e.g. {sorted(shared)[:2]}): "
                         "the attack must be measured on questions it did not fine-tune on")
    for name, value in (("num_steps", num_steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; it must be a whole number >= 1")
    if eval_every < 0:
        raise ValueError(f"eval_every={eval_every!r}; it must be >= 0 (0: measure only before and after)")

    start = time.perf_counter()
    twin = model.clone()
    # The attacker fine-tunes weights, not prompts: train under a suppression wrapper, without its context.
    trainee = twin.base if isinstance(twin, Suppressed) else twin
    for p in twin.model.parameters():  # an unlearning method may have frozen some (RMU, LoRA)
        p.requires_grad_(True)

    def measure(_trained=None) -> dict:  # what the attacker queries: the copy, wrapper included
        return {"held_back_acc": accuracy(twin, eval_set), "relearn_acc": accuracy(twin, relearn_set)}

    def loss(m, batch):
        value = text_loop.nll(m, batch["forget"])
        return {"loss": value, "relearn_loss": value}

    # text_loop.run measures at step 0 and every eval_every steps; with eval_every=0, only here and at the end.
    ctx = Context(base=model, seed=seed, progress=progress, eval_every=eval_every, eval_fn=measure if eval_every else None)
    first = [] if eval_every else [{"step": 0, **measure()}]
    history = first + text_loop.run(trainee, relearn_set, None, ctx, loss, num_steps=num_steps, lr=lr,
                                    batch_size=min(batch_size, len(relearn_set)), desc="attack: relearn")
    twin.model.eval()
    records = [h for h in history if "held_back_acc" in h]
    if records[-1]["step"] != num_steps:
        records.append({"step": num_steps, **measure()})
    details = pd.DataFrame([{k: h[k] for k in ("step", "held_back_acc", "relearn_acc")} for h in records])
    return AttackResult("relearn", "held-back forget accuracy after relearning on the other facts",
                        before=float(details["held_back_acc"].iloc[0]), after=float(details["held_back_acc"].iloc[-1]),
                        n=len(eval_set), seconds=time.perf_counter() - start, details=details,
                        extras={"model": twin, "relearn_set": relearn_set, "eval_set": eval_set,
                                "losses": [h["relearn_loss"] for h in history if "relearn_loss" in h]})
