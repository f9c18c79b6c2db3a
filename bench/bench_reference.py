"""Live training vs the shipped reference (notebook 02, cl.evaluation.reference.TOLERANCE).

Trains the people LM from scratch under several CPU settings (a subprocess each: the CPU code path is chosen
when torch starts) and reports, per setting, its accuracy on the training questions and the holdout people next
to the shipped reference's, and the largest difference. ``python bench/run.py reference`` (mode: fast;
``KIT_BENCH_MODE=default`` for the default model, about 3 min a setting on 2 cores).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {
    "native-2t": {"KIT_THREADS": "2"},
    "native-1t": {"KIT_THREADS": "1"},
    "avx2-1t": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                "KIT_THREADS": "1"},
    "novec-2t": {"ATEN_CPU_CAPABILITY": "default", "KIT_THREADS": "2"},
}
CHILD = """
import json, course_lib as cl
rt = cl.setup(mode={mode!r}, verbose=False)
facts = cl.data.people.load(rt)
mine = cl.zoo.train("people-lm", rt)
ref = cl.zoo.load("people-lm", rt, verbose=False)
t = cl.evaluation.reference.compare(mine, ref, {{"train": facts.qa, "holdout": facts.holdout}}, 1.0)
print("RESULT" + json.dumps({{"seconds": mine.zoo_info["train_seconds"], **{{f"{{s}} {{c}}": round(float(t.loc[s, c]), 4)
      for s in t.index for c in ("your model", "reference", "difference")}}}}))
"""


def run(mode: str = "fast") -> dict:
    mode = os.environ.get("KIT_BENCH_MODE", mode if mode != "default" else "fast")
    out = {}
    for name, env in SETTINGS.items():
        with tempfile.TemporaryDirectory() as cache:
            proc = subprocess.run([sys.executable, "-c", CHILD.format(mode=mode)], cwd=REPO, capture_output=True,
                                  text=True, env={**os.environ, **env, "KIT_CACHE_DIR": cache, "KIT_PROGRESS": "0"})
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
        if proc.returncode or not line:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-2000:]}")
        out[name] = json.loads(line[0][len("RESULT"):])
        print(f"  {name}: {out[name]}", flush=True)
    worst = max(abs(v) for r in out.values() for k, v in r.items() if k.endswith("difference"))
    return {"mode": mode, "settings": out, "largest_difference": worst}
