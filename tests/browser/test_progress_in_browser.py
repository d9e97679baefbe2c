"""Live per-item progress with an estimate on generation: the generation task (run in a worker
thread here; tests/curation/test_progress.py runs it in a real Huey consumer) makes drafts from a
slow OpenAI-compatible server started by the test; the job page counts the prompts one by one
with the time spent and an estimate of the time left, then shows the drafts, without a reload."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from playwright.sync_api import expect

from curation.connections.services import connection_create
from curation.generation import tasks
from curation.generation.tasks import synthetic_start
from curation.generation.templates import template_save
from curation.models import GenerationJob
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.curation.test_openai_backend import completion, server  # noqa: F401

pytestmark = pytest.mark.browser


def test_live_per_item_progress_with_an_estimate_on_generation(
    page,
    live_server,
    server,  # noqa: F811
    project,
    users,
    screenshot,
    monkeypatch,
):
    gate = threading.Lock()

    def slowly(number: int, body: dict[str, Any]):
        with gate:  # one answer at a time, each a while in coming
            time.sleep(0.8)
        last = body["messages"][-1]["content"]
        if "Topic:" in last:
            return 200, {}, completion(f"Where is parcel {number}?")
        return 200, {}, completion(f"It left the warehouse today ({number}).")

    server.respond = slowly
    base = live_server.url
    sign_in(page, base, users["reviewer"].username, PASSWORD)
    template = template_save(
        project=project, user=users["reviewer"], name="parcels", text="Write a customer message.\nTopic: {topic}"
    )
    connection = connection_create(
        project=project, user=users["admin"], name="slow", kind="openai", base_url=server.url, model="m", timeout=10
    )
    task = tasks.generation_job_task
    monkeypatch.setattr(tasks, "generation_job_task", lambda job_id: None)  # queued: run below
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=3, backend={"connection": connection.pk}
    )

    def work() -> None:
        try:
            task.call_local(job.pk)
        finally:
            db_connection.close()

    worker = threading.Thread(target=work, daemon=True)
    page.goto(base + reverse("generate_job", args=[project.slug, job.pk]))
    page.evaluate("window.notReloaded = true")
    worker.start()
    status = page.locator("#job-body .progress-text")
    expect(status).to_have_attribute("aria-live", "polite")

    # One prompt's worth of replies in: "1 of 3", the time spent and an estimate of the time left.
    expect(status).to_contain_text("1 of 3 prompts", timeout=30_000)
    expect(status).to_contain_text(re.compile(r"\d+ s elapsed · about \d+ (s|min) left"))
    assert float(page.locator("#job-body progress").get_attribute("value")) > 0
    screenshot(page, "running")
    assert GenerationJob.objects.get(pk=job.pk).status == GenerationJob.Status.RUNNING

    # At the end the same page shows the drafts, without a reload, and no estimate any more.
    expect(page.locator("#job-drafts tbody tr")).to_have_count(3, timeout=30_000)
    expect(status).to_contain_text("3 of 3 prompts, 3 drafts made")
    expect(status).not_to_contain_text("left")
    expect(page.locator("#job-drafts")).to_contain_text("It left the warehouse today")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "done")
    worker.join(timeout=30)
