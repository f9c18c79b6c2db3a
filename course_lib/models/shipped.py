"""Weights the kit ships, for base models whose recipe takes longer than a few minutes on a 2-core CPU
(notebook 09: the text-to-image model trains in about 7 min in ``default`` mode) and for every model the
notebooks stand on (the people LM and its gold models, the shape judge): with the weights shipped, every
learner on every CPU starts from the same weights, so a claim does not move with the float summation
order of one machine's training run (the portable-claims issue).

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
    python -m course_lib.models.shipped people-lm --mode fast --exclude forget05
    python -m course_lib.models.shipped all --mode fast          # every entry of EXPORTS

``tests/test_shipped.py`` checks that every export still matches its recipe's key and its hashes, that
the unpacked model still scores its recorded metrics, and that the recipe, retrained in ``fast`` mode,
reproduces the ``fast`` export's metrics.
"""
from __future__ import annotations

import argparse
import copy
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
    path = find(name, rt, exclude)  # the zoo's keys and paths follow the recipe's mode_aliases
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


# Every export the kit ships, per mode: (zoo name, what it excludes, seed offset). An exclusion names how the
# notebooks build it: "forget05" is ``facts.split("forget05").forget`` (notebooks 02-13 load its gold model),
# "forget05-phones" the phone numbers of those people (notebook 11), "circle" and "purple triangle" the shapes
# concepts of notebooks 01 and 11. The seed offset is added to the runtime's seed (notebook 01 compares two
# retrained judges, seeds 0 and 100). tests/test_shipped.py checks that each one exists and matches its recipe.
EXPORTS: tuple[tuple[str, str | None, int], ...] = (
    ("shape-judge", None, 0), ("shape-judge", "circle", 0), ("shape-judge", "circle", 100),
    ("shapes-clip", None, 0), ("shapes-t2i", None, 0), ("shapes-t2i", "purple triangle", 0),
    ("people-lm", None, 0), ("people-lm", "forget05", 0), ("people-lm", "forget05-phones", 0),
    ("people-lm-small", None, 0))
SHIPPED_MODES = ("fast", "default")
# Notebook 07's SISA ensembles: every shard of every k it trains (k = 1 is the base model's own entry, above).
# Its one-request retrains stay live: retraining one shard in front of the learner is the lesson.
SISA_KS = {"default": (2, 4, 8)}  # fast mode uses default's (the shards follow people-lm's mode_aliases)


def exports(mode: str) -> tuple[tuple[str, str | None, int], ...]:
    """Every export the kit ships for ``mode``, as (name, exclusion, seed offset): :data:`EXPORTS` and the SISA
    shards of :data:`SISA_KS`.

    A recipe that uses another mode's model in ``mode`` (``Recipe.mode_aliases``: the shapes models in fast
    mode use default's) ships nothing of its own for ``mode``."""
    from .sisa_lm import shard_recipe_name
    own = tuple(e for e in EXPORTS if zoo.recipe(e[0]).mode_aliases.get(mode, mode) == mode)
    return own + tuple((shard_recipe_name(k, j), None, 0) for k in SISA_KS.get(mode, ()) for j in range(k))


def exclusion(name: str, what: str | None, rt):
    """The ``exclude=`` argument for one entry of :data:`EXPORTS` (None: the base model)."""
    if what is None:
        return None
    if name == "people-lm":
        from ..data import people
        facts = people.load(rt)
        split_name, _, attribute = what.partition("-")
        split = facts.split(split_name)
        if not attribute:
            return split.forget
        return facts.custom_split(split.forget_people, attributes=attribute.rstrip("s"),
                                  name=f"{split_name}-{attribute}").forget
    from ..data import shapes as shapes_data
    return shapes_data.load(rt).split(what).forget


def measure(name: str, model, rt, exclude=None) -> dict:
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
    if name == "shape-judge":
        from .classifier import heldout_accuracy
        from ..data import shapes as shapes_data
        return heldout_accuracy(model, shapes_data.load(rt))
    if name.startswith("people-lm"):  # a SISA shard is scored on its own people
        from ..data import people
        from ..evaluation.text import answer_accuracy
        r = zoo.recipe(name)
        facts = r.facts(rt)  # the recipe's own people data (people-lm-small: the small data)
        ids = set(r.exclude_ids(exclude, rt)) if exclude is not None else set()
        shard = name.startswith("people-lm-sisa")
        trained = facts.qa.filter(person=list(r.people(rt))) if shard else facts.qa
        out = {"own_accuracy" if shard else "train_accuracy": answer_accuracy(model, trained.exclude(ids)),
               "holdout_accuracy": answer_accuracy(model, facts.holdout)}
        if ids:
            out["excluded_accuracy"] = answer_accuracy(model, people.QASet(q for q in facts.qa if q.id in ids))
        return {k: round(float(v), 4) for k, v in out.items()}
    raise ValueError(f"name={name!r} has no shipped metrics; allowed values: people-lm, people-lm-small, people-lm-sisa<k>-shard<j>, "
                     "shape-judge, shapes-clip, shapes-t2i")


def _copy(model):
    return model.clone() if hasattr(model, "clone") else copy.deepcopy(model)


def export(name: str, rt, exclude=None) -> Path:
    """Export the cached (trained if needed) entry for (name, rt, exclude) into ``data/zoo/`` in float16."""
    rt = zoo.model_runtime(name, rt)
    model = zoo.load(name, rt, exclude=exclude, shipped=False)
    key = zoo.cache_key(name, rt, exclude)
    half = _copy(model).to(torch.float16)
    metrics = measure(name, _copy(half).to(torch.float32), rt, exclude)  # measured on the weights that ship
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


def export_all(modes=SHIPPED_MODES, seed: int = 0, force: bool = False) -> list[Path]:
    """Export every entry of :data:`EXPORTS` for ``modes`` (training what the cache lacks).

    An export that exists and matches its key is kept (the notebooks' thresholds were measured on it);
    ``force=True`` retrains and replaces it."""
    from ..runtime import setup

    paths = []
    for mode in modes:
        for name, what, offset in exports(mode):
            rt = setup(mode=mode, seed=seed + offset, verbose=False)
            exclude = exclusion(name, what, rt)
            found = find(name, rt, exclude)
            if found is not None and not force:
                verify(found, zoo.cache_key(name, rt, exclude))
                print(f"kept {_shown(found)} (it matches its recipe; --force replaces it)")
                paths.append(found)
                continue
            paths.append(export(name, rt, exclude))
    return paths


def main(argv=None) -> None:
    from ..runtime import setup

    names = sorted({n for mode in SHIPPED_MODES for n, _, _ in exports(mode)})
    ap = argparse.ArgumentParser(description="Export a trained zoo model into data/zoo/ (float16).")
    ap.add_argument("name", choices=names + ["all"], help="a zoo name, or 'all' for every entry of EXPORTS")
    ap.add_argument("--mode", default="default", choices=["fast", "default", "full"])
    ap.add_argument("--exclude", default=None,
                    help="what the model is trained without, as in EXPORTS (e.g. forget05, forget05-phones, circle)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="with 'all': replace exports that already match")
    args = ap.parse_args(argv)
    if args.name == "all":
        export_all((args.mode,), args.seed, args.force)
        return
    rt = setup(mode=args.mode, seed=args.seed, verbose=False)
    export(args.name, rt, exclusion(args.name, args.exclude, rt))


if __name__ == "__main__":
    main()
