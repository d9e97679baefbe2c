"""A reviewer works through the draft queue in a real browser: approve and reject with the
keyboard, rank candidates by keyboard and by drag; hostile model text stays text."""

from __future__ import annotations

import pytest

from curation.models import Draft, Example, PreferencePair
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.generation import conftest as generation

pytestmark = pytest.mark.browser

# The generation fixtures, used here too: a scripted backend (no model) and jobs run with it.
backend = generation.backend
template = generation.template
run_job = generation.run_job
drafts = generation.drafts

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def shown(page) -> int:
    return int(page.locator("#review-card").get_attribute("data-example"))


def ranks(candidates: list[Draft]) -> list[int]:
    """The example ids of a prompt's candidates, best first, as stored."""
    return list(
        Draft.objects.filter(pk__in=[d.pk for d in candidates]).order_by("rank").values_list("example_id", flat=True)
    )


def order(page) -> list[int]:
    """The example ids in the ranking form, in the order the form would send them."""
    return [int(v) for v in page.locator("#ranking input[name=order]").evaluate_all("els => els.map(e => e.value)")]


def test_a_reviewer_decides_and_ranks_drafts_with_keys_and_drag(
    page, live_server, project, users, backend, drafts, monkeypatch, screenshot
):
    # Jobs are executed here with the scripted backend; the queued task must not run a model.
    monkeypatch.setattr("curation.generation.tasks.generation_job_task", lambda job_id: None)
    monkeypatch.setattr("curation.generation.tasks.generation_job_task_heavy", lambda job_id: None)
    backend.replies = {"about delivery?": HOSTILE}
    approve, reject, edit = drafts(count=3)
    backend.replies = {}
    by_keys = drafts(count=2, candidates=3)
    by_keys, by_drag = by_keys[:3], by_keys[3:]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    base = live_server.url
    sign_in(page, base, users["reviewer"].username, PASSWORD)

    page.goto(f"{base}/p/{project.slug}/drafts/")
    assert shown(page) == approve.example_id
    assert "9 drafts wait for review" in page.locator("#review-counts").inner_text()
    with page.expect_navigation():
        page.keyboard.press("a")
    assert "Approved." in page.locator(".messages").inner_text()

    # The hostile answer is on screen as text, and nothing of it ran.
    assert shown(page) == reject.example_id
    assert page.locator(".turn.by-model .content").inner_text() == HOSTILE
    assert page.locator("main img[src=x]").count() == 0
    page.keyboard.press("r")
    assert page.locator("#reject-panel").get_attribute("open") is not None
    page.keyboard.press("2")  # does not do what was asked
    assert page.locator("input[name=reasons][value=off_task]").is_checked()
    screenshot(page, "reject")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Rejected." in page.locator(".messages").inner_text()

    # Edit the answer, then Ctrl+Enter saves and approves: the edit becomes a preference pair.
    assert shown(page) == edit.example_id
    original = edit.example.messages[-1]["content"]
    page.keyboard.press("e")
    page.keyboard.type(" Thank you for waiting.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert "Edited and approved: a preference pair was recorded." in page.locator(".messages").inner_text()
    pair = PreferencePair.objects.get(example_id=edit.example_id)
    assert (pair.chosen["content"], pair.rejected["content"]) == (original + " Thank you for waiting.", original)

    # Three candidates: select the third and move it to the top.
    assert page.locator("#ranking > li").count() == 3
    page.keyboard.press("3")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expected = [by_keys[2].example_id, by_keys[0].example_id, by_keys[1].example_id]
    assert order(page) == expected
    assert page.locator("#ranking > li .place").all_inner_texts() == ["1", "2", "3"]
    screenshot(page, "ranking")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "and 3 preference pairs were recorded" in page.locator(".messages").inner_text()
    assert ranks(by_keys) == expected
    assert Example.objects.get(pk=expected[0]).status == Example.Status.APPROVED

    # The next prompt's candidates, by drag and drop: the last one onto the first place.
    assert order(page) == [d.example_id for d in by_drag]
    page.drag_and_drop("#ranking > li:nth-child(3) .place", "#ranking > li:nth-child(1)")
    expected = [by_drag[2].example_id, by_drag[0].example_id, by_drag[1].example_id]
    assert order(page) == expected
    with page.expect_navigation():
        page.click("#rank-submit")
    assert ranks(by_drag) == expected
    assert "No drafts wait for review" in page.locator("#review-empty").inner_text()

    reject.refresh_from_db()
    assert reject.decision == Draft.Decision.REJECTED and reject.reasons == ["off_task"]
    approve.refresh_from_db()
    assert approve.decision == Draft.Decision.APPROVED
    assert dialogs == []
