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
_OWN_CACHE = None
if not os.environ.get("KIT_CACHE_DIR"):
    _OWN_CACHE = os.environ["KIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="kit-cache-")


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
