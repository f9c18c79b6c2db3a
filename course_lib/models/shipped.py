"""Weights the kit ships, for base models whose recipe takes longer than a few minutes on a 2-core CPU
(notebook 09: the text-to-image model trains in about 7 min in ``default`` mode).

``data/zoo/<name>/<entry>/`` holds an *export* of one zoo entry: the files the recipe's ``save_pretrained``
writes, with the weights in float16 (half the bytes), and ``shipped.json``: the entry's full key (name,
mode, seed, data hash, config, exclude set), the sha256 of every file, and the metrics measured on these
very weights. The folder is named like the cache entry, so a key names exactly one export.

:func:`course_lib.models.zoo.load` unpacks an export into the cache (back to float32, a normal entry) when
no valid cache entry exists and the key is exactly the one the recipe asks for. Change the recipe, the
data, the mode, the seed or the exclude set and no export matches: the model is trained as usual.
``zoo.load(..., shipped=False)`` or ``rebuild=True`` always trains.

The exports are the kit's own recipe's output, nothing downloaded. Regenerate one (it trains the model
into the cache first if needed, then measures and writes it):

    python -m course_lib.models.shipped shapes-t2i --mode default

``tests/test_shipped.py`` checks that every export still matches its recipe's key and its hashes, that
the unpacked model still scores its recorded metrics, and that the recipe, retrained in ``fast`` mode,
reproduces the ``fast`` export's metrics.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..runtime import DATA_DIR
from . import zoo

SHIPPED_DIR = DATA_DIR / "zoo"
META = "shipped.json"
MAX_BYTES = 5 * 2 ** 20  # each export stays under 5 MB (the foundation issue's limit for shipped weights)


class ShippedError(RuntimeError):
    """A shipped export is corrupt (a file's sha256 differs from shipped.json) or incomplete."""


def export_path(name: str, rt, exclude=None) -> Path:
    """Where the export for (name, rt, exclude) lives, whether or not it exists."""
    return SHIPPED_DIR / name / zoo.entry_path(name, rt, exclude).name


def _shown(path: Path) -> str:
    """``path`` relative to the kit's folder when it lies inside (``data/zoo/...``), else as it is."""
    try:
        return str(path.relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def read_meta(path: Path) -> dict:
    try:
        return json.loads((path / META).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShippedError(f"{path / META} is missing or not valid JSON ({exc})") from None


def verify(path: Path, key: dict | None = None) -> dict:
    """The export's metadata, after checking its key (if given) and the sha256 of every file."""
    meta = read_meta(path)
    if key is not None and meta.get("key_sha256") != zoo._key_digest(key):
        raise ShippedError(f"{path} was exported for another key (the recipe, data, mode or seed changed)")
    zoo.check_files(path, meta.get("files", {}), ShippedError, f"{META} (restore it with git)")
    return meta


def find(name: str, rt, exclude=None) -> Path | None:
    """The export matching (name, rt, exclude) exactly, or None."""
    path = export_path(name, rt, exclude)
    return path if (path / META).is_file() else None


def unpack(name: str, rt, exclude=None, verbose: bool = True):
    """Load the matching export as float32, write it into the cache as a normal zoo entry, return the model.

    Raises :class:`ShippedError` if the export is corrupt; returns None if there is none."""
    path = find(name, rt, exclude)
    if path is None:
        return None
    key = zoo.cache_key(name, rt, exclude)
    meta = verify(path, key)
    r = zoo.recipe(name)
    model = r.load(path, rt).to(torch.float32)
    info = {**meta.get("info", {}), "unpacked_from": _shown(path),
            "shipped_metrics": meta.get("metrics", {})}
    zoo._write_entry(model, r, key, zoo.entry_path(name, rt, exclude), info)
    if verbose:
        print(f"zoo: unpacked {name} from the weights the kit ships ({_shown(path)}: "
              f"this recipe's own output, float16; `rebuild=True` trains it here instead)")
    return model


def measure(name: str, model, rt) -> dict:
    """The metrics recorded with an export (and checked again by the tests)."""
    if name == "shapes-t2i":
        from ..evaluation.image import prompt_fidelity
        judge = zoo.load("shape-judge", rt, verbose=False)
        n = {"fast": 60, "default": 200}.get(rt.mode, 200)
        return {**{k: round(float(v), 4) for k, v in prompt_fidelity(model, judge, n=n).items()}, "n": n}
    if name == "shapes-clip":
        from .clip_train import heldout_zero_shot
        from ..data import shapes as shapes_data
        return {k: round(float(v), 4) for k, v in heldout_zero_shot(model, shapes_data.load(rt)).items()}
    raise ValueError(f"name={name!r} has no shipped metrics; allowed values: shapes-t2i, shapes-clip")


def export(name: str, rt, exclude=None) -> Path:
    """Export the cached (trained if needed) entry for (name, rt, exclude) into ``data/zoo/`` in float16."""
    model = zoo.load(name, rt, exclude=exclude, shipped=False)
    key = zoo.cache_key(name, rt, exclude)
    half = model.clone().to(torch.float16)
    metrics = measure(name, half.clone().to(torch.float32), rt)  # measured on the weights that ship
    dest = export_path(name, rt, exclude)
    size = 0

    def meta(files: dict, tmp: Path) -> dict:
        nonlocal size
        size = sum((tmp / f).stat().st_size for f in files)
        if size > MAX_BYTES:
            raise ValueError(f"the {name} export is {size / 2 ** 20:.1f} MB, over the {MAX_BYTES / 2 ** 20:.0f} MB limit")
        return {"key_sha256": zoo._key_digest(key), "key": key, "files": files, "bytes": size, "dtype": "float16",
                "metrics": metrics, "info": zoo.info(name, rt, exclude)}

    zoo.write_atomically(dest, lambda tmp: zoo.recipe(name).save(half, tmp), meta, META)
    print(f"exported {name} ({rt.mode}) to {dest}: {size / 2 ** 20:.2f} MB, metrics {metrics}")
    return dest


def main(argv=None) -> None:
    from ..runtime import setup

    ap = argparse.ArgumentParser(description="Export a trained zoo model into data/zoo/ (float16).")
    ap.add_argument("name", choices=["shapes-clip", "shapes-t2i"])
    ap.add_argument("--mode", default="default", choices=["fast", "default", "full"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    export(args.name, setup(mode=args.mode, seed=args.seed, verbose=False))


if __name__ == "__main__":
    main()
