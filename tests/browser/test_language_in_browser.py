"""Each person chooses their language; Japanese shows Japanese labels and Japanese text."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from curation.models import UserSettings
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_switching_to_japanese_shows_the_interface_in_japanese(new_page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    page = new_page()
    sign_in(page, base, "demo-annotator")
    page.goto(base + "/p/kumo-support/")
    assert page.get_by_role("link", name="Label", exact=True).count() == 1

    page.select_option("select[name=language]", "ja")
    page.wait_for_selector("html[lang=ja]")
    assert page.url == base + "/p/kumo-support/"  # back on the page it was changed on
    assert page.get_by_role("link", name="ラベル付け", exact=True).count() == 1
    page.get_by_role("link", name="ラベル付け", exact=True).click()
    assert page.locator("fieldset.labels legend").inner_text() == "ラベル"
    assert page.get_by_role("button", name="スキップ s").count() == 1
    screenshot(page, "ja")
    assert UserSettings.objects.get(user__username="demo-annotator").language == "ja"

    # The choice follows the person to another browser; others keep their own.
    elsewhere = new_page()
    sign_in(elsewhere, base, "demo-annotator")
    assert elsewhere.locator("html").get_attribute("lang") == "ja"
    colleague = new_page()
    sign_in(colleague, base, "demo-reviewer")
    assert colleague.locator("html").get_attribute("lang") == "en"


def test_japanese_examples_display_and_search_correctly(page, live_server):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    page.goto(base + "/p/kumo-support/examples/")
    page.fill("input[name=q]", "沖縄")
    page.wait_for_function("() => document.querySelector('#example-table p').textContent.trim() === '1 example'")
    assert "沖縄" in page.locator("#example-table tbody").inner_text()
