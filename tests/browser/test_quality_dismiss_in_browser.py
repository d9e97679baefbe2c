"""A reviewer dismisses a false personal data finding (the shop's own address) as not personal
data; the next quality check does not report it again, and editing the example's text brings
it back."""

from __future__ import annotations

import pytest

from curation.core.services import example_update
from curation.models import FindingDismissal
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.quality.conftest import add, chat

pytestmark = pytest.mark.browser

SHOP = "hello@kumo-coffee.example"


def run_check(page, base: str, slug: str) -> None:
    page.goto(f"{base}/p/{slug}/quality/")
    # Tasks run inline in tests: the check is done when the page comes back (tokenizing takes a while).
    with page.expect_navigation(timeout=180_000):
        page.click("#run-check", no_wait_after=True)
    page.wait_for_selector("#scan-status:has-text('Done')")


def test_a_dismissed_shop_address_is_not_reported_again(page, live_server, project, users, screenshot):
    admin = users["admin"]
    shop = add(project, admin, "Are the beans fresh?", f"Roasted this week. Questions: {SHOP}", split="train")
    customer = add(project, admin, "Write to hana.sato@example.com please", "We will.", split="train")
    base = live_server.url
    sign_in(page, base, admin.username, PASSWORD)
    run_check(page, base, project.slug)

    page.goto(f"{base}/p/{project.slug}/quality/pii/")
    card = page.locator(f"#example-{shop.pk}")
    assert f"E-mail address: {SHOP}" in card.inner_text()
    assert "Found as an address of the form name@domain." in card.inner_text()
    finding = card.locator("li.finding", has_text=SHOP)
    assert finding.locator("select[name=reason]").input_value() == "not_personal"
    finding.locator("input[name=note]").fill("the shop's own address")
    screenshot(page, "before")
    page.screenshot(path="/tmp/h5shots/pii-before.png", full_page=True)
    finding.get_by_role("button", name="Dismiss").click()
    page.wait_for_selector(".messages")
    assert "Finding dismissed in example" in page.locator(".messages").inner_text()
    assert page.locator(f"#example-{shop.pk}").count() == 0
    assert page.locator(f"#example-{customer.pk}").count() == 1
    assert "1 finding dismissed by a reviewer is left out." in page.locator("#dismissed-link").inner_text()
    record = FindingDismissal.objects.get()
    assert (record.example_id, record.reason, record.created_by) == (shop.pk, "not_personal", admin)

    # The next check leaves it out.
    run_check(page, base, project.slug)
    page.goto(f"{base}/p/{project.slug}/quality/pii/")
    assert page.locator(f"#example-{shop.pk}").count() == 0
    assert page.locator(f"#example-{customer.pk}").count() == 1
    page.screenshot(path="/tmp/h5shots/pii-after.png", full_page=True)

    # The record, with who and why.
    page.click("text=See or undo them")
    row = page.locator("#dismissals tbody tr")
    assert SHOP in row.inner_text() and "Not personal data" in row.inner_text() and admin.username in row.inner_text()
    page.screenshot(path="/tmp/h5shots/dismissals.png", full_page=True)

    # An edit to the example's text brings the finding back at the next check.
    shop.refresh_from_db()
    example_update(
        example=shop, user=admin, version=shop.version, messages=chat("Fresh?", f"Yes. Questions: {SHOP} or call us.")
    )
    run_check(page, base, project.slug)
    page.goto(f"{base}/p/{project.slug}/quality/pii/")
    assert page.locator(f"#example-{shop.pk}").count() == 1
    assert scroll_width_fits(page)


def scroll_width_fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
