"""A reviewer judges an evaluation's answers blind in Chromium; nothing the browser sends or
loads names the models, and the verdict appears on the evaluation page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from curation.models import Project
from tests.browser.conftest import sign_in
from training.evaluation.judging import comparisons_prepare, my_judgment
from training.models import EvalSample, Evaluation, Judgment, TrainingRun

pytestmark = pytest.mark.browser

SYSTEM_WORDS = ("tuned", "few_shot", "few-shot", "baseline", "opponent", "base")


def test_a_reviewer_judges_blind_and_the_verdict_changes(page, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    run = TrainingRun.objects.create(project=project, number=99, status=TrainingRun.Status.DONE, output_dir="/x")
    evaluation = Evaluation.objects.create(run=run, status=Evaluation.Status.DONE, total=1, processed=1)
    EvalSample.objects.create(
        evaluation=evaluation,
        prompt="Where is my parcel?",
        reference="It left our warehouse yesterday.",
        outputs={
            "base": "Parcels are things.",
            "few_shot": "I cannot say.",
            "tuned": "It left our warehouse yesterday <script>alert(1)</script>.",
        },
    )
    comparisons_prepare(evaluation)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url} {request.post_data or ''}"))

    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    sent.clear()
    page.goto(base + reverse("judge_home", args=["kumo-support"]))
    page.locator("#judge-evaluations").get_by_role("link", name="Judge", exact=True).last.click()
    page.wait_for_selector("#judge-form")
    answers = page.locator(".answers").inner_text()
    assert "<script>alert(1)</script>" in answers  # shown as text, never run
    page.get_by_label("A is better").check()
    page.get_by_role("radiogroup", name="Tone and fit with our voice: A").get_by_label("4", exact=True).check()
    page.fill("#judge-note", "A reads more like us.")
    screenshot(page, "judging")
    page.get_by_role("button", name="Save and next").click()
    page.wait_for_selector("#judge-form")  # the second pair
    page.get_by_label("Equally good (tie)").check()
    page.get_by_role("button", name="Save and next").click()
    page.wait_for_selector("text=You have judged every pair there is.")

    for line in sent:
        method, url, body = line.split(" ", 2)
        body = re.sub(r"csrfmiddlewaretoken=[^&]*", "", body)  # random: it could spell anything
        if "/static/" in url:
            continue
        assert not any(word in (url + " " + body).lower() for word in SYSTEM_WORDS), line
    judgments = Judgment.objects.order_by("pk")
    assert [j.choice for j in judgments] == ["a", "tie"] and judgments[0].note == "A reads more like us."

    page.goto(base + f"/p/kumo-support/evaluations/{evaluation.pk}/")
    verdicts = page.locator(".verdict").all_inner_texts()
    assert any("on 1 judged pair" in text for text in verdicts)
    screenshot(page, "results")


def near_identical_pair() -> tuple[Project, Evaluation]:
    """An evaluation of one pair whose answers differ in two words."""
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    run = TrainingRun.objects.create(project=project, number=98, status=TrainingRun.Status.DONE, output_dir="/x")
    evaluation = Evaluation.objects.create(run=run, status=Evaluation.Status.DONE, total=1, processed=1)
    EvalSample.objects.create(
        evaluation=evaluation,
        prompt="When does my parcel arrive?",
        outputs={
            "base": "Your parcel left our warehouse today and arrives on Monday.",
            "tuned": "Your parcel left our warehouse yesterday and arrives on Friday.",
        },
    )
    comparisons_prepare(evaluation)
    return project, evaluation


def test_judging_by_keyboard_with_the_differences_highlighted(page, live_server, screenshot):
    project, evaluation = near_identical_pair()
    comparison = evaluation.comparisons.get()
    reviewer = get_user_model().objects.get(username="demo-reviewer")
    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    page.goto(base + reverse("judge_pair", args=[project.slug, comparison.key]))

    # Nearly the same answers: the words only one side has are highlighted, on both sides.
    toggle = page.get_by_label("Highlight the differences")
    assert toggle.is_checked()
    marks = {side: page.locator(f"#answer-{side} mark.diff").all_inner_texts() for side in "ab"}
    assert sorted(marks["a"] + marks["b"]) == ["Friday", "Monday", "today", "yesterday"]
    assert {frozenset(marks["a"]), frozenset(marks["b"])} == {
        frozenset({"today", "Monday"}),
        frozenset({"yesterday", "Friday"}),
    }
    assert page.locator("#judge-keys").is_visible()
    screenshot(page, "diff")

    # Switched off, the plain texts show, and the choice is remembered on the next page.
    toggle.uncheck()
    assert page.locator("mark.diff").first.is_hidden() and page.locator("#answer-a pre[data-answer]").is_visible()
    page.reload()
    assert not page.get_by_label("Highlight the differences").is_checked()
    assert page.locator("mark.diff").first.is_hidden()
    page.keyboard.press("d")  # and on again by its key
    assert page.get_by_label("Highlight the differences").is_checked() and page.locator("mark.diff").first.is_visible()

    # Keys do nothing while typing a note: the letters go into the note.
    page.locator("#judge-note").click()
    page.keyboard.type("b is a better fit, 4 stars; a tie? no")
    page.keyboard.press("Escape")
    assert page.locator("input[name=choice]:checked").count() == 0
    assert page.locator("[data-score] input:checked:not([value=''])").count() == 0

    page.keyboard.press("b")
    page.keyboard.press("4")  # the outlined box: the first criterion, answer A
    assert page.get_by_label("B is better").is_checked()
    first = page.get_by_role("radiogroup", name="Use of domain terms: A")
    assert first.get_by_label("4", exact=True).is_checked()
    # The outline moves on to answer B of the same criterion.
    assert "current" in (page.get_by_role("radiogroup", name="Use of domain terms: B").get_attribute("class") or "")
    screenshot(page, "keys")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=You have judged every pair there is.")

    mine = my_judgment(comparison, reviewer)
    assert mine["choice"] == "b" and mine["note"] == "b is a better fit, 4 stars; a tie? no"
    assert mine["scores"] == {"terms": {"a": 4, "b": None}}


def test_the_rubric_is_reached_by_tab_and_the_arrow_keys(page, live_server):
    project, evaluation = near_identical_pair()
    comparison = evaluation.comparisons.get()
    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    page.goto(base + reverse("judge_pair", args=[project.slug, comparison.key]))
    page.get_by_role("radiogroup", name="Use of domain terms: A").get_by_label("No score").focus()
    page.keyboard.press("Tab")  # to answer B of the same criterion
    page.keyboard.press("5")  # scores it and moves on to the next criterion's answer A
    page.keyboard.press("ArrowDown")  # the criterion below, same answer
    page.keyboard.press("2")
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=You have judged every pair there is.")
    mine = my_judgment(comparison, get_user_model().objects.get(username="demo-reviewer"))
    assert mine["choice"] == "tie"
    assert mine["scores"] == {"terms": {"a": None, "b": 5}, "consistency": {"a": 2, "b": None}}


def test_the_judging_page_fits_a_narrow_window_in_japanese(page, live_server, screenshot):
    project, evaluation = near_identical_pair()
    comparison = evaluation.comparisons.get()
    base = live_server.url
    sign_in(page, base, "demo-reviewer")
    page.select_option("select[name=language]", "ja")
    page.wait_for_selector("html[lang=ja]")
    for width in (768, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(base + reverse("judge_pair", args=[project.slug, comparison.key]))
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"ja-{width}")
