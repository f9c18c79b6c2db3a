"""Test-session settings: fast mode, a cache folder of its own unless the caller gave one.

`make test` passes KIT_CACHE_DIR=.cache/ so that models trained by one run (or one notebook) are
reused by the next; a bare `pytest` gets a fresh temporary cache for the session.
"""
from __future__ import annotations

import contextlib
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


# The longest tests first, so that two workers finish together (seconds in fast mode, measured on 2 cores);
# 08 before 11, 12 and 13, which load its unlearned models from the cache (cl.unlearn(..., cache=True)).
_FIRST = ("test_runs_top_to_bottom[09", "test_runs_top_to_bottom[08", "test_runs_top_to_bottom[13",
          "test_runs_top_to_bottom[06", "test_runs_top_to_bottom[03", "test_runs_top_to_bottom[07",
          "test_runs_top_to_bottom[02", "test_runs_top_to_bottom[05", "test_fast_recipe_reproduces",
          "test_runs_top_to_bottom[04", "test_runs_top_to_bottom[01", "test_runs_top_to_bottom[11")


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


def _people_config(sizes, preset, aliases):
    from course_lib.data import people
    from course_lib.models import people_lm, sisa_lm

    people.SIZES["fast"], people_lm.PRESETS["fast"] = sizes, preset
    people_lm.PeopleLMRecipe.mode_aliases = aliases
    sisa_lm.cached_facts.cache_clear()
    sisa_lm._plan.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def small_people_data():
    """Unit tests train tiny people LMs on the small data (``people.SMALL``: 40 people, seconds per test): in the
    tests, fast mode's people data are the small ones and the fast people-lm recipe trains the preset a test patches
    in (``tests.tiny.use_tiny_lm``; unpatched: ``people_lm.SMALL_PRESET``) instead of loading default's. The notebooks
    (their own kernels) and the tests marked ``course_people`` see the course's fast mode: default's 200 people and
    shipped models (issue 14). Session-scoped, so that module fixtures see it too."""
    from course_lib.data import people
    from course_lib.models import people_lm

    course = (people.SIZES["fast"], people_lm.PRESETS["fast"], people_lm.PeopleLMRecipe.mode_aliases)
    _people_config(people.SMALL, people_lm.SMALL_PRESET, {})
    yield course
    _people_config(*course)


@contextlib.contextmanager
def course_people_config(course):
    """Within: the course's fast-mode people data and people LM (``course``: what ``small_people_data`` yields);
    after: the unit tests' small ones again. For module fixtures, which are built before ``course_people_data``."""
    from course_lib.data import people
    from course_lib.models import people_lm

    small = (people.SIZES["fast"], people_lm.PRESETS["fast"], people_lm.PeopleLMRecipe.mode_aliases)
    _people_config(*course)
    try:
        yield
    finally:
        _people_config(*small)


@pytest.fixture(autouse=True)
def course_people_data(request, small_people_data):
    """A test marked ``course_people`` sees the course's fast-mode people data and people LM (see above)."""
    if not request.node.get_closest_marker("course_people"):
        yield
        return
    with course_people_config(small_people_data):
        yield
