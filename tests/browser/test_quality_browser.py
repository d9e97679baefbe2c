"""Quality gates in a real browser: an admin runs the quality check, reads the readiness
report and redacts personal data; hostile example text stays text on every quality page."""

from __future__ import annotations

import pytest

from curation.models import DuplicateCluster, Example, ExampleRevision, QualityScan
from curation.quality.scanning import quality_scan_execute
from curation.quality.tasks import quality_scan_start
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.quality.conftest import PASSWORD_REPLY, PASSWORD_RESET, add

pytestmark = pytest.mark.browser

PARCEL = "My parcel never arrived and the tracking page says delivered."
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> write to evil@example.com'


def verdict(page, key: str) -> str:
    return page.locator(f"#readiness tr[data-key={key}] td.verdict").text_content().strip()


def assert_not_run(page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img[src=x]").count() == 0


def test_an_admin_runs_the_quality_check_and_redacts_an_e_mail(
    page, live_server, project, users, monkeypatch, screenshot
):
    admin = users["admin"]
    add(project, admin, PASSWORD_RESET, PASSWORD_REPLY, split="train")
    add(project, admin, PARCEL, split="train")
    add(project, admin, PARCEL, split="test")  # an exact copy in the test split: a leak
    pii = add(project, admin, "Please write to taro.yamada@example.com about my refund.", split="train")
    add(project, admin, "Do you ship to Hokkaido in winter?", split="validation")
    # Tasks run inline in tests, which would finish the check before the page comes back; the
    # queued task is held here instead, and run below, as a busy worker would run it later.
    held: list[int] = []
    monkeypatch.setattr("curation.quality.tasks.quality_scan_task", held.append)
    base = live_server.url
    sign_in(page, base, admin.username, PASSWORD)

    page.goto(f"{base}/p/{project.slug}/")
    page.get_by_role("link", name="Quality", exact=True).click()
    page.wait_for_url(f"**/p/{project.slug}/quality/")
    assert "No quality check has run yet." in page.locator("#scan-status").inner_text()
    assert verdict(page, "pii") == "warn"  # not checked yet

    page.click("text=Run the quality check")
    page.wait_for_selector("#scan-status:has-text('Check 1: Queued')")
    assert "Quality check 1 started." in page.locator(".messages").inner_text()
    assert page.locator("#run-check").count() == 0  # one check at a time
    assert page.locator("#scan-status progress").is_visible()
    scan = QualityScan.objects.get(project=project)
    assert held == [scan.pk]
    # The status polls every second; when the check ends, the page reloads itself.
    quality_scan_execute(scan=scan)
    page.wait_for_selector("#scan-status:has-text('Check 1: Done')")
    assert page.locator(".messages").count() == 0  # a fresh page, not the one the message came with
    assert page.locator("#run-check").is_visible()  # a finished check can be run again
    assert verdict(page, "leakage") == "fail"
    assert verdict(page, "pii") == "warn"
    assert "1 example holds personal data" in page.locator("#readiness tr[data-key=pii]").inner_text()
    assert page.locator("#length-histogram rect").count() > 0
    screenshot(page, "quality")

    page.get_by_role("link", name="Personal data", exact=True).click()
    page.wait_for_url(f"**/p/{project.slug}/quality/pii/")
    card = page.locator(f"#example-{pii.pk}")
    mark = card.locator("mark.pii-email")
    assert mark.evaluate("m => m.firstChild.textContent") == "taro.yamada@example.com"
    assert mark.locator("small").text_content() == "email"
    assert page.locator("section.pii-example").count() == 1
    screenshot(page, "pii")

    card.get_by_role("button", name="Redact this example").click()
    page.wait_for_selector(".messages:has-text('Redacted 1 item in example')")
    assert f"Redacted 1 item in example {pii.pk}." in page.locator(".messages").inner_text()
    # Redacted, it is no longer flagged, so the list is empty now; the text shows on the example.
    assert page.locator("#no-pii").is_visible()
    pii.refresh_from_db()
    assert pii.messages[0]["content"] == "Please write to [EMAIL] about my refund."

    page.goto(f"{base}/p/{project.slug}/examples/{pii.pk}/")
    assert "Please write to [EMAIL] about my refund." in page.locator("ol.chat").first.inner_text()
    page.goto(f"{base}/p/{project.slug}/examples/{pii.pk}/history/")
    latest = page.locator("#history li.revision").first
    assert "Personal data redacted" in latest.locator(".revision-head").inner_text()
    assert latest.locator("del").first.inner_text().strip() == "taro.yamada@example.com"
    assert latest.locator("ins").first.inner_text().strip() == "[EMAIL]"
    assert ExampleRevision.objects.filter(example=pii, action=ExampleRevision.Action.REDACT).count() == 1


def test_hostile_text_stays_text_on_the_quality_pages_and_a_duplicate_is_resolved(
    page, live_server, project, users, django_capture_on_commit_callbacks, screenshot
):
    admin = users["admin"]
    add(project, admin, PASSWORD_RESET, PASSWORD_REPLY, split="train")
    trained = add(project, admin, HOSTILE, split="train")
    copy = add(project, admin, HOSTILE, split="test")
    with django_capture_on_commit_callbacks(execute=True):
        scan = quality_scan_start(project=project, user=admin)
    scan.refresh_from_db()
    assert scan.status == QualityScan.Status.DONE, scan.error
    base = live_server.url
    sign_in(page, base, admin.username, PASSWORD)

    page.goto(f"{base}/p/{project.slug}/quality/duplicates/")
    assert_not_run(page)
    cluster = page.locator("section.cluster")
    assert cluster.count() == 1
    members = cluster.locator(".member")
    assert members.count() == 2
    for i in range(2):
        assert HOSTILE in members.nth(i).locator(".diff").inner_text()
    screenshot(page, "duplicates")

    page.goto(f"{base}/p/{project.slug}/quality/leakage/")
    assert_not_run(page)
    row = page.locator("#leaks tbody tr")
    assert row.count() == 1
    assert f"#{copy.pk}" in row.inner_text() and f"#{trained.pk}" in row.inner_text()
    assert '<img src=x onerror="window.__pwned=1"><script>' in row.inner_text()  # truncated after 80 characters
    screenshot(page, "leakage")

    page.goto(f"{base}/p/{project.slug}/quality/pii/")
    assert_not_run(page)
    for example in (trained, copy):
        card = page.locator(f"#example-{example.pk}")
        text = card.locator(".turn.user .diff").inner_text()
        assert text.startswith('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> write to ')
        assert card.locator("mark.pii-email").inner_text().startswith("evil@example.com")
    screenshot(page, "pii")

    page.goto(f"{base}/p/{project.slug}/quality/duplicates/")
    page.locator(f"input[name=keep][value='{copy.pk}']").check()
    page.click("text=Keep the chosen one, delete the others")
    page.wait_for_selector(".messages:has-text('Kept example')")
    assert f"Kept example {copy.pk} and deleted 1 duplicate." in page.locator(".messages").inner_text()
    assert page.locator("#no-clusters").is_visible()  # the open list has nothing left
    assert_not_run(page)
    assert not Example.objects.filter(pk=trained.pk).exists()
    assert Example.objects.filter(pk=copy.pk).exists()

    page.goto(f"{base}/p/{project.slug}/quality/duplicates/?show=all")
    resolved = page.locator("section.cluster")
    assert resolved.count() == 1
    assert f"Kept #{copy.pk} by {admin.username}" in " ".join(resolved.inner_text().split())
    assert resolved.locator("form").count() == 0
    screenshot(page, "resolved")
    assert DuplicateCluster.objects.get(scan=scan).resolved_at is not None
    # With its training twin gone, the test copy no longer leaks.
    page.goto(f"{base}/p/{project.slug}/quality/leakage/")
    assert page.locator("#no-leaks").is_visible()
