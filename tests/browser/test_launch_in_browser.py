"""Launch limited to approved examples, in Chromium: the count table shows approved examples
apart from those that need review, follows the "Use only approved examples" option as it is
ticked and unticked, and the run launched with it freezes only the approved examples."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from curation.models import Example
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.training.conftest import add
from training.models import TrainingRun
from training.runs.services import run_dir

pytestmark = pytest.mark.browser


def used(page) -> tuple[str, str]:
    row = page.locator("#used-counts")
    return row.locator("[data-split=train]").inner_text(), row.locator("[data-split=validation]").inner_text()


def test_launch_limited_to_approved(browser, live_server, project, users, screenshot, monkeypatch, settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    queued: list[int] = []
    monkeypatch.setattr("training.runs.tasks.training_run_task", queued.append)  # no training here
    admin = users["admin"]
    approved = []
    for i in range(3):
        example = add(project, admin, f"Approved question {i}?", "train")
        Example.objects.filter(pk=example.pk).update(status=Example.Status.APPROVED)
        approved.append(example.pk)
    for i in range(4):
        add(project, admin, f"Unreviewed question {i}?", "train")  # needs review
    validation = add(project, admin, "Approved validation?", "validation")
    Example.objects.filter(pk=validation.pk).update(status=Example.Status.APPROVED)

    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, live_server.url, "adam", PASSWORD)
    page.goto(live_server.url + reverse("run_new", args=[project.slug]))

    option = page.get_by_label("Use only approved examples")
    assert option.is_checked()  # on for a new run
    approved_row = page.locator("tr[data-status=approved]")
    review_row = page.locator("tr[data-status=needs_review]")
    assert approved_row.locator("td.num").first.inner_text() == "3" and "used" in approved_row.inner_text()
    assert review_row.locator("td.num").first.inner_text() == "4" and "left out" in review_row.inner_text()
    assert used(page) == ("3", "1")
    screenshot(page, "approved-only")

    option.uncheck()
    page.wait_for_function("() => document.querySelector('#used-counts [data-split=train]').textContent === '7'")
    assert "used" in page.locator("tr[data-status=needs_review]").inner_text()
    assert "7 training examples" in page.locator("#readiness").inner_text()
    screenshot(page, "everything")

    option.check()
    page.wait_for_function("() => document.querySelector('#used-counts [data-split=train]').textContent === '3'")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#run-config")
    run = TrainingRun.objects.get()
    assert queued == [run.pk] and (run.train_count, run.validation_count) == (3, 1)
    frozen = json.loads((run_dir(run) / "data.json").read_text(encoding="utf-8"))
    assert [row["id"] for row in frozen["train"]] == approved
    assert run.snapshot["approved_only"] is True
    assert problems == []
