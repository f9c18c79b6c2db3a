"""Notebook 05 in a real JupyterLab and a real browser: run every cell in fast mode, move a slider of the
trade-off explorer with the keyboard, and see the figure and the readout change, with no error anywhere.

The server is started as `make lab` starts it (bin/lab; see tests/test_lab.py) on 127.0.0.1 with its own
port and token, and stopped by its PID. Debian's Chromium is driven by Playwright; without Chromium the
test skips with the reason, unless KIT_REQUIRE_BROWSER=1 (CI). This file runs after the notebook tests, so
the models and the sweep are usually in the session's cache already.
"""
from __future__ import annotations

import time

import pytest

from tests.test_lab import ARTIFACTS, ERRORS_JS, _run_all, lab, notebook_page  # noqa: F401  (lab: the server fixture)

NOTEBOOK = "05_tradeoff_explorer.ipynb"
IMAGE_SRC_JS = "el => el.getAttribute('src') || ''"


def _wait_change(read, old, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read()
        if now != old:
            return now
        time.sleep(0.2)
    return read()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tradeoff_explorer_answers_a_slider_in_the_browser(lab, tmp_path):
    with notebook_page(lab, NOTEBOOK, tmp_path, viewport=(1400, 1000)) as page:
        from playwright.sync_api import expect

        done, prompts, errors = _run_all(page, 600)
        page.screenshot(path=str(ARTIFACTS / "tradeoff_after_run_all.png"))
        assert not errors, "error output in the notebook:\n" + "\n---\n".join(e[-1500:] for e in errors)
        assert done, f"not every cell ran within 600 s; prompts: {prompts}"

        explorer = page.locator(".jp-OutputArea-output",
                                has=page.locator("button", has_text="Run this exact setting")).first
        explorer.scroll_into_view_if_needed(timeout=30_000)
        image = explorer.locator("img.widget-image").first
        readout = explorer.locator(".widget-html-content", has_text="Scorecard row").first
        expect(image).to_be_visible()
        expect(readout).to_be_visible()
        src0, text0 = image.evaluate(IMAGE_SRC_JS), readout.inner_text()

        # Keyboard: focus the number-of-steps slider's handle and move it to its minimum (the sweep's first
        # checkpoint): a different point of the sweep, so a new figure and new numbers.
        handle = explorer.locator(".widget-slider", has_text="num_steps").locator(".noUi-handle").first
        handle.focus()
        handle.press("Home")
        src1 = _wait_change(lambda: image.evaluate(IMAGE_SRC_JS), src0)
        if src1 == src0:  # no Home key in this slider version: step down with the arrow key instead
            for _ in range(40):
                handle.press("ArrowLeft")
            src1 = _wait_change(lambda: image.evaluate(IMAGE_SRC_JS), src0)
        text1 = _wait_change(readout.inner_text, text0)
        page.screenshot(path=str(ARTIFACTS / "tradeoff_after_slider.png"))
        assert src1 != src0, "the explorer's figure did not change after the slider moved"
        assert text1 != text0, "the explorer's readout did not change after the slider moved"
        assert explorer.locator(".widget-html-content", has_text="Error").count() == 0, \
            "the explorer shows an error after the slider moved"
        assert not page.evaluate(ERRORS_JS), "a cell shows an error after the slider moved"
