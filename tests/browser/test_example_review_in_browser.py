"""The review queue for examples that need review, by keyboard in Chromium: approve with a,
relabel with a number key then approve, edit with e (the caret at the end of the answer,
Ctrl+Enter saves and approves), skip with j, reject with r; and the page in Japanese at
768 px is no wider than the window."""

from __future__ import annotations

import pytest
from django.urls import reverse

from curation.core.services import example_create
from curation.models import Example, ExampleRevision, UserSettings
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def chat(text: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def showing(page, example: Example) -> None:
    page.wait_for_selector(f'#example-review[data-example="{example.pk}"]')


def test_the_review_queue_by_keyboard(page, live_server, project, users, screenshot):
    admin = users["admin"]
    first, second, skipped, edited, last = (
        example_create(project=project, user=admin, messages=chat(q, a), label=label, source=Example.Source.IMPORTED)
        for q, a, label in (
            ("Where is my parcel?", "On its way.", "shipping"),
            ("I was charged twice.", "We refund it.", "shipping"),
            ("Skip me?", "Later.", None),
            ("Do you ship abroad?", "Yes, to 30 countries", "shipping"),
            ("Buy now, pay never?", "Sure!", None),
        )
    )
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, live_server.url, "rhea", PASSWORD)
    page.goto(live_server.url + reverse("example_review_queue", args=[project.slug]))
    showing(page, first)
    assert "Imported" in page.locator("#review-why").inner_text()
    assert page.locator("input[name=label][value=shipping]").is_checked()  # the current label, to confirm
    screenshot(page, "first")

    page.keyboard.press("a")  # approve as it is
    showing(page, second)
    assert "approved" in page.locator(".messages").inner_text()

    page.keyboard.press("1")  # billing has key 1
    assert page.locator("input[name=label][value=billing]").is_checked()
    screenshot(page, "relabeled")
    page.keyboard.press("a")
    showing(page, skipped)

    page.keyboard.press("j")  # skip to the next
    showing(page, edited)

    page.keyboard.press("e")  # edit: the caret at the end of the last assistant turn
    focused = page.evaluate(
        "() => { const el = document.activeElement; return [el.name, el.closest('li').className, "
        "el.selectionStart, el.value.length]; }"
    )
    assert focused[0] == "content" and "assistant" in focused[1] and focused[2] == focused[3]
    page.keyboard.type(" and Japan.")
    screenshot(page, "editing")
    page.keyboard.press("Control+Enter")
    showing(page, last)

    page.keyboard.press("r")  # reject
    page.wait_for_selector("#review-empty")
    assert "No more examples after the one you skipped" in page.locator("#review-empty").inner_text()
    screenshot(page, "done")

    for example in (first, second, skipped, edited, last):
        example.refresh_from_db()
    assert (first.status, first.label.name) == ("approved", "shipping")
    assert (second.status, second.label.name) == ("approved", "billing")
    assert skipped.status == "needs_review"
    assert edited.status == "approved" and edited.messages[1]["content"] == "Yes, to 30 countries and Japan."
    assert last.status == "rejected"
    reviewed = ExampleRevision.objects.filter(user=users["reviewer"]).values_list("example_id", flat=True)
    assert sorted(reviewed) == sorted([first.pk, second.pk, edited.pk, last.pk])
    assert problems == []


def test_the_review_queue_in_japanese_fits_a_narrow_window(browser, live_server, project, users, screenshot):
    example_create(
        project=project,
        user=users["annotator"],
        messages=chat("荷物はどこですか？" * 20, "配送中です。" * 30),
        label="shipping",
    )
    UserSettings.objects.create(user=users["reviewer"], language="ja")
    page = browser.new_context(viewport={"width": 768, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server.url, "rhea", PASSWORD)
    page.goto(live_server.url + reverse("example_review_queue", args=[project.slug]))
    page.wait_for_selector("html[lang=ja] #example-review")
    screenshot(page, "ja-768")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
