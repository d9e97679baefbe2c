"""A reviewer resolves a disagreement between two annotators."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from curation.labeling import services as svc
from curation.models import Example, Project
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_a_reviewer_resolves_a_disagreement_by_taking_one_annotators_text(page, live_server, screenshot):
    from django.contrib.auth import get_user_model

    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    project.annotations_per_example = 2
    project.save()
    users = {u.username: u for u in get_user_model().objects.all()}
    example = svc.queue_next(project=project, user=users["demo-annotator"])
    edited = [dict(m) for m in example.messages]
    edited[-1]["content"] = "A clearer answer from the annotator."
    svc.annotation_submit(
        example=example,
        user=users["demo-annotator"],
        based_on_version=example.version,
        label="billing",
        messages=edited,
        note="the old answer was vague",
    )
    svc.annotation_submit(example=example, user=users["demo-admin"], based_on_version=example.version, label="shipping")

    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    page.goto(base + "/p/kumo-support/")
    page.get_by_role("link", name="Disagreements", exact=True).click()
    page.get_by_role("link", name=str(example.pk), exact=True).click()
    assert "the old answer was vague" in page.locator(".answers").inner_text()
    # Nothing is chosen for the reviewer; each annotator's label is beside its choice.
    assert page.locator("#resolve-form input[name=label]:checked").count() == 0
    assert "No majority" in page.locator("#majority-suggestion").inner_text()
    assert "1 vote: demo-annotator" in page.locator("#resolve-form").inner_text()
    page.get_by_role("button", name="Use this text").click()
    assert page.locator("#turns textarea[name=content]").last.input_value() == "A clearer answer from the annotator."
    page.keyboard.press("Escape")
    page.locator("h1").click()  # away from the buttons: Enter is the page's again
    page.keyboard.press("Enter")  # no label chosen: the browser asks for one, nothing is sent
    assert page.locator("#resolve-form").count() == 1 and Example.objects.get(pk=example.pk).resolved_at is None
    page.keyboard.press("1")  # billing
    assert page.get_by_label("billing").is_checked()
    screenshot(page, "resolving")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=resolved")

    example.refresh_from_db()
    assert example.label.name == "billing" and example.status == Example.Status.APPROVED
    assert example.messages[-1]["content"] == "A clearer answer from the annotator."
    assert example.resolved_by.username == "demo-reviewer"
