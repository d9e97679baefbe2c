"""The labeling page never misleads: `e` edits the answer (the last assistant turn), no label is
chosen for the annotator, keys typed into a text box stay text, and every label has a key."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from curation.core.services import example_create
from curation.models import Annotation, Example, Label, Membership, Project, Role
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

CONVERSATION = [
    {"role": "system", "content": "You answer for Kumo Coffee."},
    {"role": "user", "content": "Do you ship to Canada?"},
    {"role": "assistant", "content": "Yes, in 7-14 business days."},
    {"role": "user", "content": "And customs?"},
    {"role": "assistant", "content": "Import duties are paid by the recipient."},
]


def project_for_the_annotator(kind: str = Project.Kind.CHAT, **fields) -> Project:
    """A project of its own (labels without shortcuts), the demo annotator in it."""
    call_command("load_demo")
    project = Project.objects.create(name="Keys", slug="keys", kind=kind, **fields)
    for name in ("billing", "shipping", "returns"):
        Label.objects.create(project=project, name=name)  # no shortcut: the page gives 1, 2, 3
    annotator = get_user_model().objects.get(username="demo-annotator")
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    return project


def active_turn(page) -> int:
    """The index of the turn whose text box has the focus (-1 for none)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('#turns > .turn')]"
        ".findIndex((t) => t.querySelector('textarea[name=content]') === document.activeElement)"
    )


def test_e_edits_the_last_answer_and_typed_keys_stay_text(page, live_server, screenshot):
    project = project_for_the_annotator()
    example = example_create(project=project, user=None, messages=CONVERSATION, label="shipping")
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(f"{base}/p/{project.slug}/label/")

    page.keyboard.press("e")
    assert active_turn(page) == 4  # the last assistant turn, not the system or user turn
    caret = page.evaluate("() => [document.activeElement.selectionStart, document.activeElement.value.length]")
    assert caret[0] == caret[1]  # at the end

    # Every shortcut key in this text (s, e, u, g, 1, 2, Enter) is typed, not obeyed.
    page.keyboard.type(" See our guide, section 1 or 2.")
    page.keyboard.press("Enter")
    page.keyboard.type("Thank you.")
    page.wait_for_selector("#autosave-status:has-text('Draft saved')")
    screenshot(page, "typed")
    assert page.locator("input[name=label]:checked").count() == 0
    assert not page.locator("#guidelines").evaluate("d => d.open")

    draft = Annotation.objects.get(example=example)
    assert draft.status == Annotation.Status.DRAFT
    assert draft.messages[4]["content"] == (
        "Import duties are paid by the recipient. See our guide, section 1 or 2.\nThank you."
    )
    assert draft.messages[:4] == CONVERSATION[:4]  # the prompt is untouched

    page.keyboard.press("Escape")  # out of the text box, the keys are shortcuts again
    page.keyboard.press("3")
    assert page.locator("input[name=label][value=returns]").is_checked()
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('#label-form')?.dataset.example !== '{example.pk}'")

    example.refresh_from_db()
    assert example.label.name == "returns"
    assert example.messages[4]["content"].endswith("section 1 or 2.\nThank you.")
    assert example.messages[:4] == CONVERSATION[:4]


def test_no_label_is_chosen_and_enter_alone_submits_nothing(page, live_server, screenshot):
    project = project_for_the_annotator(label_suggestions=Project.LabelSuggestions.SUGGESTION)
    example = example_create(project=project, user=None, messages=CONVERSATION, label="shipping")
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(f"{base}/p/{project.slug}/label/")

    assert page.locator("input[name=label]:checked").count() == 0
    suggestion = page.locator("#label-suggestion")
    assert "shipping" in suggestion.inner_text() and "from a person" in suggestion.inner_text()
    assert [k.inner_text() for k in page.locator(".labels kbd").all()] == ["1", "2", "3"]
    assert page.locator("#key-help").inner_text().startswith("Keys: 1–3 = label")
    screenshot(page, "suggestion")

    page.keyboard.press("Enter")  # nothing chosen, nothing changed: the page refuses, says why
    page.wait_for_selector("p.error[role=alert]")
    assert "Choose a label, edit the text, rate or write a note, or skip." in page.locator("p.error").inner_text()
    assert int(page.locator("#label-form").get_attribute("data-example")) == example.pk
    assert page.locator("input[name=label]:checked").count() == 0
    screenshot(page, "refused")
    example.refresh_from_db()
    assert example.label.name == "shipping" and example.version == 1
    assert not Annotation.objects.filter(example=example, status=Annotation.Status.SUBMITTED).exists()

    page.keyboard.press("2")  # the second label made, though none has a shortcut of its own
    assert page.locator("input[name=label][value=shipping]").is_checked()
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('#label-form')?.dataset.example !== '{example.pk}'")
    answer = Annotation.objects.get(example=example)
    assert answer.status == Annotation.Status.SUBMITTED and answer.label.name == "shipping"


def test_e_edits_the_last_turn_when_no_turn_is_the_assistants(page, live_server):
    project = project_for_the_annotator(kind=Project.Kind.CLASSIFICATION)
    example = example_create(
        project=project,
        user=None,
        messages=[{"role": "system", "content": "Classify."}, {"role": "user", "content": "My card was charged twice"}],
    )
    base = live_server.url
    sign_in(page, base, "demo-annotator")
    page.goto(f"{base}/p/{project.slug}/label/")

    page.keyboard.press("e")
    assert active_turn(page) == 1
    page.keyboard.type(".")
    page.wait_for_selector("#autosave-status:has-text('Draft saved')")
    assert Annotation.objects.get(example=example).messages[1]["content"] == "My card was charged twice."

    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # a classification needs a label
    page.wait_for_selector("p.error[role=alert]")
    assert "Choose a label." in page.locator("p.error").inner_text()
    assert Example.objects.get(pk=example.pk).label is None
