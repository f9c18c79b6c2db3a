"""Test-session settings: fast mode, a cache folder of its own unless the caller gave one.

`make test` passes KIT_CACHE_DIR=.cache/ so that models trained by one run (or one notebook) are
reused by the next; a bare `pytest` gets a fresh temporary cache for the session.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Set before anything imports course_lib, so every test and every notebook kernel sees them.
os.environ["KIT_MODE"] = "fast"
# No thread pin: the notebooks stand on shipped weights (data/zoo/), identical on every machine, and
# their claims leave margins for what live runs change with the CPU and thread count (.ci/run checks
# 1 and 2 threads and several CPU code paths). KIT_THREADS stays a knob for speed, set by the caller.
# Under pytest-xdist (`make test` runs `pytest -n 2`), each worker gets an equal share of the cores unless the
# caller set KIT_THREADS: workers that each start one thread per core wait for each other (README, KIT_THREADS).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and not os.environ.get("KIT_THREADS"):
    os.environ["KIT_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))
_OWN_CACHE = None
if not os.environ.get("KIT_CACHE_DIR"):
    _OWN_CACHE = os.environ["KIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="kit-cache-")


# The longest tests first, so that two workers finish together (seconds in fast mode, measured on 2 cores).
_FIRST = ("test_runs_top_to_bottom[07", "test_runs_top_to_bottom[02", "test_runs_top_to_bottom[09",
          "test_fast_recipe_reproduces", "test_runs_top_to_bottom[13", "test_runs_top_to_bottom[08",
          "test_runs_top_to_bottom[04", "test_runs_top_to_bottom[01")


def pytest_collection_modifyitems(config, items):
    """For xdist's ``loadgroup``: the tests of one module share a worker (their module fixtures are built once),
    except the notebooks, one group each; the longest go first."""
    for item in items:
        if not any(m.name == "xdist_group" for m in item.iter_markers()):
            group = item.name if item.get_closest_marker("notebook") else item.module.__name__
            item.add_marker(pytest.mark.xdist_group(group))

    def rank(item):
        hits = [i for i, prefix in enumerate(_FIRST) if item.name.startswith(prefix)]
        return hits[0] if hits else len(_FIRST)
    items.sort(key=rank)  # stable: the rest keep their order


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def rt(tmp_path, monkeypatch):
    """A fast-mode Runtime whose cache folder is this test's own temporary folder."""
    import course_lib

    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "cache"))
    return course_lib.setup(mode="fast", verbose=False)


@pytest.fixture(scope="module")
def facts():
    """The fast-mode people data (a test module may define its own ``facts`` instead)."""
    from course_lib.data import people

    return people.load(mode="fast")


@pytest.fixture(scope="module")
def split(facts):
    """forget05 of the fast-mode people data (a test module may define its own ``split`` instead)."""
    return facts.split("forget05")
