"""`make lab` works: JupyterLab starts as bin/lab starts it, serves the notebooks, and runs 00 in a browser.

The server is started exactly as `make lab` starts it (bin/lab), plus --no-browser, a free port and a
token. The browser part drives Debian's Chromium (/usr/bin/chromium) with Playwright; without it
the test skips, unless KIT_REQUIRE_BROWSER=1 (CI), where it fails. JupyterLab's user settings and
workspaces go to a temporary folder with autosave off, so the repo's notebooks are never rewritten.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_HERE = "00_start_here.ipynb"
ARTIFACTS = REPO / "build" / "test-lab"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class Lab:
    """A JupyterLab server started by bin/lab, stopped by killing its process group."""

    def __init__(self, workdir: Path):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        settings = workdir / "settings"
        (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
        (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
            json.dumps({"autosave": False}))
        env = dict(os.environ, KIT_PYTHON=sys.executable,
                   JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
        self.log_path = workdir / "lab.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(REPO / "bin" / "lab"), "--no-browser", f"--port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bin/lab exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if _get(self.url("/api/status"), timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log_text()}")

    def stop(self) -> list[psutil.Process]:
        """Kill the server's process group; return the processes it left alive (killed now)."""
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        # SIGTERM: Jupyter shuts its kernels down and exits (what Ctrl+C does after its question).
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=grace)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        _, alive = psutil.wait_procs(family, timeout=20)
        for p in alive:  # leave nothing behind, then report it
            p.kill()
        self.log.close()
        return alive


def test_bin_lab_arguments(tmp_path):
    """What `make lab` passes to JupyterLab: loopback only, notebooks/ at 00, --allow-root only as root."""
    fake_python = tmp_path / "python"
    fake_python.write_text('#!/bin/sh\necho "$@"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, KIT_PYTHON=str(fake_python))
    out = subprocess.run([str(REPO / "bin" / "lab"), "--port=1"], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    assert out[:2] == ["-m", "jupyterlab"] and out[-1] == "--port=1"
    assert "--ServerApp.ip=127.0.0.1" in out
    assert f"--ServerApp.root_dir={REPO / 'notebooks'}" in out
    assert "--LabApp.default_url=/lab/tree/00_start_here.ipynb" in out
    assert ("--allow-root" in out) == (os.geteuid() == 0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    started = Lab(tmp_path_factory.mktemp("lab"))
    try:
        started.wait_ready()
        yield started
    finally:
        leftovers = started.stop()
    assert started.proc.returncode is not None, "the server did not stop"
    assert not leftovers, f"processes left behind by JupyterLab: {leftovers}"


def test_listens_on_loopback_only(lab):
    listening = [c.laddr for c in psutil.Process(lab.proc.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip in ("127.0.0.1", "::1") for addr in listening), listening


def test_serves_the_notebooks(lab):
    status, body = _get(lab.url("/api/contents/"))
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    expected = {p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert START_HERE in names and expected <= names, names
    status, body = _get(lab.url(f"/api/contents/{START_HERE}"))
    assert status == 200 and json.loads(body)["type"] == "notebook"


def test_requires_the_token(lab):
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{lab.base}/api/contents/")
    assert err.value.code in (401, 403)


def test_opens_at_start_here(lab):
    """`/` (where the printed URL and the browser land) redirects to the start-here notebook."""
    conn = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=10)
    try:
        conn.request("GET", f"/?token={lab.token}")
        response = conn.getresponse()
        assert response.status in (301, 302, 303, 307)
        assert response.getheader("Location", "").split("?")[0].endswith(f"/lab/tree/{START_HERE}")
    finally:
        conn.close()


# --- in a browser ----------------------------------------------------------------------------

PROMPTS_JS = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
ERRORS_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.textContent).filter(t => /Traceback|^\\s*\\w+(Error|Exception)\\b/m.test(t))"""


def _browser_or_skip():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (Debian: apt-get install chromium)"
        if os.environ.get("KIT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KIT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        if os.environ.get("KIT_REQUIRE_BROWSER") == "1":
            raise
        pytest.skip(f"playwright is not installed ({err})")
    return sync_playwright


def _accept_dialog(page) -> None:
    """JupyterLab sometimes asks which kernel to start (when its kernel list arrives late): a person
    would press "Select" for the proposed one, Python 3 (ipykernel)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        dialog.locator(".jp-mod-accept").first.click()


def _wait_for_kernel(page, lab, timeout: float = 120, notebook: str = START_HERE) -> None:
    """Until the notebook's kernel is started and idle (the server says so, and so does the toolbar)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _accept_dialog(page)
        sessions = json.loads(_get(lab.url("/api/sessions"))[1])
        states = [s["kernel"]["execution_state"] for s in sessions if s["path"].endswith(notebook)]
        indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
        if states == ["idle"] and indicator.count() and indicator.first.get_attribute("data-status") == "idle":
            return
        time.sleep(0.5)
    raise TimeoutError(f"the kernel of {notebook} was not idle within {timeout} s")


def _run_all(page, timeout: float):
    """Run > Run All Cells, then wait until every cell has run or one failed: ``(done, prompts, errors)``."""
    _menu(page, "Run", "Run All Cells")
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        _accept_dialog(page)
        prompts, errors = page.evaluate(PROMPTS_JS), page.evaluate(ERRORS_JS)
        done = bool(prompts) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
        if done or errors and not any("*" in p for p in prompts):
            break
        if time.monotonic() > start + 60 and all(p == "[ ]:" for p in prompts):
            break  # Run All did not start anything
        time.sleep(1)
    return done, prompts, errors


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{item}$")).click()


@contextlib.contextmanager
def notebook_page(lab, notebook: str, tmp_path, viewport: tuple = (1280, 900)):
    """A Chromium page on ``notebook`` in JupyterLab, its kernel started and idle. The browser is closed
    afterwards; if JupyterLab saved the notebook, the file is restored and the test fails."""
    sync_playwright = _browser_or_skip()
    notebook_file = REPO / "notebooks" / notebook
    before = notebook_file.read_bytes()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": viewport[0], "height": viewport[1]})
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.goto(lab.url(f"/lab/tree/{notebook}"), timeout=120_000)
                page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
                _wait_for_kernel(page, lab, notebook=notebook)
                yield page
            finally:
                context.close()
    finally:
        saved = notebook_file.read_bytes() != before
        if saved:  # never leave executed outputs in the repo
            notebook_file.write_bytes(before)
    if saved:
        pytest.fail(f"JupyterLab saved {notebook_file} during the test (restored it)")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_start_here_runs_in_the_browser(lab, tmp_path):
    with notebook_page(lab, START_HERE, tmp_path) as page:
        from playwright.sync_api import expect

        done, prompts, errors = _run_all(page, 300)
        page.screenshot(path=str(ARTIFACTS / "start_here.png"), full_page=False)
        assert not errors, "error output in the notebook:\n" + "\n---\n".join(e[-1500:] for e in errors)
        assert done, f"not every cell ran within 300 s; prompts: {prompts}"
        env_check = page.locator(".jp-OutputArea-output", has_text="OK   torch works").first
        env_check.scroll_into_view_if_needed()
        expect(env_check).to_be_visible()
        expect(env_check).to_contain_text("checks passed")
        page.screenshot(path=str(ARTIFACTS / "start_here_envcheck.png"))
        slider = page.locator(".jp-OutputArea-output .widget-slider").first
        slider.scroll_into_view_if_needed(timeout=30_000)
        expect(slider).to_be_visible()  # the ipywidgets front end drew the slider
        page.wait_for_timeout(1000)  # let the scrolled-in cells paint before the screenshot
        page.screenshot(path=str(ARTIFACTS / "start_here_widget.png"))
        claim = page.locator(".jp-OutputArea-output", has_text="Claim holds").first
        claim.scroll_into_view_if_needed()
        expect(claim).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "start_here_end.png"))
