"""An admin reads the weak labels accepting would write, a page at a time with each row's
votes, leaves some out, and accepts the rest."""

from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Example, WeakLabel
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.rules.conftest import chat
from tests.rules.weak import make_run

pytestmark = pytest.mark.browser


def test_weak_label_preview_and_partial_accept(page, live_server, project, users, screenshot):
    admin = users["admin"]
    for i in range(120):
        example_create(project=project, user=admin, messages=chat(f"question {i:03d}"))
    run = make_run(
        project, admin, rows={f"question {i:03d}": (None, ("billing", 0.9), ("billing", 1.0)) for i in range(120)}
    )
    run.rules = [{"id": 7, "version": 1, "name": "refund words", "kind": "keywords"}]
    run.save(update_fields=["rules"])
    WeakLabel.objects.filter(run=run).update(votes={"7": "billing"})
    base = live_server.url
    sign_in(page, base, admin.username, PASSWORD)
    page.goto(f"{base}/p/{project.slug}/rules/runs/{run.pk}/?threshold=0.5")

    table = page.locator("#accept-preview")
    assert "Examples 1–50 of 120" in table.locator("caption").inner_text()
    first_row = table.locator("tbody tr").first
    assert "refund words → billing" in first_row.inner_text()
    # Leave two rows of page 1 out.
    table.locator("tbody tr", has_text="question 001").locator("input.accept-pick").uncheck()
    table.locator("tbody tr", has_text="question 002").locator("input.accept-pick").uncheck()
    assert page.locator("#accept-chosen").inner_text() == "118 of 120 chosen to accept"
    page.screenshot(path="/tmp/h5shots/accept-page1.png", full_page=True)
    screenshot(page, "page1")

    # Page 2: none of it.
    page.get_by_role("link", name="Next →").click()
    page.wait_for_selector("#accept-preview caption:has-text('Examples 51–100')")
    page.get_by_role("button", name="None on this page").click()
    assert page.locator("#accept-chosen").inner_text() == "68 of 120 chosen to accept"
    # Back to page 1: the two rows are still left out.
    page.get_by_role("link", name="← Previous").click()
    page.wait_for_selector("#accept-preview caption:has-text('Examples 1–50')")
    assert not page.locator("tbody tr", has_text="question 001").locator("input.accept-pick").is_checked()
    assert page.locator("tbody tr", has_text="question 003").locator("input.accept-pick").is_checked()

    with page.expect_navigation():
        page.click("#accept-submit")
    assert "68 examples labeled from rule set v1" in page.locator(".messages").inner_text()
    labeled = set(
        Example.objects.filter(project=project, weak_label__isnull=False).values_list("messages__0__content", flat=True)
    )
    assert len(labeled) == 68
    assert "question 001" not in labeled and "question 060" not in labeled and "question 110" in labeled

    # "Select none", then a few: only those.
    page.goto(f"{base}/p/{project.slug}/rules/runs/{run.pk}/?threshold=0.5")
    page.get_by_role("button", name="Select none").click()
    assert page.locator("#accept-submit").is_disabled()
    page.locator("tbody tr", has_text="question 001").locator("input.accept-pick").check()
    assert page.locator("#accept-chosen").inner_text() == "1 of 52 chosen to accept"
    with page.expect_navigation():
        page.click("#accept-submit")
    assert "1 example labeled" in page.locator(".messages").inner_text()
    assert Example.objects.filter(project=project, weak_label__isnull=False).count() == 69
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
