"""SLUG vs iterative gradient ascent on the same CLIP: time to reach the same forget level (notebook 10).

    python bench/bench_slug.py            # default mode (the cached shapes-clip; trains it once if absent)
    python bench/bench_slug.py fast

Both methods unlearn "circle" from ``shapes-clip`` until the forget images' zero-shot shape accuracy is at
most ``TARGET``. SLUG: two gradients, a layer table, a binary search over the Pareto-front layers, one
step. GA (``clip_ga``, its default hyper-parameters): Adam steps on every weight, the zero-shot accuracy
checked after each step (the same probe SLUG's search uses), stopped as soon as the target is met. Both
times include their evaluations. ``slug_top_layer`` searches only the most important front layer
(``max_layers=1``): at this scale SLUG's time is its sweep over layers, not its two gradients. One run
each; the ratio is GA's seconds over SLUG's (full search). Prints a table
and returns a dict (``run(mode)``); bench/RESULTS.md entries are added by the lead from its output.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")

TARGET = 0.1
CONCEPT = "circle"


def _retain_sample(split, n: int = 512, seed: int = 0):
    import numpy as np

    from course_lib.unlearning.slug import _take

    r = split.retain_set
    return r if len(r) <= n else _take(r, np.random.default_rng([seed, 12]).choice(len(r), n, False))


def run(mode: str = "fast") -> dict:
    import torch

    import course_lib as cl

    rt = cl.setup(mode=mode, verbose=False)
    clip = cl.zoo.load("shapes-clip", rt, verbose=False)
    split = cl.data.shapes.load(rt).split(CONCEPT)
    t = time.perf_counter()
    slug = cl.unlearn(clip, split.forget_set, split.retain_set, method="slug", target_accuracy=TARGET,
                      progress=False)
    slug_seconds = time.perf_counter() - t
    t = time.perf_counter()
    top = cl.unlearn(clip, split.forget_set, split.retain_set, method="slug", target_accuracy=TARGET, max_layers=1,
                     progress=False)
    top_seconds = time.perf_counter() - t
    from course_lib.unlearning.clip_methods import StopAtForgetAccuracy

    stop = StopAtForgetAccuracy(clip.tokenizer, split.forget_set, _retain_sample(split), TARGET)
    t = time.perf_counter()
    ga = cl.unlearn(clip, split.forget_set, split.retain_set, method="clip_ga", num_steps=200, callbacks=[stop],
                    progress=False)
    ga_seconds = time.perf_counter() - t
    test_f, test_r = split.subset("forget_test"), split.subset("retain_test")
    report = {name: cl.unlearning.slug.zero_shot_report(m, test_f, test_r, CONCEPT)
              for name, m in (("base", clip), ("slug", slug.model), ("slug_top_layer", top.model), ("clip_ga", ga.model))}
    return {
        "mode": mode, "target_accuracy": TARGET, "concept": CONCEPT,
        "machine": f"{os.cpu_count()} cores ({platform.machine()}), "
                   f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}, "
                   f"torch {torch.__version__}, KIT_THREADS={os.environ.get('KIT_THREADS', 'unset')}",
        "slug": {"seconds": round(slug_seconds, 2), "layer": slug.extras["layer"], "step": round(slug.extras["step"], 4),
                 "backward_passes": 2, "model_evaluations": slug.extras["model_evaluations"],
                 "gradient_seconds": round(slug.extras["gradient_seconds"], 2)},
        "slug_top_layer": {"seconds": round(top_seconds, 2), "layer": top.extras["layer"], "backward_passes": 2,
                           "model_evaluations": top.extras["model_evaluations"]},
        "clip_ga": {"seconds": round(ga_seconds, 2), "steps_to_target": stop.reached_at,
                    "backward_passes": len(ga.history), "model_evaluations": len(ga.history)},
        "ga_over_slug_seconds": round(ga_seconds / slug_seconds, 2),
        "test_zero_shot": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in report.items()},
    }


def print_table(res: dict) -> None:
    print(f"SLUG vs iterative GA, forget '{res['concept']}' to zero-shot accuracy <= {res['target_accuracy']} "
          f"(mode={res['mode']}; {res['machine']})")
    print(f"{'method':<15}{'seconds':>9}{'backward':>10}{'evals':>7}{'forget acc':>12}{'retain same':>13}"
          f"{'retain other':>14}")
    for name in ("slug", "slug_top_layer", "clip_ga"):
        r, z = res[name], res["test_zero_shot"][name]
        print(f"{name:<15}{r['seconds']:>9.2f}{r['backward_passes']:>10}{r['model_evaluations']:>7}"
              f"{z['forget_accuracy']:>12.3f}{z['retain_same_attribute']:>13.3f}{z['retain_other_attributes']:>14.3f}")
    z = res["test_zero_shot"]["base"]
    print(f"{'base':<15}{'':>9}{'':>10}{'':>7}{z['forget_accuracy']:>12.3f}{z['retain_same_attribute']:>13.3f}"
          f"{z['retain_other_attributes']:>14.3f}")
    print(f"GA seconds / SLUG seconds: {res['ga_over_slug_seconds']}  (SLUG layer {res['slug']['layer']}, "
          f"step {res['slug']['step']}; GA reached the target after {res['clip_ga']['steps_to_target']} steps)")


if __name__ == "__main__":
    import json

    result = run(sys.argv[1] if len(sys.argv) > 1 else "default")
    print_table(result)
    print(json.dumps(result, indent=1))
