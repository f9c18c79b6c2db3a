"""Explorer latency (notebook 05): from a control change to a redrawn figure, in the kernel.

    python bench/bench_widgets.py            # default mode (builds / loads the cached sweep first)
    python bench/bench_widgets.py fast

- ``tradeoff``: 100 slider moves of the trade-off explorer answered from the cached sweep (the number of
  steps and the learning rate, alternating, so each move lands on another point). Each time is the
  synchronous path ``slider.value = v`` -> nearest point -> plane and trajectory redrawn -> new PNG in the
  Image widget -> readout HTML. Median and p95; goal p95 <= 200 ms on 2 cores.
- ``slug``: 20 step / layer changes of the SLUG explorer (one weight matrix rewritten, one tower re-encoded,
  zero-shot accuracies, figure). Median and p95; goal <= 2 s.

A browser adds the comm round trip and the image decode on top (tens of milliseconds on loopback); the
browser test (tests/test_widgets_browser.py) checks that the figure does change there.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")


def _summary(times: list[float]) -> dict:
    import numpy as np

    t = np.array(times) * 1000
    return {"moves": len(t), "median_ms": round(float(np.median(t)), 1), "p95_ms": round(float(np.percentile(t, 95)), 1),
            "max_ms": round(float(t.max()), 1)}


def run(mode: str = "default") -> dict:
    import course_lib as cl

    rt = cl.setup(mode=mode, verbose=False)
    facts = cl.data.people.load(rt)
    split = facts.split("forget05")
    lm = cl.zoo.load("people-lm", rt, verbose=False)
    gold = cl.zoo.load("people-lm", rt, exclude=split.forget, verbose=False)
    t = time.perf_counter()
    ex = cl.widgets.tradeoff_explorer(lm, split, reference=gold, rt=rt, progress=False)
    build = time.perf_counter() - t
    ex.select("npo")
    grid = ex.sweep.grids["npo"]
    steps = sorted({p["num_steps"] for p in ex.sweep.points})
    times = []
    for i in range(100):
        w, v = (ex.controls["num_steps"], steps[i % len(steps)]) if i % 2 == 0 else \
            (ex.controls["lr"], grid["lr"][(i // 2) % len(grid["lr"])])
        before = ex.redraws
        start = time.perf_counter()
        w.value = v
        times.append(time.perf_counter() - start)
        assert ex.redraws == before + 1 or w.value == v, "the move did not redraw"
    assert not ex.errors, ex.errors
    out = {"mode": mode, "sweep_points": len(ex.sweep.points), "sweep_from_cache": ex.sweep.from_cache,
           "explorer_build_seconds": round(build, 2), "sweep_compute_seconds": round(ex.sweep.seconds, 1),
           "tradeoff": _summary(times)}

    shapes = cl.data.shapes.load(rt)
    clip = cl.zoo.load("shapes-clip", rt, verbose=False)
    t = time.perf_counter()
    view = cl.widgets.slug_explorer(clip, shapes.split("circle"))
    out["slug_build_seconds"] = round(time.perf_counter() - t, 2)
    layers = [v for _, v in view.controls["layer"].options]
    times = []
    for i in range(20):
        start = time.perf_counter()
        if i % 4 == 3:
            view.controls["layer"].value = layers[(i // 4) % min(4, len(layers))]
        else:
            view.controls["step"].value = [0.1, 0.3, 0.6][i % 3]
        times.append(time.perf_counter() - start)
    assert not view.errors, view.errors
    out["slug"] = _summary(times)
    print(f"trade-off explorer ({mode}): median {out['tradeoff']['median_ms']} ms, p95 {out['tradeoff']['p95_ms']} ms "
          f"over 100 moves; SLUG explorer: median {out['slug']['median_ms']} ms, p95 {out['slug']['p95_ms']} ms")
    return out


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else "default"))
