import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("SHIKOMI_SCREENSHOTS")


@pytest.fixture
def browser(live_server):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/ensure_chromium.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """A page in a browser context of its own (its own cookies: another person)."""

    def make():
        page = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        return page

    return make


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def screenshot(request, tmp_path):
    """Save a screenshot named after the test (to $SHIKOMI_SCREENSHOTS when set)."""

    def take(page, name: str = "") -> None:
        folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{request.node.name}{'-' + name if name else ''}.png"), full_page=True)

    return take


def sign_in(page, base: str, username: str, password: str = "shikomi-demo") -> None:
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
