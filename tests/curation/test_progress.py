"""Progress people can trust on long tasks (curation/core/progress.py): items done, time spent and
an estimate of the time left; throttled writes that never undo other fields; and a generation
job run by a real Huey consumer that reports its items as the model's replies come back."""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from curation.connections.services import connection_create
from curation.core.progress import ProgressRecorder, duration_text, estimate_text, progress_info, work_progress
from curation.generation.jobs import CountingBackend, ReplyProgress, replies_per_item
from curation.generation.tasks import synthetic_start
from curation.generation.templates import template_save
from curation.models import GenerationJob
from llm.interface import Generation
from tests.conftest import wait_for
from tests.curation.test_openai_backend import completion, server  # noqa: F401

T0 = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


# --- the computation ----------------------------------------------------------------------------


def test_no_estimate_until_an_item_is_done_then_the_rate_since_the_start():
    waiting = progress_info(processed=0, total=40, started_at=None)
    assert waiting["elapsed_seconds"] is None and waiting["eta_seconds"] is None
    assert waiting["text"] == "0 of 40"

    started = progress_info(processed=0, total=40, started_at=T0, now=at(20))
    assert started["elapsed_seconds"] == 20 and started["eta_seconds"] is None
    assert started["text"] == "0 of 40 · 20 s elapsed · estimating the time left…"

    # 12 items in 65 s: 28 left at the same rate take about 152 s.
    going = progress_info(processed=12, total=40, started_at=T0, now=at(65))
    assert going["percent"] == 30.0 and going["elapsed_seconds"] == 65
    assert going["eta_seconds"] == 152
    assert going["text"] == "12 of 40 · 1 min 5 s elapsed · about 3 min left"
    assert (going["counted"], going["timing"]) == ("12 of 40", "1 min 5 s elapsed · about 3 min left")


def test_finished_work_shows_the_time_it_took_and_no_estimate():
    done = progress_info(processed=40, total=40, started_at=T0, finished_at=at(3725), finished=True, now=at(9999))
    assert done["elapsed_seconds"] == 3725 and done["eta_seconds"] is None and done["percent"] == 100.0
    assert done["text"] == "40 of 40 · 1 h 2 min elapsed"


def test_a_fraction_stands_in_for_an_unknown_total_and_a_known_estimate_wins():
    reading = progress_info(processed=1200, total=0, fraction=0.25, started_at=T0, now=at(10))
    assert reading["percent"] == 25.0 and reading["eta_seconds"] == 30
    assert reading["text"] == "25% · 10 s elapsed · about 30 s left"
    trained = progress_info(processed=10, total=100, started_at=T0, now=at(10), eta_seconds=42.2)
    assert trained["eta_seconds"] == 43


@pytest.mark.parametrize(
    ("seconds", "elapsed", "left"),
    [
        (0, "0 s", "about 5 s"),
        (7, "7 s", "about 10 s"),
        (59, "59 s", "about 60 s"),
        (95, "1 min 35 s", "about 2 min"),
        (3599, "59 min 59 s", "about 60 min"),
        (7260, "2 h 1 min", "about 2 h 1 min"),
    ],
)
def test_durations_read_as_people_say_them(seconds, elapsed, left):
    assert duration_text(seconds) == elapsed
    assert estimate_text(seconds) == left


# --- the throttled writer -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def job(project, users) -> GenerationJob:
    return GenerationJob.objects.create(
        project=project, kind=GenerationJob.Kind.SYNTHETIC, total=100, status=GenerationJob.Status.RUNNING
    )


def test_fast_items_write_at_most_once_per_interval_and_flush_writes_the_last(job):
    clock = Clock()
    record = ProgressRecorder(GenerationJob, job.pk, interval=0.5, clock=clock)
    for n in range(1, 51):  # 50 items in 0.49 s
        clock.now = n * 0.01
        record(n)
    assert record.writes == 1
    assert GenerationJob.objects.get(pk=job.pk).processed == 1
    clock.now = 0.6
    record(51)
    assert record.writes == 2 and GenerationJob.objects.get(pk=job.pk).processed == 51
    record(52)
    record.flush()
    assert GenerationJob.objects.get(pk=job.pk).processed == 52


def test_slow_items_are_each_written(job):
    clock = Clock()
    record = ProgressRecorder(GenerationJob, job.pk, interval=0.5, clock=clock)
    for n in range(1, 6):
        clock.now = n * 2.0
        record(n)
        assert GenerationJob.objects.get(pk=job.pk).processed == n
    assert record.writes == 5


def test_a_write_touches_only_processed_and_never_goes_back(job):
    record = ProgressRecorder(GenerationJob, job.pk, interval=0)
    record(10)
    # Meanwhile the job is cancelled and its batch end writes a higher count.
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.CANCELLED, cancel_requested=True, processed=16
    )
    record(12)
    job.refresh_from_db()
    assert (job.status, job.cancel_requested, job.processed) == (GenerationJob.Status.CANCELLED, True, 16)


def test_the_progress_of_a_job_row(job):
    GenerationJob.objects.filter(pk=job.pk).update(
        processed=25, started_at=timezone.now() - datetime.timedelta(seconds=50)
    )
    info = work_progress(GenerationJob.objects.get(pk=job.pk))
    assert info["processed"] == 25 and info["total"] == 100 and info["percent"] == 25.0
    assert 145 <= info["eta_seconds"] <= 160


# --- generation: replies counted as items ------------------------------------------------------


class Echo:
    """A backend that answers several conversations at once, as a server does."""

    name = "echo"
    concurrency = 3

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate_detailed(self, conversations, **options: Any) -> list[Generation]:
        self.batches.append(len(conversations))
        return [Generation(f"answer to {c[-1]['content']}") for c in conversations]


def test_a_backend_that_answers_concurrently_is_counted_reply_by_reply(job, project):
    seen: list[int] = []

    class Seen(ProgressRecorder):
        def __call__(self, processed: int, *, force: bool = False) -> None:
            seen.append(processed)

    job.config = {"candidates": 1, "critique": False}
    job.total = 8
    job.save()
    progress = ReplyProgress(job, recorder=Seen(GenerationJob, job.pk))
    assert replies_per_item(job) == 2  # a request, then an answer
    inner = Echo()
    replies = CountingBackend(inner, progress).generate_detailed(
        [[{"role": "user", "content": str(i)}] for i in range(8)]
    )
    assert [r.text for r in replies] == [f"answer to {i}" for i in range(8)]  # in order
    assert inner.batches == [1] * 8  # one conversation per call
    assert sorted(seen) == [0, 1, 1, 2, 2, 3, 3, 4]  # 8 requests are 4 prompts' worth of work


def test_replies_per_item_follows_the_job_settings(job, project):
    job.config = {"candidates": 3, "critique": True}
    assert replies_per_item(job) == 1 + 3 * 2
    job.kind = GenerationJob.Kind.AUGMENT
    assert replies_per_item(job) == 1


@pytest.mark.django_db(transaction=True)
def test_a_generation_job_in_a_real_worker_reports_each_item_with_an_estimate(
    huey_consumer,
    server,  # noqa: F811
    project,
    users,
):
    """A server that answers one request at a time, slowly: the job's row and its API answer show
    items done one by one, and an estimate, long before the job ends."""
    gate = threading.Lock()

    def slowly(number: int, body: dict[str, Any]):
        with gate:
            time.sleep(0.6)
        last = body["messages"][-1]["content"]
        return 200, {}, completion("What is my refund?" if "Topic:" in last else f"Answer to {last}")

    server.respond = slowly
    template = template_save(project=project, user=users["reviewer"], name="t", text="Write a message.\nTopic: {topic}")
    connection = connection_create(
        project=project, user=users["admin"], name="slow", kind="openai", base_url=server.url, model="m", timeout=10
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=3, backend={"connection": connection.pk}
    )
    api = APIClient()
    api.force_authenticate(users["reviewer"])
    url = reverse("api_generation_job", args=[project.slug, job.pk])
    seen: list[tuple[str, int, Any]] = []

    def finished() -> bool:
        answer = api.get(url).json()
        seen.append((answer["status"], answer["processed"], answer["eta_seconds"]))
        return answer["status"] in ("done", "failed")

    wait_for(finished, timeout=120, interval=0.1)
    assert seen[-1][:2] == ("done", 3), seen
    running = [(n, eta) for status, n, eta in seen if status == "running"]
    counts = sorted({n for n, _eta in running})
    assert {1, 2} <= set(counts), seen  # items, not one batch of 3 at the end
    assert any(eta is not None and eta > 0 for n, eta in running if n < 3), seen
    assert all(eta is None for n, eta in running if n == 0), seen


# --- the run page's evaluations ------------------------------------------------------------------


def test_the_run_page_polls_its_evaluation_until_it_is_done_then_shows_the_result(client, project, users):
    from tests.training.conftest import make_run
    from training.models import Evaluation

    run = make_run(project, users["admin"], finished_at=timezone.now())
    evaluation = Evaluation.objects.create(
        run=run, status=Evaluation.Status.RUNNING, total=40, processed=12, started_at=timezone.now()
    )
    client.force_login(users["reviewer"])
    url = reverse("run_evaluations", args=[project.slug, run.pk])
    page = client.get(reverse("run_detail", args=[project.slug, run.pk])).content.decode()
    assert f'hx-get="{url}" hx-trigger="load"' in page  # the page fetches its evaluations at once

    part = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in part and "12 of 40" in part and 'aria-live="polite"' in part

    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.DONE, processed=40, overall={"tuned": {"bleu": 31.5}}, finished_at=timezone.now()
    )
    part = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-get" not in part  # done: no more polling
    assert 'id="run-evaluation-summary"' in part and "31.5" in part
