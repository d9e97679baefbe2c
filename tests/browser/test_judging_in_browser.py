"""A reviewer judges an evaluation's answers blind in Chromium; nothing the browser sends or
loads names the models, and the verdict appears on the evaluation page."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from curation.models import Project
from tests.browser.conftest import sign_in
from training.evaluation.judging import comparisons_prepare
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
    page.goto(base + "/p/kumo-support/")
    page.get_by_role("link", name="Judge", exact=True).click()
    page.get_by_role("link", name="Judge", exact=True).last.click()
    page.wait_for_selector("#judge-form")
    answers = page.locator(".answers").inner_text()
    assert "<script>alert(1)</script>" in answers  # shown as text, never run
    page.get_by_label("A is better").check()
    page.get_by_label("Tone and fit with our voice: A").select_option("4")
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
