"""A person edits a tool call in the browser: the arguments are checked against the function's
schema as they type, the error shows next to the field, and once fixed the save keeps every
part of the conversation (calls, results, reasoning, weights)."""

from __future__ import annotations

import json

import pytest

from curation.core.services import example_create
from curation.models import Example
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.curation.test_chat_editor_post import WEATHER

pytestmark = pytest.mark.browser

MESSAGES = [
    {"role": "user", "content": "What is the weather in Kyoto?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "The user wants the weather in Kyoto; call get_weather.",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}}
        ],
        "weight": 0,
    },
    {"role": "tool", "content": '{"sky": "sunny", "temperature": 21}', "tool_call_id": "call_0"},
    {"role": "assistant", "content": "It is sunny in Kyoto, 21 °C. <script>alert(1)</script>"},
]


@pytest.fixture
def calling(project, users) -> Example:
    return example_create(project=project, user=users["annotator"], messages=MESSAGES, tools=[WEATHER])


def test_a_schema_error_shows_next_to_the_arguments_and_the_fixed_call_is_saved(
    page, live_server, project, calling, screenshot
):
    base = live_server.url
    sign_in(page, base, "annie", PASSWORD)
    page.goto(f"{base}/p/{project.slug}/examples/{calling.pk}/")
    page.locator("#edit > summary").click()

    card = page.locator("#turns > .turn").nth(1).locator("fieldset.call")
    arguments = card.locator("textarea.call-arguments")
    error = card.locator(".call-error")
    assert card.locator("select.call-function").input_value() == "get_weather"
    assert arguments.input_value() == '{"city": "Kyoto"}'

    arguments.fill('{"city": 5}')
    page.wait_for_function("() => document.querySelector('.call-error').textContent.includes('not of type')")
    assert error.inner_text() == "$.city: 5 is not of type 'string'"
    assert arguments.get_attribute("aria-invalid") == "true"
    assert arguments.get_attribute("aria-describedby") == error.get_attribute("id")
    page.locator("#turns > .turn").nth(1).locator("details.reasoning > summary").click()
    screenshot(page, "schema-error")

    arguments.fill('{"city": "Osaka"}')
    page.wait_for_function("() => document.querySelector('.call-error').textContent === ''")
    assert arguments.get_attribute("aria-invalid") == "false"
    screenshot(page, "fixed")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages li:has-text('Saved.')")

    calling.refresh_from_db()
    assert calling.version == 2
    call = MESSAGES[1]["tool_calls"][0]
    assert calling.messages == [
        MESSAGES[0],
        {**MESSAGES[1], "tool_calls": [{**call, "function": {**call["function"], "arguments": '{"city": "Osaka"}'}}]},
        *MESSAGES[2:],
    ]
    assert json.loads(calling.messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Osaka"}
    assert page.locator("script:has-text('alert(1)')").count() == 0


def test_a_call_is_added_and_a_turn_taken_out_of_training_with_the_keyboard(page, live_server, project, calling):
    base = live_server.url
    sign_in(page, base, "annie", PASSWORD)
    page.goto(f"{base}/p/{project.slug}/examples/{calling.pk}/")
    page.locator("#edit > summary").focus()
    page.keyboard.press("Enter")

    last = page.locator("#turns > .turn").nth(3)
    last.locator("input.train-turn").focus()
    page.keyboard.press("Space")
    page.locator("#turns > .turn").nth(1).locator("button.add-call").focus()
    page.keyboard.press("Enter")
    new_card = page.locator("#turns > .turn").nth(1).locator("fieldset.call").nth(1)
    assert new_card.locator("select.call-function").evaluate("el => el === document.activeElement")
    assert new_card.locator("input.call-id").input_value() == "call_1"
    page.keyboard.press("Tab")  # to the call id
    page.keyboard.press("Tab")  # to "Remove this call"
    page.keyboard.press("Tab")  # to the arguments
    page.keyboard.press("Control+A")
    page.keyboard.type('{"city": "Nara"}')
    page.wait_for_function("() => document.querySelectorAll('.call-error')[1].textContent === ''")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages li:has-text('Saved.')")

    calling.refresh_from_db()
    calls = calling.messages[1]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert calls[1] == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Nara"}'},
    }
    assert calling.messages[3]["weight"] == 0 and calling.messages[1]["weight"] == 0


def test_an_annotator_rates_the_final_answer_and_submits_with_the_calls_intact(
    page, live_server, project, calling, users, screenshot
):
    from curation.models import Annotation

    base = live_server.url
    sign_in(page, base, "annie", PASSWORD)
    page.goto(f"{base}/p/{project.slug}/label/")
    turns = page.locator("#turns > .turn")
    assert turns.nth(0).locator("select[name=turn_rating]").is_hidden()  # a user turn is not rated
    turns.nth(3).locator("select[name=turn_rating]").select_option("4")
    turns.nth(1).locator("details.reasoning > summary").focus()
    page.keyboard.press("Enter")  # opens the reasoning, does not submit the page
    assert turns.nth(1).locator("textarea[name=reasoning]").is_visible()
    page.keyboard.press("1")  # the "billing" shortcut, outside any field
    screenshot(page, "label")
    page.keyboard.press("Control+Enter")  # still submits from the editor's toggles
    page.wait_for_selector("text=All done")

    annotation = Annotation.objects.get(example=calling, annotator=users["annotator"])
    assert annotation.turn_ratings == {"3": 4} and annotation.messages is None
    calling.refresh_from_db()
    assert calling.label.name == "billing" and calling.messages == MESSAGES
