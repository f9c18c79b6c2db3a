"""Packaging: pyproject.toml, environment.yml, the Makefile, the README and .ci/run agree."""
from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
README = (REPO / "README.md").read_text()


def _pyproject_requirements() -> dict[str, str]:
    reqs = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    return {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, reqs)}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    reqs = [Requirement(line) for line in pip if not line.startswith("-")]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


def _quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh|shell)?\n(.*?)```", section, flags=re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def _make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return {t for line in re.findall(r"^([\w\- ]+):(?!=)", makefile, flags=re.M) for t in line.split()}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_yml_installs_the_kit_itself():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip


def test_torch_range_admits_the_pinned_cpu_build():
    torch = next(r for r in map(Requirement, PYPROJECT["project"]["dependencies"]) if r.name == "torch")
    assert torch.specifier.contains(Version("2.13.0"))
    assert torch.specifier.contains(Version("2.13.0+cpu"))
    pinned = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert pinned and torch.specifier.contains(Version(pinned.group(1)))


def test_python_floor():
    assert PYPROJECT["project"]["requires-python"] == ">=3.10"


def test_readme_quickstart_is_two_make_targets():
    commands = _quickstart_commands()
    assert commands == ["make lab", "make test"], commands
    targets = _make_targets()
    for command in commands:
        assert command.split()[1] in targets


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_command = _quickstart_commands()[1]
    assert re.search(rf"^\s*{re.escape(test_command)}\b", ci, flags=re.M), ci
    assert "KIT_REQUIRE_BROWSER=1" in ci
    assert "playwright install" not in ci


def test_makefile_targets_exist():
    assert {"venv", "install", "lab", "test", "course", "bench", "clean"} <= _make_targets()


def test_readme_course_table_lists_every_notebook():
    """Every notebook on disk is in the README's course table, and the table has all 14 rows."""
    rows = re.findall(r"^\| (\d\d) \| `?(\w+)`? \|", README, flags=re.M)
    assert [n for n, _ in rows] == [f"{i:02d}" for i in range(14)]
    listed = {f"{n}_{name}" for n, name in rows}
    on_disk = {p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert on_disk <= listed, f"not in the README's course table: {sorted(on_disk - listed)}"


@pytest.mark.parametrize("target", ["lab", "test", "course", "bench", "install"])
def test_make_dry_run(target):
    """`make -n` parses the Makefile and shows the commands without running them."""
    proc = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_make_lab_goes_through_bin_lab():
    proc = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert "bin/lab --port=8888" in proc.stdout


def test_torch_spec_is_installed_before_the_kit():
    proc = subprocess.run(["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True,
                          timeout=30)
    lines = proc.stdout.splitlines()
    torch_line = next(i for i, line in enumerate(lines) if "pip install torch==2.13.0" in line)
    kit_line = next(i for i, line in enumerate(lines) if "pip install -e '.[dev]'" in line)
    assert torch_line < kit_line
