"""Debian's chromium driven by Playwright (no browser download): shared by the browser tests and screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("OPSBOOK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"  # gitignored: screenshots the tests leave for people to look at
VIEWPORT = {"width": 1366, "height": 900}


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
