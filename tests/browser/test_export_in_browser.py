"""Export in a real browser: a format that cannot hold an example says so, with the count and
the reason, before anything is downloaded; the rest downloads from the same page."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from curation.core.services import example_create
from curation.models import Project
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "track_order",
            "description": "Where an order is",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
        },
    }
]
TOOL_CHAT = [
    {"role": "user", "content": "Where is KC-20417?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "track_order", "arguments": '{"order": "KC-20417"}'},
            }
        ],
    },
    {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_0"},
    {"role": "assistant", "content": "It shipped today."},
]


def test_alpaca_says_it_leaves_out_a_tool_call_conversation_before_the_download(page, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    admin = project.memberships.get(user__username="demo-admin").user
    example_create(project=project, user=admin, messages=TOOL_CHAT, tools=TOOLS)
    sign_in(page, live_server.url, "demo-admin")

    page.goto(f"{live_server.url}/p/{project.slug}/export/")
    page.select_option("select[name=format]", "alpaca")
    # Approved examples only by default: the new one needs review, so it is ticked in.
    assert page.locator("input[name=status][value=approved]").is_checked()
    page.check("input[name=status][value=needs_review]")
    # The preview follows the options before anything is downloaded.
    page.wait_for_selector("#export-cannot-hold:has-text('tool')")
    assert "Alpaca" in page.locator("#export-total").inner_text()
    assert page.locator("#export-records").inner_text().lstrip().startswith("[")
    page.screenshot(path="/tmp/h5shots/export-preview.png", full_page=True)
    page.click("#export-form button[type=submit]")
    notice = page.locator("#export-skipped")
    notice.wait_for()
    screenshot(page, "skipped")

    text = notice.inner_text()
    assert "1 example cannot be written in this format" in text and "tool" in text
    with page.expect_download() as download:
        page.click("#export-skipped a.button")
    assert download.value.suggested_filename.endswith(".json")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_preview_says_which_labels_came_from_rules_with_shikomi_fields(page, live_server, screenshot, language):
    from curation.models import Example, RuleRun, UserSettings, WeakLabel

    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    first = Example.objects.filter(project=project, status="approved", label__isnull=False).order_by("pk").first()
    run = RuleRun.objects.create(project=project, number=7, status=RuleRun.Status.DONE)
    weak = WeakLabel.objects.create(
        run=run, example=first, label=first.label, confidence=0.88, accepted_from=WeakLabel.Source.LABEL_MODEL
    )
    Example.objects.filter(pk=first.pk).update(weak_label=weak)
    admin = project.memberships.get(user__username="demo-admin").user
    UserSettings.objects.update_or_create(user=admin, defaults={"language": language})
    sign_in(page, live_server.url, "demo-admin")

    page.goto(f"{live_server.url}/p/{project.slug}/export/")
    page.select_option("select[name=format]", "openai")
    assert "label_source" not in page.locator("#export-records").inner_text()
    page.check("input[name=shikomi_fields]")
    records = page.locator("#export-records:has-text('label_source')")
    records.wait_for()
    screenshot(page, language)

    text = records.inner_text()
    assert '"label_source": {"source": "rules", "rule_set": 7, "model": "label_model", "probability": 0.88}' in text
    assert '"label_source": {"source": "person"}' in text
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
