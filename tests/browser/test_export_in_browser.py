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
