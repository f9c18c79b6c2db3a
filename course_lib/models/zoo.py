"""The model zoo: train-or-load cache for the kit's base models (notebook 02 explains it).

``cl.zoo.load(name, rt, exclude=None)`` returns a trained model. The cache key is
(name, mode, seed, data hash, config, exclude set): change any of them and the model is trained
anew. ``exclude=`` trains the same recipe without those examples, the exact-unlearning gold standard.

Entries are written with ``save_pretrained`` (safetensors) into a temporary folder and renamed into
place (atomic). ``manifest.json`` records the key and the sha256 of every file; an entry whose files
do not match, or whose key differs, is reported and rebuilt, never silently used.

A model family plugs in by registering a :class:`Recipe` with :func:`register`.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """A cache entry is corrupt or does not match its key."""


class Recipe:
    """How to build one zoo model. Subclasses set ``name`` and ``description`` and implement:

    - ``config(rt) -> dict``: everything that shapes the model (architecture, training), JSON-able;
    - ``data_hash(rt) -> str``: the hash of the data it trains on;
    - ``exclude_ids(exclude, rt) -> list[str]``: stable ids of the training examples to leave out;
      raise ``ValueError`` if ``exclude`` matches none of them;
    - ``train(rt, exclude_ids) -> model``: train from scratch (seeded by the zoo), return the model;
    - ``save(model, path)`` (``save_pretrained``) and ``load(path, rt) -> model``.
    """

    name: str = ""
    description: str = ""
    # Modes that use another mode's model: {"fast": "default"} makes fast mode load (and ship) the default
    # model, so a short fast run stands on a strong model (the shapes models, notebooks 01 and 09-11).
    mode_aliases: dict = {}

    def config(self, rt) -> dict:
        raise NotImplementedError

    def data_hash(self, rt) -> str:
        raise NotImplementedError

    def exclude_ids(self, exclude, rt) -> list:
        raise NotImplementedError

    def train(self, rt, exclude_ids: list | None):
        raise NotImplementedError

    def save(self, model, path: Path) -> None:
        model.save_pretrained(path)

    def load(self, path: Path, rt):
        raise NotImplementedError


_REGISTRY: dict[str, Callable[[], Recipe]] = {}


def register(name: str, factory: Callable[[], Recipe]) -> None:
    """Register a recipe factory under ``name`` (called at import by each model module)."""
    _REGISTRY[name] = factory


def available() -> list[str]:
    """The names ``cl.zoo.load`` knows."""
    _import_models()
    return sorted(_REGISTRY)


def _import_models() -> None:
    # Model modules register their recipes when imported.
    from . import people_lm, classifier  # noqa: F401
    for optional in ("clip", "t2i"):
        try:
            __import__(f"{__package__}.{optional}")
        except ModuleNotFoundError as exc:  # a model family that has not landed yet
            if exc.name != f"{__package__}.{optional}":
                raise


def recipe(name: str) -> Recipe:
    """The :class:`Recipe` registered under ``name``; unknown names are a clear error."""
    _import_models()
    shard = re.fullmatch(r"people-lm-sisa(\d+)-shard(\d+)", name)
    if name not in _REGISTRY and shard and int(shard[2]) < int(shard[1]):  # SISA shards register on first use
        from .sisa_lm import shard_recipe_name
        shard_recipe_name(int(shard[1]), int(shard[2]))
    if name not in _REGISTRY:
        raise ValueError(f"name={name!r} is not in the zoo; allowed values: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def model_runtime(name: str, rt):
    """``rt`` in the mode whose model ``name`` uses in ``rt.mode`` (see ``Recipe.mode_aliases``)."""
    mode = recipe(name).mode_aliases.get(rt.mode, rt.mode)
    if mode == rt.mode:
        return rt
    import dataclasses
    return dataclasses.replace(rt, mode=mode)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(name: str, rt, exclude=None) -> dict:
    """The dict that identifies a cache entry (its sha256 names the entry's folder)."""
    r, rt = recipe(name), model_runtime(name, rt)
    ids = None if exclude is None else sorted(str(i) for i in r.exclude_ids(exclude, rt))
    return {"name": name, "mode": rt.mode, "seed": rt.seed, "data": r.data_hash(rt), "config": r.config(rt),
            "exclude": ids, "format": FORMAT_VERSION}


def _key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def entry_path(name: str, rt, exclude=None) -> Path:
    """The folder of the cache entry for (name, rt, exclude)."""
    rt = model_runtime(name, rt)
    key = cache_key(name, rt, exclude)
    tag = "base" if exclude is None else f"exclude{len(key['exclude'])}"
    return Path(rt.cache_dir) / name / f"{rt.mode}-{tag}-{_key_digest(key)[:16]}"


def verify(path: Path, key: dict) -> None:
    """Raise :class:`CacheError` unless ``path`` holds a complete entry for ``key`` with intact files."""
    mf = path / MANIFEST
    if not mf.is_file():
        raise CacheError(f"{path} has no {MANIFEST} (an interrupted write?)")
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise CacheError(f"{mf} is not valid JSON ({exc})") from None
    if manifest.get("key_sha256") != _key_digest(key):
        raise CacheError(f"{path} was built for another key (mode, data, config or exclude set differ)")
    check_files(path, manifest.get("files", {}))


def check_files(path: Path, files: dict, error=CacheError, source: str = "the manifest") -> None:
    """Raise ``error`` unless every file ``rel -> sha256`` in ``files`` exists under ``path`` with that hash."""
    for rel, digest in files.items():
        f = path / rel
        if not f.is_file():
            raise error(f"{f} is missing")
        if _sha256_file(f) != digest:
            raise error(f"{f} is corrupt: its sha256 does not match {source}")


def write_atomically(path: Path, save: Callable[[Path], None], meta: Callable[[dict, Path], dict],
                     meta_name: str = MANIFEST) -> None:
    """Write the folder ``path`` atomically: ``save(tmp)`` writes the files into a temporary folder beside it,
    ``meta(files, tmp)`` (``files``: relative path -> sha256) returns what is written as JSON to ``meta_name``,
    then the folder is renamed into place. On any error the temporary folder is removed, ``path`` untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        save(tmp)
        files = {str(p.relative_to(tmp)): _sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / meta_name).write_text(json.dumps(meta(files, tmp), indent=1, sort_keys=True, default=str))
        if path.exists():  # move the old entry aside in one step, so no reader sees half of it
            old = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-", dir=path.parent))
            try:
                os.replace(path, old / "entry")
            except FileNotFoundError:  # another process moved it first
                pass
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # another process (a parallel test worker) put the same entry in place first
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (path / meta_name).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_entry(model, r: Recipe, key: dict, path: Path, info: dict) -> None:
    write_atomically(path, lambda tmp: r.save(model, tmp),
                     lambda files, tmp: {"key_sha256": _key_digest(key), "key": key, "files": files, "info": info})


def load(name: str, rt, exclude=None, *, rebuild: bool = False, verbose: bool = True, callbacks=(),
         shipped: bool = True, trained=None):
    """Return the trained model ``name`` for this runtime, training it once and caching it.

    ``exclude``: examples to leave out of training (e.g. ``split.forget``): the retrained gold model.
    ``rebuild=True`` trains anew even if a valid entry exists. ``callbacks`` go to the training loop
    when the model is trained (e.g. ``cl.plots.LiveLoss()``). Known names: :func:`available`.
    ``shipped``: with no valid cache entry, unpack the kit's shipped export of this very recipe if one
    matches the key exactly (``data/zoo/``, :mod:`course_lib.models.shipped`) instead of training;
    ``shipped=False`` trains, and so does a call with ``callbacks`` (the caller wants to watch training).
    ``trained``: a model of this very recipe just trained by :func:`train` (notebook 02): where neither a
    cache entry nor a shipped export exists (``full`` mode), it becomes the entry instead of a second training run.
    """
    r, rt = recipe(name), model_runtime(name, rt)
    key = cache_key(name, rt, exclude)
    path = entry_path(name, rt, exclude)
    what = name if exclude is None else f"{name} without {len(key['exclude'])} excluded examples"
    if path.exists() and not rebuild:
        try:
            verify(path, key)
            model = r.load(path, rt)
            if verbose:
                print(f"zoo: loaded {what} from the cache ({path})")
            return model
        except Exception as exc:  # corrupt, mismatched or unreadable: report and rebuild
            print(f"zoo: the cache entry {path} is unusable: {exc}. Rebuilding it.")
            shutil.rmtree(path, ignore_errors=True)
    if shipped and not rebuild and not callbacks:
        from . import shipped as shipped_weights
        try:
            model = shipped_weights.unpack(name, rt, exclude, verbose=verbose)
        except shipped_weights.ShippedError as exc:  # never use a corrupt export: say so, then train
            print(f"zoo: the shipped weights are unusable: {exc}. Training instead.")
            model = None
        if model is not None:
            return model
    if trained is not None and not rebuild:
        if getattr(trained, "zoo_info", {}).get("recipe_key") != _key_digest(key):
            raise ValueError(f"trained= must be a model that cl.zoo.train({name!r}, rt, exclude) returned for this "
                             "very runtime and exclude set; got one trained for another key")
        model = trained
        if verbose:
            print(f"zoo: no reference for {what} (mode={rt.mode}) is shipped or cached; caching the model you trained")
    else:
        if verbose:
            print(f"zoo: training {what} (mode={rt.mode}); it is cached after this first time")
        model = train(name, rt, exclude, callbacks=callbacks)
    info = model.zoo_info
    _write_entry(model, r, key, path, info)
    if verbose:
        print(f"zoo: trained {what} in {info['train_seconds']:.1f} s; saved to {path}")
    return model


def train(name: str, rt, exclude=None, *, callbacks=()):
    """Train the recipe ``name`` from scratch here (seeded), without reading or writing the cache.

    Notebook 02 trains the people LM live this way and then compares it with the reference that
    :func:`load` returns (the kit's shipped weights, identical on every machine). The model's
    ``zoo_info`` holds its training time and the recipe's metrics."""
    from ..runtime import seed_everything

    r, rt = recipe(name), model_runtime(name, rt)
    ids = None if exclude is None else sorted(str(i) for i in r.exclude_ids(exclude, rt))
    seed_everything(rt.seed)
    start = time.perf_counter()
    model = r.train(rt, ids, callbacks=callbacks) if callbacks else r.train(rt, ids)
    model.zoo_info = {"train_seconds": round(time.perf_counter() - start, 2),
                      "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                      "recipe_key": _key_digest(cache_key(name, rt, exclude)), **getattr(model, "zoo_info", {})}
    return model


def info(name: str, rt, exclude=None) -> dict[str, Any]:
    """The manifest's ``info`` of a cached entry (training time, metrics), or {} if not cached."""
    path = entry_path(name, rt, exclude)
    try:
        return json.loads((path / MANIFEST).read_text()).get("info", {})
    except (OSError, json.JSONDecodeError):
        return {}


def clear(rt, name: str | None = None) -> None:
    """Delete the cache (of one model name, or all) for this runtime's cache folder."""
    target = Path(rt.cache_dir) / name if name else Path(rt.cache_dir)
    if name:
        recipe(name)  # validates the name
    shutil.rmtree(target, ignore_errors=True)
