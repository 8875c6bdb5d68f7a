"""Debian's chromium driven by Playwright (no browser download): shared by the browser tests and screenshots."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("OPSBOOK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"  # gitignored: screenshots the tests leave for people to look at
VIEWPORT = {"width": 1366, "height": 900}
RUN_MENU = re.compile(r"^Run$")
RUN_ALL = re.compile(r"^Run All Cells$")
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook tab on show
STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""  # some cell is queued, running or done


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium from the system (``make browser`` installs Debian's)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, url: str, viewport: dict[str, int] | None = None) -> Page:
    page = browser.new_page(viewport=viewport or VIEWPORT)  # type: ignore[arg-type]
    page.goto(url)
    return page


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def run_all_cells(page: Page, timeout_ms: int = 300_000) -> list[str]:
    """In an open JupyterLab notebook: Run > Run All Cells, wait until every code cell ran; return the prompts."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000, state="attached")
    for _ in range(3):  # a click that lands while the kernel is still connecting can be dropped: click again
        # after a dialog (a kernel chosen, one terminating) the new kernel must be idle before Run All counts
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000,
                               state="attached")  # fmt: skip
        no = page.locator(".jp-toast-button", has_text="No")  # "get notified about Jupyter news?" covers the page
        if no.count():
            no.first.click()
        dismiss_dialogs(page)
        page.locator(".lm-MenuBar-itemLabel", has_text=RUN_MENU).first.click()
        # exactly "Run All Cells" in the open menu: has_text alone also matches "Restart Kernel and Run All Cells…"
        page.locator(".lm-Menu:visible .lm-Menu-itemLabel", has_text=RUN_ALL).first.click()
        try:
            # JupyterLab sometimes asks "Select Kernel" although the kernel is started (a busy machine): answer it
            page.wait_for_function(f"() => ({STARTED})() || !!document.querySelector('.jp-Dialog')", timeout=60_000)
        except Exception:
            page.screenshot(path=artifact("run-all-not-started.png"))
            page.keyboard.press("Escape")
        if not dismiss_dialogs(page) and page.evaluate(STARTED):
            break
    try:
        _wait_all_ran(page, timeout_ms)
    except Exception:
        page.screenshot(path=artifact("run-all-timeout.png"))
        raise
    return [p.strip() for p in page.locator(f"{PANEL} .jp-CodeCell .jp-InputPrompt").all_text_contents()]


def dismiss_dialogs(page: Page) -> list[str]:
    """Close any modal JupyterLab dialog (a kernel choice is accepted, anything else cancelled); return their texts.

    The texts are printed, so a run that met a dialog says which one.
    """
    seen: list[str] = []
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            break
        text = dialog.first.inner_text()
        seen.append(text)
        print(f"[browser] JupyterLab dialog: {text!r}")
        # a kernel choice is accepted; anything else cancelled, or acknowledged when "Ok" is its only button
        # ("Kernel Terminating": choosing the kernel replaced the one JupyterLab had already started)
        reject = dialog.first.locator(".jp-Dialog-button.jp-mod-reject")
        if "Select Kernel" in text or not reject.count():
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        else:
            reject.first.click()
        page.wait_for_timeout(500)
    return seen


def _wait_all_ran(page: Page, timeout_ms: int) -> None:
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!panel) return false;
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
        }""",
        timeout=timeout_ms,
    )


def error_outputs(page: Page) -> list[str]:
    """Text of every error output (a traceback) in the open notebook."""
    errors = page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    return errors.all_text_contents()


def wait_until_serving(url: str, timeout_s: float = 180) -> None:
    """Poll a JupyterLab URL's ``/api/status`` (with its token) until the server answers."""
    import time
    import urllib.request

    base, token = url.split("/lab")[0], url.split("?token=")[1]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
