"""The claim-margin table (issue "Every claim holds on every laptop"): every notebook claim, its measured value,
threshold and margin, under each CPU setting a run was made with.

Each notebook's last cell checks its claims with ``cl.claims.at_least`` / ``at_most``; with ``KIT_CLAIMS_LOG`` set,
every claim is appended to that file (JSON lines). Collect logs, then tabulate:

    KIT_CLAIMS_LOG=/tmp/native.jsonl make test                     # or: KIT_MODE=default bin/run_notebooks
    ATEN_CPU_CAPABILITY=avx2 KIT_THREADS=1 KIT_CLAIMS_LOG=/tmp/avx2-1.jsonl .venv/bin/python -m pytest -m notebook
    python bench/claims.py native=/tmp/native.jsonl avx2-1t=/tmp/avx2-1.jsonl [--print-only]

It prints the table and writes it as the ``claims`` section of bench/RESULTS.md (via bench/run.py's store).
A claim's *worst margin* is its smallest margin over the settings; a claim is portable when that stays
positive with room to spare.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def table(logs: dict[str, list[dict]]) -> str:
    """A markdown table: one row per (mode, notebook, claim), one margin column per setting."""
    settings = list(logs)
    rows: dict[tuple, dict] = {}
    for setting, entries in logs.items():
        for e in entries:
            key = (e["mode"], e["notebook"], e["claim"])
            row = rows.setdefault(key, {"threshold": e["threshold"], "direction": e["direction"], "by": {}})
            row["by"][setting] = e
    lines = ["| mode | notebook | claim | threshold | measured | " + " | ".join(f"margin: {s}" for s in settings)
             + " | worst margin |", "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in settings) + " | --- |"]
    for (mode, nb, claim), row in sorted(rows.items()):
        first = next(iter(row["by"].values()))
        lo, hi = first["measured"]
        measured = f"{lo:.3f}" if lo == hi else f"[{lo:.3f}, {hi:.3f}]"
        margins = [row["by"][s]["margin"] if s in row["by"] else None for s in settings]
        seen = [m for m in margins if m is not None]
        cells = [("—" if m is None else f"{m:+.3f}" + ("" if row["by"][s]["passed"] else " ❌"))
                 for s, m in zip(settings, margins)]
        lines.append(f"| {mode} | {nb[:2]} | {claim.replace('|', '/')} | {row['direction']} {row['threshold']:.3f} | "
                     f"{measured} | " + " | ".join(cells) + f" | {min(seen):+.3f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    print_only = "--print-only" in argv  # CI: print the table, leave bench/ as it is
    argv = [a for a in argv if a != "--print-only"]
    if not argv or any("=" not in a for a in argv):
        raise SystemExit("usage: python bench/claims.py SETTING=LOG.jsonl [SETTING=LOG.jsonl ...]")
    from course_lib.claims import read_log
    from run import machine, render

    logs = {a.split("=", 1)[0]: read_log(a.split("=", 1)[1]) for a in argv}
    md = ("Every claim the notebooks check (`cl.claims`), its threshold, the value measured in the first setting, "
          "and its margin in each setting (`bench/claims.py`). Settings: " + ", ".join(logs) + ".\n\n" + table(logs))
    print(md)
    if print_only:
        return
    store = HERE / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    results["claims"] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "result": {"markdown": md}}
    store.write_text(json.dumps(results, indent=1, sort_keys=True))
    (HERE / "RESULTS.md").write_text(render(results))


if __name__ == "__main__":
    main(sys.argv[1:])
