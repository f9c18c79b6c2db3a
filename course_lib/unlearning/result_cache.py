"""A disk cache of unlearned text models: ``cl.unlearn(..., cache=True, rt=rt)`` (notebooks 08, 11, 12, 13).

Notebooks 08 and 13 attack and score the same unlearned models (:mod:`course_lib.unlearning.suite`), and 11 and
12 unlearn with the same NPO: trained once, the weights are kept in ``KIT_CACHE_DIR/unlearned/`` and the next
notebook loads them. An entry is keyed by everything that decides the result on one machine: the base model's
weights (their sha256), the method and every hyper-parameter, the seed, the forget and retain ids, and the
source of the unlearning code (the ``unlearning`` package, the training loop, the LM wrapper), so that a change
to any of them trains anew. Training is seeded and bit-identical on one CPU, so a cached result is the result a
rerun would give on that machine. Entries are written atomically (safetensors, sha256-checked, like the model
zoo's); a corrupt or mismatched entry is reported and trained again, never used.

Only results that can be stored faithfully are cached: a plain text model from a plain one (the trained
methods: GA, GradDiff, NPO, RMU, merged LoRA, ...), with no ``eval_fn`` or ``callbacks`` (their output is part
of the run), and extras that are numbers, strings, lists or tensors. Anything else runs as usual.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from ..models import zoo

FOLDER = "unlearned"
META = "result.json"
_CODE = ("unlearning/*.py", "train.py", "models/lm.py", "models/wrapper.py")


def _code_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pattern in _CODE:
        for f in sorted(root.glob(pattern)):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def weights_digest(model) -> str:
    """sha256 of a model's parameters and buffers (names, dtypes, shapes and bytes), in state-dict order."""
    h = hashlib.sha256()
    for name, t in model.model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _sorted_ids(items) -> list[str] | None:
    from .registry import _ids  # the ids check_sets compares

    ids = _ids(items)
    return None if ids is None else sorted(str(i) for i in ids)


def cache_key(model, forget, retain, method: str, hparams: dict, seed: int) -> dict | None:
    """The dict that names a cached result, or None where the request cannot be cached: a base model that is not
    a plain :class:`TextModel` (a wrapper stores more than weights), or sets without example ids."""
    from ..models.lm import TextModel

    if type(model) is not TextModel:
        return None
    f_ids, r_ids = _sorted_ids(forget), (_sorted_ids(retain) if retain is not None else [])
    if f_ids is None or r_ids is None:
        return None
    return {"method": method, "hparams": {k: hparams[k] for k in sorted(hparams)}, "seed": int(seed),
            "base_weights": weights_digest(model),
            "forget": hashlib.sha256("\n".join(f_ids).encode()).hexdigest(),
            "retain": hashlib.sha256("\n".join(r_ids).encode()).hexdigest(),
            "code": _code_digest(), "torch": torch.__version__}


def entry_path(rt, key: dict) -> Path:
    return Path(rt.cache_dir) / FOLDER / f"{key['method']}-{zoo._key_digest(key)[:16]}"


def _split_extras(extras: dict) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """(JSON-able extras, tensors) or None if an extra is neither."""
    plain, tensors = {}, {}
    for k, v in extras.items():
        if isinstance(v, torch.Tensor):
            tensors[k] = v.detach().cpu().contiguous()
            continue
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            return None
        plain[k] = v
    return plain, tensors


def load(rt, key: dict):
    """The cached :class:`UnlearnResult` for ``key``, or None (none, or unusable: then it is removed)."""
    from safetensors.torch import load_file

    from .registry import UnlearnResult

    path = entry_path(rt, key)
    if not (path / META).is_file():
        return None
    try:
        meta = json.loads((path / META).read_text())
        if meta.get("key_sha256") != zoo._key_digest(key):
            raise zoo.CacheError("it was written for another request")
        zoo.check_files(path, meta["files"], zoo.CacheError, META)
        from ..models.lm import TextModel
        model = TextModel.from_pretrained(path / "model", name=meta["name"])
        extras = dict(meta["extras"])
        if (path / "extras.safetensors").is_file():
            extras.update(load_file(path / "extras.safetensors"))
    except Exception as exc:  # noqa: BLE001 - corrupt, mismatched or unreadable: say so, train again
        print(f"unlearn: the cached result {path} is unusable ({exc}); training again")
        shutil.rmtree(path, ignore_errors=True)
        return None
    result = UnlearnResult(model, key["method"], dict(meta["hparams"]), meta["history"], meta["seconds"], extras)
    result.from_cache = True
    print(f"unlearn: {key['method']} loaded from the cache (trained in {meta['seconds']:.1f} s by an earlier run; "
          f"{path.name})")
    return result


def save(rt, key: dict, result) -> bool:
    """Write ``result`` under ``key`` (atomically); False where it cannot be stored faithfully."""
    from safetensors.torch import save_file

    parts = _split_extras(result.extras)
    from ..models.lm import TextModel

    if parts is None or type(result.model) is not TextModel:  # a wrapper (filter, prompt): not only weights
        return False
    plain, tensors = parts
    try:
        json.dumps(result.history)
    except (TypeError, ValueError):
        return False

    def write(tmp: Path) -> None:
        result.model.save_pretrained(tmp / "model")
        if tensors:
            save_file(tensors, tmp / "extras.safetensors")

    def meta(files: dict, tmp: Path) -> dict:
        return {"key_sha256": zoo._key_digest(key), "key": key, "files": files, "name": result.model.name,
                "hparams": result.hparams, "history": result.history, "seconds": result.seconds, "extras": plain}

    zoo.write_atomically(entry_path(rt, key), write, meta, META)
    return True
