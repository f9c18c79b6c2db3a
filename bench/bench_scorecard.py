"""The scorecard's throughput vs a per-example loop that computes the same numbers (notebook 04).

``cl.evaluation.scorecard`` runs each model once per set: one batched greedy generation and one
batched teacher-forced forward per kind of answer, then derives every measure from the cached
log-probabilities. The loop below is what one writes first: for every question, generate its answer,
then score the true answer, the paraphrase and each perturbed answer with separate calls, and compute
each measure with ``evaluation.stats`` on that one example. Both score the base people LM on the same
questions of ``forget05``; the bench checks the point estimates agree and reports questions per second
(the scorecard's figure includes its 1000 bootstrap resamples; the loop computes no interval at all).

    python bench/bench_scorecard.py [fast|default]
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")

COMPARED = ["forget_acc", "forget_rouge", "forget_prob", "forget_truth_ratio", "forget_truth_ratio_verbatim",
            "forget_em", "forget_es", "unseen_forget_acc", "retain_acc", "retain_prob", "retain_truth_ratio",
            "world_prob", "world_truth_ratio", "holdout_acc", "mia_auc_loss", "mia_auc_zlib", "mia_auc_min_k",
            "mia_auc_min_k_pp", "retain_perplexity", "model_utility"]


def per_example(model, sets: dict, k: float = 0.2) -> dict:
    """The scorecard's point estimates, one question and one model call at a time."""
    from course_lib.data.people import paraphrase_answer
    from course_lib.evaluation import stats
    from course_lib.evaluation.extraction import exact_memorization, extraction_strength
    from course_lib.evaluation.mia import min_k_plus_plus, token_stats
    from course_lib.evaluation.text import normalize

    per = {}
    for name, qs in sets.items():
        rows = []
        for q in qs:
            pred = model.answer([q.question])[0]
            r = {"correct": float(normalize(pred) == normalize(q.answer)),
                 "rouge": stats.rouge_l_recall(pred, q.answer)}
            if name != "unseen_forget":
                ts = token_stats(model, [q.question], [q.answer], with_eos=True, full=True)
                lp, hit, mu, sd = ts.logp[0], ts.hit[0], ts.mu[0], ts.sigma[0]
                r.update(prob=stats.normalized_probability(lp[:-1]), em=exact_memorization(hit[:-1]),
                         es=extraction_strength(hit[:-1]), nll=-lp.sum(), ntok=lp.size, loss=lp.mean(),
                         zlib=stats.zlib_ratio(-lp.mean(), q.answer), min_k=stats.min_k_percent(lp, k),
                         min_k_pp=min_k_plus_plus(lp, mu, sd, k))
                one = lambda a: model.answer_logprobs([q.question], [a])[0]  # noqa: E731
                if name in ("forget", "retain"):
                    para = one(q.paraphrased_answer)
                    pert = [one(paraphrase_answer(q.attribute, p)) for p in q.perturbed_answers]
                    r["R"] = stats.truth_ratio(pert, para)
                if name in ("forget", "world"):
                    raw = [one(p) for p in q.perturbed_answers]
                    r["Rv"] = stats.truth_ratio(raw, lp[:-1])
                    r["mc"] = r["prob"] / (r["prob"] + sum(stats.normalized_probability(x) for x in raw))
            rows.append(r)
        per[name] = {key: np.array([r[key] for r in rows]) for key in rows[0]}
    f, h, rt_, w = per["forget"], per["holdout"], per["retain"], per["world"]
    out = {"forget_acc": f["correct"].mean(), "forget_rouge": f["rouge"].mean(), "forget_prob": f["prob"].mean(),
           "forget_truth_ratio": np.minimum(f["R"], 1 / f["R"]).mean(),
           "forget_truth_ratio_verbatim": np.minimum(f["Rv"], 1 / f["Rv"]).mean(),
           "forget_em": f["em"].mean(), "forget_es": f["es"].mean(),
           "unseen_forget_acc": per["unseen_forget"]["correct"].mean(),
           "retain_acc": rt_["correct"].mean(), "retain_prob": rt_["prob"].mean(),
           "retain_truth_ratio": np.maximum(0, 1 - rt_["R"]).mean(), "world_prob": w["mc"].mean(),
           "world_truth_ratio": np.maximum(0, 1 - w["Rv"]).mean(), "holdout_acc": h["correct"].mean(),
           "retain_perplexity": float(np.exp(rt_["nll"].sum() / rt_["ntok"].sum()))}
    for s in ("loss", "zlib", "min_k", "min_k_pp"):
        out[f"mia_auc_{s}"] = stats.mia_auc(f[s], h[s])
    parts = [out["retain_prob"], rt_["rouge"].mean(), out["retain_truth_ratio"], out["world_prob"], w["rouge"].mean(),
             out["world_truth_ratio"]]
    out["model_utility"] = 0.0 if min(parts) <= 0 else len(parts) / sum(1 / p for p in parts)
    return out


def run(mode: str = "fast", retain_questions: int = 400, n_boot: int = 1000) -> dict:
    import course_lib as cl

    sc = importlib.import_module("course_lib.evaluation.scorecard")
    rt = cl.setup(mode=mode, verbose=False)
    facts = cl.data.people.load(rt)
    split = facts.split("forget05")
    base = cl.zoo.load("people-lm", rt, verbose=False)
    sets = sc._sets(split, retain_questions)
    n_questions = sum(len(v) for v in sets.values())
    cl.evaluation.stats.rouge_l_recall("warm", "up")  # import rouge-score before timing
    t = time.perf_counter()
    card = cl.evaluation.scorecard(base, split, n_boot=n_boot, retain_questions=retain_questions).iloc[0]
    batched = time.perf_counter() - t
    t = time.perf_counter()
    loop = per_example(base, sets)
    looped = time.perf_counter() - t
    diffs = {c: abs(float(card[c]) - float(loop[c])) for c in COMPARED}
    return {"mode": mode, "questions": n_questions, "sets": {k: len(v) for k, v in sets.items()},
            "scorecard_seconds": round(batched, 2), "loop_seconds": round(looped, 2),
            "scorecard_questions_per_s": round(n_questions / batched, 1),
            "loop_questions_per_s": round(n_questions / looped, 1), "speedup": round(looped / batched, 1),
            "n_boot": n_boot, "max_abs_difference": float(max(diffs.values())),
            "largest_difference_in": max(diffs, key=diffs.get), "threads": __import__("torch").get_num_threads()}


def table(r: dict) -> str:
    lines = [f"scorecard vs per-example loop ({r['mode']} mode, {r['questions']} questions, "
             f"torch threads {r['threads']})", "",
             "| way | seconds | questions / s |", "| --- | ---: | ---: |",
             f"| scorecard (batched, {r['n_boot']} bootstrap resamples) | {r['scorecard_seconds']} | "
             f"{r['scorecard_questions_per_s']} |",
             f"| per-example loop (no intervals) | {r['loop_seconds']} | {r['loop_questions_per_s']} |", "",
             f"speed-up {r['speedup']}x; largest difference between the two: {r['max_abs_difference']:.2e} "
             f"({r['largest_difference_in']})"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(*(sys.argv[1:2] or ["fast"]))))
