"""Annotators label with the keyboard, edit answers, and never lose text; hostile content
stays text."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from curation.core.services import example_create
from curation.models import Annotation, Example
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def current_example(page) -> int:
    return int(page.locator("#label-form").get_attribute("data-example"))


def test_an_annotator_labels_three_examples_with_the_keyboard_and_edits_an_answer(page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(base + "/p/kumo-support/label/")

    labelled = []
    for _ in range(3):
        example_id = current_example(page)
        labelled.append(example_id)
        page.keyboard.press("3")  # "returns"
        assert page.locator("input[name=label][value=returns]").is_checked()
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => document.querySelector('#label-form').dataset.example !== '{example_id}'")

    for example_id in labelled:
        assert Example.objects.get(pk=example_id).label.name == "returns"
    assert Annotation.objects.filter(example_id__in=labelled, status="submitted").count() == 3

    example_id = current_example(page)
    page.keyboard.press("e")
    answer = page.locator(".turn.assistant textarea").first
    answer.press("Control+End")
    answer.type(" Thank you for your patience.")
    page.wait_for_selector("#autosave-status:has-text('Draft saved')")
    screenshot(page, "autosaved")

    page.reload()
    assert current_example(page) == example_id
    assert page.locator(".turn.assistant textarea").first.input_value().endswith(" Thank you for your patience.")

    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"() => document.querySelector('#label-form')?.dataset.example !== '{example_id}'")
    first_answer = next(m for m in Example.objects.get(pk=example_id).messages if m["role"] == "assistant")
    assert first_answer["content"].endswith(" Thank you for your patience.")


def test_text_typed_while_offline_is_sent_when_the_connection_returns(page, live_server):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(base + "/p/kumo-support/label/")
    example_id = current_example(page)

    page.context.set_offline(True)
    page.locator("textarea[name=note]").fill("written on the train")
    page.wait_for_selector("#autosave-status.error")
    assert Annotation.objects.get(example_id=example_id).note == ""  # only the lease, not the text
    page.context.set_offline(False)
    page.wait_for_selector("#autosave-status:has-text('Draft saved')")

    assert Annotation.objects.get(example_id=example_id).note == "written on the train"
    page.reload()
    assert page.locator("textarea[name=note]").input_value() == "written on the train"


def test_text_in_a_tab_closed_while_offline_comes_back_when_it_is_opened_again(page, live_server):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(base + "/p/kumo-support/label/")
    example_id = current_example(page)
    context = page.context

    context.set_offline(True)
    page.locator("textarea[name=note]").fill("written in a tunnel")
    page.wait_for_selector("#autosave-status.error")
    page.close()
    context.set_offline(False)

    again = context.new_page()
    again.goto(base + "/p/kumo-support/label/")
    again.wait_for_selector("#autosave-status:has-text('Draft saved')")
    assert again.locator("textarea[name=note]").input_value() == "written in a tunnel"
    assert Annotation.objects.get(example_id=example_id).note == "written in a tunnel"


def test_annotators_working_at_once_are_handed_different_examples(new_page, live_server):
    call_command("load_demo")
    base = live_server.url
    annotator, reviewer = new_page(), new_page()
    sign_in(annotator, base, "demo-annotator")
    sign_in(reviewer, base, "demo-reviewer")
    annotator.goto(base + "/p/kumo-support/label/")
    reviewer.goto(base + "/p/kumo-support/label/")
    assert current_example(annotator) != current_example(reviewer)


def test_two_people_editing_the_same_example_see_the_conflict(new_page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    example = Example.objects.filter(project__slug="kumo-support").order_by("id").first()
    first, second = new_page(), new_page()
    sign_in(first, base, "demo-annotator")
    sign_in(second, base, "demo-reviewer")
    for page in (first, second):
        page.goto(f"{base}/p/kumo-support/examples/{example.pk}/")
        page.locator("#edit > summary").click()

    first.locator("#turns .turn.assistant textarea").first.fill("The annotator's answer.")
    first.get_by_role("button", name="Save").click()
    first.wait_for_selector("text=Saved.")
    second.locator("#turns .turn.assistant textarea").first.fill("The reviewer's answer.")
    second.get_by_role("button", name="Save").click()

    second.wait_for_selector(".conflict")
    assert "The annotator's answer." in second.locator(".conflict").inner_text()
    assert second.locator("#turns .turn.assistant textarea").first.input_value() == "The reviewer's answer."
    screenshot(second, "conflict")
    example.refresh_from_db()
    assert example.messages[1]["content"] == "The annotator's answer."

    second.get_by_role("button", name="Save").click()  # after merging, the save goes through
    second.wait_for_selector("text=Saved.")
    example.refresh_from_db()
    assert example.messages[1]["content"] == "The reviewer's answer." and example.version == 3


def test_hostile_content_is_shown_as_text_and_never_runs(page, live_server):
    call_command("load_demo")
    hostile = (
        '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
        '<a href="javascript:window.pwned=3">click</a> {{ request.user.password }} {% csrf_token %}'
    )
    example = example_create(
        project=Example.objects.first().project,
        user=None,
        messages=[{"role": "user", "content": hostile}, {"role": "assistant", "content": hostile}],
        metadata={"note": hostile},
    )
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    base = live_server.url
    sign_in(page, base, "demo-admin")
    for path in ("/p/kumo-support/examples/", f"/p/kumo-support/examples/{example.pk}/"):
        page.goto(base + path)
        assert page.evaluate("window.pwned") is None
        assert page.locator("a[href^='javascript:']").count() == 0
    page.goto(base + f"/p/kumo-support/examples/{example.pk}/")
    assert "<script>window.pwned = 1</script>" in page.locator(".chat:not(.editor)").inner_text()
    assert "{{ request.user.password }}" in page.locator(".chat:not(.editor)").inner_text()
    # In the editor the text is the textarea's value, character for character.
    assert page.locator("#turns textarea").first.input_value() == hostile
    page.goto(base + "/p/kumo-support/label/")
    assert page.evaluate("window.pwned") is None
    assert not dialogs
