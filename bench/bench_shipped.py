"""Shipped weights (notebooks 09-11): seconds until each shipped model is ready from a cold cache (unpacked
from ``data/zoo/``) against the seconds its recipe took to train it (recorded in the export).

    python bench/bench_shipped.py            # default mode
    python bench/bench_shipped.py fast

Prints a table and returns a dict (``run(mode)``); ``bench/run.py shipped`` records it in RESULTS.md.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")


def run(mode: str = "default") -> dict:
    import course_lib as cl
    from course_lib.models import shipped

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KIT_CACHE_DIR"] = tmp
        rt = cl.setup(mode=mode, verbose=False)
        for path in sorted(shipped.SHIPPED_DIR.glob(f"*/{mode}-*/{shipped.META}")):
            meta = shipped.read_meta(path.parent)
            name, exclude = path.parent.parent.name, meta["key"]["exclude"]
            t = time.perf_counter()
            cl.zoo.load(name, rt, exclude=exclude, verbose=False)
            rows[path.parent.name if name != "shapes-clip" else f"clip/{path.parent.name}"] = {
                "ready_seconds": round(time.perf_counter() - t, 2), "bytes": meta["bytes"],
                "recipe_train_seconds": meta["info"].get("train_seconds"), "metrics": meta["metrics"]}
    for k, r in rows.items():
        print(f"{k:48s} ready in {r['ready_seconds']:6.2f} s (training took {r['recipe_train_seconds']} s), "
              f"{r['bytes'] / 2 ** 20:.2f} MB")
    return {"mode": mode, "exports": rows}


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "default")
