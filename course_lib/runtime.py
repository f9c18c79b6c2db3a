"""Runtime: run mode, device, seeds, cache folder, plot style and the offline guard.

Introduced in notebook 00 (start_here); every notebook's setup cell calls :func:`setup`.
"""
from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MODES = ("fast", "default", "full")
"""The three run modes: ``fast`` (CI, a first look), ``default`` (a laptop CPU), ``full`` (a GPU)."""

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = REPO_DIR / "data"


def _offline_guard() -> None:
    """Nothing in the kit downloads: tell the Hugging Face libraries so before they are imported."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_offline_guard()


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise a ValueError naming the allowed values."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a run mode; allowed values: {', '.join(MODES)} "
                         "(set it with cl.setup(mode=...) or the KIT_MODE environment variable)")
    return mode


def resolve_device(device: str | None = None):
    """The one device helper: ``None``/"auto" -> CUDA if present, else CPU; "cpu"/"cuda"/"mps" checked."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(device)
    kind = name.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not a device; allowed values: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA GPU is visible to torch; use device='cpu' "
                         "or leave device=None to pick automatically")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} was asked for but Apple's MPS backend is not available; use 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices), and ask torch for deterministic CPU kernels."""
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def cpu_threads() -> int:
    """Threads for torch on the CPU: ``KIT_THREADS`` if set, else one per core.

    Tiny models are compute-bound on a laptop; on a machine whose cores are busy with other work,
    ``KIT_THREADS=1`` is several times faster than threads that wait for each other (README).
    """
    env = os.environ.get("KIT_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"KIT_THREADS={env!r} must be a positive integer (e.g. 1 on a busy machine)")
        return int(env)
    return max(1, os.cpu_count() or 1)


def default_cache_dir() -> Path:
    """``KIT_CACHE_DIR`` if set, else ``~/.cache/unlearning-lab``: where the zoo keeps trained models."""
    env = os.environ.get("KIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "unlearning-lab"


@dataclass
class Runtime:
    """What every notebook passes around: the run mode, seed, device and cache folder.

    ``rt.preset({"fast": a, "default": b, "full": c})`` picks the value for the current mode, so each
    model's presets live in one table (see ``course_lib.models``).
    """

    mode: str
    seed: int
    device: Any  # torch.device
    cache_dir: Path
    data_dir: Path = DATA_DIR
    versions: dict = field(default_factory=dict)

    def preset(self, table: Mapping[str, Any]) -> Any:
        missing = [m for m in MODES if m not in table]
        if missing:
            raise KeyError(f"preset table lacks modes {missing}; it must name all of {MODES}")
        return table[self.mode]

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def summary(self) -> str:
        v = ", ".join(f"{k} {val}" for k, val in self.versions.items())
        return f"Unlearning Lab | mode={self.mode} | device={self.device} | seed={self.seed}\n{v}\ncache: {self.cache_dir}"


def _quiet_libraries() -> None:
    """Keep notebooks readable: library warnings about tiny configs are noise for a learner."""
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
    try:
        import diffusers

        diffusers.utils.logging.set_verbosity_error()
    except ImportError:
        pass


def library_versions() -> dict:
    """Versions of python and the main libraries (printed by :func:`setup`, checked by notebook 00)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "tokenizers", "accelerate", "diffusers", "peft", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def setup(mode: str | None = None, seed: int = 0, device: str | None = None, verbose: bool = True) -> Runtime:
    """Set the kit up for a notebook and return its :class:`Runtime` (notebook 00 explains it).

    ``mode``: "fast" | "default" | "full"; ``None`` reads ``KIT_MODE`` (else "default").
    Sets seeds for python/numpy/torch, the plot style, the offline guard; prints versions, device, mode.
    """
    mode = check_mode(mode if mode is not None else os.environ.get("KIT_MODE", "default"))
    _offline_guard()
    import torch

    dev = resolve_device(device)
    seed_everything(seed)
    _quiet_libraries()
    if dev.type == "cpu":
        torch.set_num_threads(cpu_threads())
    from . import plots

    plots.use_style()
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    rt = Runtime(mode=mode, seed=seed, device=dev, cache_dir=cache, versions=library_versions())
    if verbose:
        print(rt.summary())
    return rt
