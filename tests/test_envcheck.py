"""course_lib.envcheck: the environment check of notebook 00."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from course_lib import envcheck

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checks():
    return envcheck.check_environment()


def test_every_check_has_a_name_a_verdict_and_a_fix(checks):
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names must be unique"
    for c in checks:
        assert isinstance(c.ok, bool) and c.detail
        assert c.ok or c.fix, f"{c.name} failed without saying what to do"


def test_covers_what_notebook_00_promises(checks):
    names = {c.name for c in checks}
    assert {"python", "torch works", "device", "widgets", "cache dir", "free disk"} <= names
    assert {"data/people.json", "data/shapes_attributes.csv"} <= names
    assert set(envcheck.REQUIRED) <= names


def test_this_environment_passes_the_software_checks(checks):
    """The test environment is a course environment: only shipped data may be missing (being written)."""
    failed = [c.line() for c in checks if not c.ok and not c.name.startswith("data/")]
    assert not failed, "\n".join(failed)


def test_required_matches_pyproject():
    """envcheck checks exactly pyproject's dependencies, with the same lower bounds."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for dep in map(Requirement, deps):
        lows = [s.version for s in dep.specifier if s.operator == ">="]
        bounds[dep.name] = lows[0] if lows else None
    assert {k: v[1] for k, v in envcheck.REQUIRED.items()} == bounds


def test_report_prints_ok_and_fail_lines():
    lines = []
    checks = [envcheck.Check("thing", True, "1.0"),
              envcheck.Check("other", False, "missing", "install it")]
    assert envcheck.report(checks, out=lines.append) is checks
    assert lines[0].startswith("OK   thing") and "1.0" in lines[0]
    assert lines[1].startswith("FAIL other") and lines[1].endswith("-> install it")
    assert "1 of 2 checks passed" in lines[-1]


def test_missing_package_fails_with_a_fix():
    c = envcheck.check_package("no-such-dist", "no_such_module_xyz", "1.0")
    assert not c.ok and "no_such_module_xyz" in c.detail and "make install" in c.fix


def test_too_old_package_fails():
    c = envcheck.check_package("numpy", "numpy", "999.0")
    assert not c.ok and "older than 999.0" in c.detail


def test_version_tuple():
    assert envcheck._version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert envcheck._version_tuple("0.1.2") > envcheck._version_tuple("0.1")


def test_missing_data_files_fail(tmp_path):
    (tmp_path / "people.json").write_text("{}")
    by_name = {c.name: c for c in envcheck.check_data_files(tmp_path)}
    assert by_name["data/people.json"].ok
    assert not by_name["data/shapes_attributes.csv"].ok
    assert "missing" in by_name["data/shapes_attributes.csv"].detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_cache_dir_fails(tmp_path):
    tmp_path.chmod(0o500)
    try:
        c = envcheck.check_cache_dir(tmp_path / "cache")
    finally:
        tmp_path.chmod(0o700)
    assert not c.ok and "KIT_CACHE_DIR" in c.fix


def test_cache_dir_that_is_a_file_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = envcheck.check_cache_dir(blocker / "cache")
    assert not c.ok and "not writable" in c.detail


def test_writable_cache_dir_passes(tmp_path):
    assert envcheck.check_cache_dir(tmp_path / "new" / "cache").ok


def test_free_disk_threshold(tmp_path):
    assert envcheck.check_disk(tmp_path / "not" / "yet", min_free_gb=0).ok
    low = envcheck.check_disk(tmp_path, min_free_gb=1e12)
    assert not low.ok and "KIT_CACHE_DIR" in low.fix


def test_main_exit_status(capsys):
    """`python -m course_lib.envcheck` (README, Troubleshooting): exit status 1 only on FAIL."""
    status = envcheck.main()
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("OK   torch ") for line in lines)
    assert status == (1 if any(line.startswith("FAIL") for line in lines) else 0)


@pytest.mark.slow
def test_runs_as_a_file_when_the_package_import_is_broken(tmp_path):
    """`python course_lib/envcheck.py` works without importing course_lib/__init__.py."""
    env = dict(os.environ, KIT_CACHE_DIR=str(tmp_path))
    code = ("import runpy, sys; sys.modules['course_lib'] = None; "
            "sys.argv = ['envcheck.py']; runpy.run_path('course_lib/envcheck.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("OK   torch ") for line in lines), proc.stdout + proc.stderr
    assert proc.returncode == (1 if any(line.startswith("FAIL") for line in lines) else 0)
