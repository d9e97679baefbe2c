"""The launch form shows the common settings and only the chosen method's: switching the
method switches the sections, and a launch goes through with another method's hidden field
left invalid (a hidden field is disabled, so its bounds cannot stop the form)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.training.conftest import add
from tests.training.test_views import approved
from training.models import TrainingRun

pytestmark = pytest.mark.browser

ADAPTER = "section[data-methods='lora qlora dpo']"
VIRTUAL_TOKENS = "section[data-methods='prefix prompt ptuning']"
DPO = "section[data-methods='dpo']"
BALANCE = "#field-balance"


def height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def test_the_run_form_shows_only_the_chosen_methods_settings(
    browser, live_server, project, users, screenshot, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr("training.runs.tasks.training_run_task", queued.append)  # no training here
    for text in ("Where is my parcel?", "Can I pay by card?"):
        approved(add(project, users["admin"], text, "train"))  # a new run takes approved examples only
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, live_server.url, "adam", PASSWORD)
    page.goto(live_server.url + reverse("run_new", args=[project.slug]))

    # The quick CPU demo is LoRA: the adapter settings, not those of prompt tuning or DPO.
    assert page.locator("select[name=method]").input_value() == "lora"
    assert page.locator(ADAPTER).is_visible() and page.locator(BALANCE).is_visible()
    assert page.locator(VIRTUAL_TOKENS).is_hidden() and page.locator(DPO).is_hidden()
    assert page.locator("input[name=learning_rate]").is_visible()
    print(f"\nrun form height at 1366x900, LoRA (default): {height(page)} px")
    screenshot(page, "lora")

    page.select_option("select[name=method]", "prompt")
    assert page.locator(VIRTUAL_TOKENS).is_visible()
    assert page.locator(ADAPTER).is_hidden() and page.locator(DPO).is_hidden()
    assert page.locator("input[name=lora_rank]").is_disabled()
    print(f"run form height, prompt tuning: {height(page)} px")

    page.select_option("select[name=method]", "dpo")
    assert page.locator(DPO).is_visible() and page.locator(ADAPTER).is_visible()
    assert page.locator(VIRTUAL_TOKENS).is_hidden() and page.locator(BALANCE).is_hidden()
    print(f"run form height, DPO: {height(page)} px")
    screenshot(page, "dpo")

    page.select_option("select[name=method]", "full")
    assert page.locator(ADAPTER).is_hidden() and page.locator(VIRTUAL_TOKENS).is_hidden()
    assert page.locator(DPO).is_hidden() and page.locator(BALANCE).is_visible()
    print(f"run form height, full fine-tuning: {height(page)} px")
    screenshot(page, "full")

    # A value out of LoRA's bounds, typed before switching to full fine-tuning, stops nothing.
    page.select_option("select[name=method]", "lora")
    page.fill("input[name=lora_rank]", "9999")
    page.select_option("select[name=method]", "full")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#run-config")
    run = TrainingRun.objects.get()
    assert run.method == "full" and run.config["lora_rank"] == 8 and queued == [run.pk]
    config = page.locator("#run-config").inner_text()
    assert "Learning rate" in config and "LoRA rank" not in config and "DPO beta" not in config
    screenshot(page, "run")
    assert problems == []
