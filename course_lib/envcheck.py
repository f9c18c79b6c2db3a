"""The environment check of notebook 00 (start_here): is this machine ready for the course?

``check_environment()`` returns one :class:`Check` per item; ``report()`` prints them, one line each:
``OK   name  detail`` or ``FAIL name  detail -> what to do``. From a shell::

    .venv/bin/python -m course_lib.envcheck      # exit status 1 if anything failed
    .venv/bin/python course_lib/envcheck.py      # the same, when even `import course_lib` fails
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if __package__:
    from .runtime import DATA_DIR, default_cache_dir
else:  # run as a file, so that a broken `import course_lib` can still be diagnosed
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from runtime import DATA_DIR, default_cache_dir

MIN_PYTHON = (3, 10)
MIN_FREE_GB = 1.0  # fast/default models are a few MB each; 1 GB leaves room for many runs
REINSTALL = "run `make install` in the repo (or `pip install -e .`), then restart the kernel"

# distribution name -> (import name, lowest version tested); the same list as pyproject.toml's
# dependencies (tests/test_envcheck.py checks that they agree).
REQUIRED: dict[str, tuple[str, str]] = {
    "torch": ("torch", "2.4"),
    "transformers": ("transformers", "5.23"),
    "tokenizers": ("tokenizers", "0.23"),
    "accelerate": ("accelerate", "1.15"),
    "diffusers": ("diffusers", "0.42"),
    "peft": ("peft", "0.21"),
    "safetensors": ("safetensors", "0.8"),
    "huggingface_hub": ("huggingface_hub", "2.4"),
    "numpy": ("numpy", "2.4"),
    "pandas": ("pandas", "3.1"),
    "scipy": ("scipy", "1.17"),
    "scikit-learn": ("sklearn", "1.9"),
    "matplotlib": ("matplotlib", "3.11"),
    "tqdm": ("tqdm", "4.70"),
    "ipywidgets": ("ipywidgets", "8.1"),
    "jupyterlab": ("jupyterlab", "4.6"),
    "ipykernel": ("ipykernel", "7.4"),
    "rouge-score": ("rouge_score", "0.1.2"),
    "nbclient": ("nbclient", "0.11"),
    "nbformat": ("nbformat", "5.11"),
}

# Used by the Jupyter server or the tests, not inside a notebook's kernel: checked as installed
# (found on the path, with a version) without paying for an import (jupyterlab takes seconds).
SERVER_SIDE = {"jupyterlab", "nbclient", "nbformat"}

DATA_FILES = ("people.json", "shapes_attributes.csv")


@dataclass
class Check:
    """One line of the environment check: ``fix`` says what to do when ``ok`` is False."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"OK   {self.name:16s} {self.detail}"
        return f"FAIL {self.name:16s} {self.detail} -> {self.fix}"


def _version_tuple(version: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0): enough to compare against the lower bounds above."""
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def check_python() -> Check:
    v = sys.version_info
    ok = (v.major, v.minor) >= MIN_PYTHON
    return Check("python", ok, f"{v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 f"use Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} (README: Quickstart)")


def check_package(dist: str, module: str, minimum: str) -> Check:
    try:
        if dist in SERVER_SIDE:
            if importlib.util.find_spec(module) is None:
                raise ImportError(f"No module named {module!r}")
        else:
            importlib.import_module(module)
        version = md.version(dist)
    except Exception as err:  # ImportError, or a broken install that fails on import
        return Check(dist, False, f"cannot import {module} ({type(err).__name__}: {err})"[:160], REINSTALL)
    if _version_tuple(version) < _version_tuple(minimum):
        return Check(dist, False, f"{version} is older than {minimum}", REINSTALL)
    return Check(dist, True, version)


def check_torch() -> Check:
    try:
        import torch

        a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        product = (a @ a).tolist()
        ok = product == [[7.0, 10.0], [15.0, 22.0]]
        detail = "a 2x2 matmul gives the right answer" if ok else f"2x2 matmul gave {product}"
        return Check("torch works", ok, detail, "reinstall torch: make install TORCH_SPEC=torch==2.13.0")
    except Exception as err:
        return Check("torch works", False, f"{type(err).__name__}: {err}"[:160], REINSTALL)


def check_device() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            detail = f"cuda ({torch.cuda.get_device_name(0)}): KIT_MODE=full is within reach"
        else:
            detail = "cpu (no CUDA GPU; fine: fast and default modes are sized for a laptop CPU)"
        return Check("device", True, detail)
    except Exception as err:
        return Check("device", False, f"{type(err).__name__}: {err}"[:160], REINSTALL)


def check_widgets_frontend() -> Check:
    """ipywidgets draws in JupyterLab through the jupyterlab_widgets extension."""
    fix = "pip install 'ipywidgets>=8' jupyterlab_widgets, then restart JupyterLab and reload the page"
    try:
        version = md.version("jupyterlab_widgets")
    except md.PackageNotFoundError:
        return Check("widgets", False, "jupyterlab_widgets is not installed (sliders will not draw)", fix)
    ext = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter-widgets" / "jupyterlab-manager"
    where = "JupyterLab extension in place" if ext.is_dir() else "extension installed elsewhere"
    return Check("widgets", True, f"jupyterlab_widgets {version} ({where})")


def check_cache_dir(cache_dir: Path | None = None) -> Check:
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fix = "set KIT_CACHE_DIR to a folder you can write (README: Troubleshooting)"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache_dir, prefix=".write-test-"):
            pass
    except OSError as err:
        return Check("cache dir", False, f"{cache_dir} is not writable ({err.strerror or err})", fix)
    return Check("cache dir", True, f"{cache_dir} is writable")


def check_data_files(data_dir: Path | None = None) -> list[Check]:
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    checks = []
    for name in DATA_FILES:
        path = data_dir / name
        ok = path.is_file()
        detail = f"{path} ({path.stat().st_size / 1024:.0f} KB)" if ok else f"{path} is missing"
        checks.append(Check(f"data/{name}", ok, detail,
                            "the kit ships it: update your copy of the repo (git pull) or clone it again"))
    return checks


def check_disk(path: Path | None = None, min_free_gb: float = MIN_FREE_GB) -> Check:
    path = Path(path) if path is not None else default_cache_dir()
    while not path.exists() and path != path.parent:  # the nearest folder that exists
        path = path.parent
    free_gb = shutil.disk_usage(path).free / 1e9
    return Check("free disk", free_gb >= min_free_gb, f"{free_gb:.1f} GB free at {path}",
                 f"free at least {min_free_gb:g} GB, or set KIT_CACHE_DIR to a disk with room")


def check_environment() -> list[Check]:
    """Every check, in the order a learner would fix them."""
    checks = [check_python()]
    checks += [check_package(dist, module, low) for dist, (module, low) in REQUIRED.items()]
    checks += [check_torch(), check_device(), check_widgets_frontend(), check_cache_dir()]
    checks += check_data_files()
    checks.append(check_disk())
    return checks


def report(checks: list[Check] | None = None, out: Callable[[str], None] = print) -> list[Check]:
    """Print one line per check and a verdict; return the checks (notebook 00 asserts on them)."""
    checks = check_environment() if checks is None else checks
    for check in checks:
        out(check.line())
    failed = [c for c in checks if not c.ok]
    out(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + (": fix the FAIL lines above, then re-run this cell." if failed else ". Ready for the course."))
    return checks


def main() -> int:
    return 0 if all(c.ok for c in report()) else 1


if __name__ == "__main__":
    sys.exit(main())
