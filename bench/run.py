"""Benchmarks of the foundation (issue: foundation). Prints a table and writes bench/RESULTS.md.

    python bench/run.py                 # everything below
    python bench/run.py lm judge loop   # some of it

- ``lm``, ``judge``: time to train each base model in ``default`` mode (the zoo's recipe, no cache);
- ``loop``: the kit's training loop vs a plain ``transformers.Trainer`` on the same model, data and
  steps, side by side in one run (tokens per second, ratio);
- ``course``: the whole course in ``fast`` mode (every notebook executed, cold cache);
- ``methods``, ``scorecard``, ``slug``, ``t2i``, ``widgets``, ``shipped``, ``reference``: the scripts ``bench/bench_<name>.py`` (issues 3-5, 14).

Results accumulate in ``bench/results.json`` (one entry per benchmark, with the machine it ran on);
``RESULTS.md`` is rendered from it, so later benchmarks add sections without losing these.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("KIT_PROGRESS", "0")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def bench_model(name: str, mode: str = "default") -> dict:
    import course_lib as cl
    from course_lib.models import zoo

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KIT_CACHE_DIR"] = tmp
        rt = cl.setup(mode=mode, verbose=False)
        t = time.perf_counter()
        cl.zoo.load(name, rt, verbose=False)
        seconds = time.perf_counter() - t
        info = zoo.info(name, rt)
    info.pop("loss_curve", None)
    return {"seconds": round(seconds, 1), "mode": mode, "info": info}


def bench_loop(num_steps: int = 200, batch_size: int = 64) -> dict:
    """Our loop vs transformers.Trainer: same init, data, batch size, steps and optimizer settings."""
    import torch
    from transformers import Trainer, TrainingArguments

    import course_lib as cl
    from course_lib.models.people_lm import PRESETS, lm_loss, new_model, qa_batches
    from course_lib.train import TrainConfig, fit

    rt = cl.setup(mode="default", verbose=False)
    facts = cl.data.people.load(rt)
    data = list(facts.training_set())
    preset = PRESETS["default"]
    out = {}
    for which in ("kit loop", "transformers.Trainer"):
        cl.runtime.seed_everything(0)
        tm = new_model(facts, preset)
        collate = qa_batches(tm)
        tokens = sum(int(collate(data[i:i + 256])["attention_mask"].sum()) for i in range(0, len(data), 256))
        per_example = tokens / len(data)
        t = time.perf_counter()
        if which == "kit loop":
            res = fit(tm.model, data, lm_loss, TrainConfig(num_steps=num_steps, batch_size=batch_size,
                      lr=preset.lr, warmup_steps=10, progress=False), collate_fn=collate)
            final = sum(h["loss"] for h in res.history) / len(res.history)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                args = TrainingArguments(output_dir=tmp, max_steps=num_steps, per_device_train_batch_size=batch_size,
                                         learning_rate=preset.lr, warmup_steps=10, lr_scheduler_type="cosine",
                                         max_grad_norm=1.0, weight_decay=0.0, report_to=[], save_strategy="no",
                                         logging_steps=num_steps, disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                                         dataloader_num_workers=0, seed=0)
                tr = Trainer(model=tm.model, args=args, train_dataset=data, data_collator=collate)
                final = tr.train().training_loss  # the mean over the run
        secs = time.perf_counter() - t
        out[which] = {"seconds": round(secs, 2), "tokens_per_s": round(num_steps * batch_size * per_example / secs),
                      "mean_train_loss": round(float(final), 4)}
    out["ratio (kit / Trainer tokens/s)"] = round(out["kit loop"]["tokens_per_s"] / out["transformers.Trainer"]["tokens_per_s"], 3)
    out["steps"], out["batch_size"] = num_steps, batch_size
    return out


def bench_course() -> dict:
    """Execute every notebook in fast mode with a cold cache (what CI does)."""
    import nbformat
    from nbclient import NotebookClient

    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        env_backup = dict(os.environ)
        os.environ.update({"KIT_MODE": "fast", "KIT_CACHE_DIR": tmp})
        try:
            for nb_path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
                nb = nbformat.read(nb_path, as_version=4)
                t = time.perf_counter()
                NotebookClient(nb, timeout=900, kernel_name="python3",
                               resources={"metadata": {"path": str(nb_path.parent)}}).execute()
                times[nb_path.stem] = round(time.perf_counter() - t, 1)
                print(f"  {nb_path.stem}: {times[nb_path.stem]} s", flush=True)
        finally:
            os.environ.clear()
            os.environ.update(env_backup)
    return {"notebooks": times, "total_seconds": round(sum(times.values()), 1)}


def _script(module: str, mode: str = "default"):
    """A benchmark that lives in its own script ``bench/<module>.py`` with ``run(mode)``."""
    def run():
        import importlib

        sys.path.insert(0, str(HERE))
        return importlib.import_module(module).run(mode)
    return run


BENCHES = {"lm": lambda: bench_model("people-lm"), "judge": lambda: bench_model("shape-judge"),
           "loop": bench_loop, "course": bench_course,
           "methods": _script("bench_methods"),       # issue 3: cost of each method to reach the gold model
           "scorecard": _script("bench_scorecard"),   # issue 3: scorecard throughput vs a per-example loop
           "slug": _script("bench_slug"),             # issue 4: SLUG vs iterative GA on CLIP
           "t2i": _script("bench_t2i"),               # issue 4: text-to-image sampling throughput
           "widgets": _script("bench_widgets"),       # issue 5: explorer latency, slider to redrawn figure
           "shipped": _script("bench_shipped"),       # issue 4: shipped t2i weights, ready vs trained
           "reference": _script("bench_reference")}   # issue 14: live training vs the shipped reference


def render(results: dict) -> str:
    lines = ["# Benchmark results", "",
             "Written by `python bench/run.py` (or `make bench`); each section names the machine it ran on.", ""]
    for name, r in results.items():
        lines += [f"## {name}", "", f"- machine: {r['machine']}", f"- when: {r['when']}", ""]
        if isinstance(r["result"], dict) and "markdown" in r["result"]:  # a section that renders itself (claims.py)
            lines += [r["result"]["markdown"], ""]
        else:
            lines += ["```json", json.dumps(r["result"], indent=1), "```", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    wanted = argv or list(BENCHES)
    unknown = [w for w in wanted if w not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; allowed: {', '.join(BENCHES)}")
    store = HERE / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for name in wanted:
        print(f"== {name}", flush=True)
        r = BENCHES[name]()
        print(json.dumps(r, indent=1))
        results[name] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "result": r}
        store.write_text(json.dumps(results, indent=1, sort_keys=True))
        (HERE / "RESULTS.md").write_text(render(results))


if __name__ == "__main__":
    main(sys.argv[1:])
