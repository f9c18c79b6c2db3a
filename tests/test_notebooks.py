"""Every course notebook follows the template and runs top to bottom in fast mode.

Notebooks run in order (00, 01, ...) with cwd notebooks/ and one KIT_CACHE_DIR for the session, so
a base model trained by one notebook is reused by the next. Executed copies go to
build/test-notebooks/ for inspection. Each notebook's last cell asserts its claim, so an executed
notebook is a test.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXECUTED_DIR = REPO / "build" / "test-notebooks"
# Seconds per notebook, kernel start included. Fast mode aims at about a minute per notebook; the
# margin is for a cold model cache on a busy 2-core CI machine. KIT_NOTEBOOK_TIMEOUT overrides it.
NOTEBOOK_TIMEOUT = int(os.environ.get("KIT_NOTEBOOK_TIMEOUT", "900"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")

ids = [p.stem for p in NOTEBOOKS]


def _headings(nb) -> list[str]:
    """Markdown headings, and bold lead-ins that act as one (`**What you will learn**`), lower-cased."""
    return [line.strip("#* ").lower() for cell in nb.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith(("#", "**"))]


def test_notebooks_are_found():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_follows_the_template(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    headings = _headings(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "first cell: a title"
    assert any("objectives" in h or "what you will learn" in h for h in headings), \
        "no 'What you will learn' (or 'Objectives') heading"
    assert any("summary" in h for h in headings), "no 'Summary' heading"
    assert any("parameters" in c.metadata.get("tags", []) for c in code), "no cell tagged `parameters`"
    assert "import course_lib" in "".join(c.source for c in code[:2]), "the setup cell imports course_lib"
    assert "assert" in code[-1].source or "cl.claims." in code[-1].source, \
        "the last code cell must check the notebook's claim (cl.claims.at_least / at_most, or assert)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_outputs_are_stripped(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"cells {dirty} have outputs or execution counts: clear them before committing "
                       "(Edit > Clear Outputs of All Cells, then save)")


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT + 120)  # a hard stop, should the kernel hang
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_runs_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT
    current = {"index": None}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    client = NotebookClient(nb, kernel_name="python3", on_cell_start=on_cell_start,
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    os.environ["KIT_NOTEBOOK"] = path.stem  # the kernel inherits it: cl.claims logs which notebook claimed what
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        index = current["index"]
        where = f"cell {index}:\n{nb.cells[index].source[:800]}" if index is not None else "kernel start"
        what = ("ran past the notebook's budget of "
                f"{NOTEBOOK_TIMEOUT} s (KIT_NOTEBOOK_TIMEOUT)" if isinstance(err, CellTimeoutError) else "failed")
        pytest.fail(f"{path.name} {what} in {where}\n\n{ANSI.sub('', str(err))[-3000:]}", pytrace=False)
    finally:
        EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, EXECUTED_DIR / path.name)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s in fast mode")

def _tiny_notebook(path, source: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_run_notebooks_script(tmp_path):
    """bin/run_notebooks (`make course`): executed copies, one line per notebook, exit 1 on failure."""
    _tiny_notebook(tmp_path / "good.ipynb", "import os\nassert os.getcwd().endswith('notebooks')")
    _tiny_notebook(tmp_path / "bad.ipynb", "raise ValueError('boom')")
    proc = subprocess.run([sys.executable, str(REPO / "bin" / "run_notebooks"), "--out", str(tmp_path / "out"),
                           str(tmp_path / "good.ipynb"), str(tmp_path / "bad.ipynb")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^ok +good.ipynb", proc.stdout, flags=re.M), proc.stdout
    assert re.search(r"^FAIL bad.ipynb .*ValueError: boom", proc.stdout, flags=re.M), proc.stdout
    assert (tmp_path / "out" / "good.ipynb").exists() and (tmp_path / "out" / "bad.ipynb").exists()
