"""The pages of the visual pass in Chromium: the examples list shows the answer and the label
beside the prompt, cut text is marked, and the examples, disagreements and resolving pages are
never wider than the window at 768, 1366 and 1920 px, in English and in Japanese."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from curation.labeling import services as svc
from curation.models import Project, UserSettings
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

WIDTHS = (768, 1366, 1920)


def test_the_examples_list_and_the_disagreement_pages_fit_the_window(page, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    users = {u.username: u for u in get_user_model().objects.all()}
    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    empty = base + reverse("disagreement_list", args=[project.slug])
    page.goto(empty)
    assert "How disagreements appear" in page.locator("#no-disagreements").inner_text()
    screenshot(page, "no-disagreements")

    project.annotations_per_example = 2
    project.save()
    example = svc.queue_next(project=project, user=users["demo-annotator"])
    svc.annotation_submit(
        example=example, user=users["demo-annotator"], based_on_version=example.version, label="billing"
    )
    svc.annotation_submit(example=example, user=users["demo-admin"], based_on_version=example.version, label="shipping")
    pages = {
        "examples": base + reverse("example_list", args=[project.slug]),
        "disagreements": empty,
        "resolve": base + reverse("disagreement_detail", args=[project.slug, example.pk]),
    }

    page.goto(pages["examples"])
    headers = page.locator("table.examples thead th").all_inner_texts()
    assert headers[2:5] == ["First user message", "Answer", "Label"]
    assert page.locator("table.examples .cut-off").count() > 0  # the demo has long answers
    for language in ("en", "ja"):
        UserSettings.objects.update_or_create(user=users["demo-reviewer"], defaults={"language": language})
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, url in pages.items():
                page.goto(url)
                assert page.locator("html").get_attribute("lang") == language
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (language, width, name, scroll)
                if width == 768:
                    screenshot(page, f"{name}-{language}-{width}")
