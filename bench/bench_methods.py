"""The cost of each text unlearning method to reach the gold model's forget accuracy (issue 3).

For every weight-changing method in ``cl.METHODS`` with a text loss, unlearn ``forget05`` with its
default hyper-parameters, measuring forget / retain accuracy every few steps, and report the first
step (and the seconds it took) at which the forget accuracy is at or below the retrained gold model's
plus a small margin; and the retain accuracy then. ``retrain`` is the exact reference: its cost is
the gold model's training time.

    python bench/bench_methods.py [mode]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")

TUNED = {"lr": 2e-3, "retain_weight": 10.0}  # notebook 03's default-mode budget
METHODS = [("ga", "ga", {}), ("grad_diff", "grad_diff", {}), ("ga_kl", "ga_kl", {}), ("npo", "npo", {}),
           ("simnpo", "simnpo", {}), ("npo (notebook 03 settings)", "npo", {**TUNED, "beta": 0.5}),
           ("grad_diff (notebook 03 settings)", "grad_diff", TUNED)]
MARGIN = 0.02  # "reached": forget accuracy <= gold's + 2 points


def run(mode: str = "default", max_steps: int = 200, every: int = 5) -> dict:
    import course_lib as cl
    from course_lib.models import zoo

    rt = cl.setup(mode=mode, verbose=False)
    facts = cl.data.people.load(rt)
    split = facts.split("forget05")
    base = cl.zoo.load("people-lm", rt, verbose=False)
    gold = cl.zoo.load("people-lm", rt, exclude=split.forget, verbose=False)
    gold_forget = cl.evaluation.answer_accuracy(gold, split.forget)
    measure = cl.evaluation.objectives.tracker(split)
    out = {"mode": mode, "gold_forget_acc": round(gold_forget, 3),
           "retrain_seconds": zoo.info("people-lm", rt, exclude=split.forget).get("train_seconds"), "methods": {}}

    for name, method, hparams in METHODS:
        reached = {}

        def stop_when_reached(state, reached=reached):
            rec = state["record"]
            if "forget_acc" in rec and rec["forget_acc"] <= gold_forget + MARGIN and not reached:
                reached.update(step=state["step"], retain_acc=rec["retain_acc"], forget_acc=rec["forget_acc"])
                return "stop"

        res = cl.unlearn(base, split.forget, split.retain, method=method, num_steps=max_steps, eval_every=every,
                         eval_fn=measure, callbacks=[stop_when_reached], progress=False, **hparams)
        steps = reached.get("step", max_steps)
        # Evaluation is not the method's cost: time the same run again, without it, for that many steps.
        timed = cl.unlearn(base, split.forget, split.retain, method=method, num_steps=steps, progress=False, **hparams)
        row = {"reached": bool(reached), "steps": steps, "seconds": round(timed.seconds, 2),
               "retain_acc_then": round(reached.get("retain_acc", res.history[-1].get("retain_acc", float("nan"))), 3)}
        out["methods"][name] = row
        print(f"  {name:32s} {row}", flush=True)
    return out


if __name__ == "__main__":
    print(run(*(sys.argv[1:2] or ["default"])))
