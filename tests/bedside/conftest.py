"""The bedside app in real headless Chromium against a live server: the app must have been built (`make`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.bedside.routes import STATIC_DIR

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots for the README: the demo's synthetic wards and Chromium's own fake camera pattern, never a real face.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"bedside-{name}.png"), full_page=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if (STATIC_DIR / "sw.js").is_file():
        return
    skip = pytest.mark.skip(reason="the bedside app is not built: run `make install` (needs npm)")
    for item in items:
        if "tests/bedside" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def launch_chromium():
    """Start Chromium with extra flags (a fake camera file, say); closed after the test."""
    from playwright.sync_api import sync_playwright

    started = []
    with sync_playwright() as playwright:
        def launch(*args: str):
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", *args])
            started.append(browser)
            return browser

        yield launch
        for browser in started:
            browser.close()
