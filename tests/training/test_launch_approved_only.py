"""The launch page says how many examples of each status each split holds and which the run
would take; a run takes approved examples only unless told otherwise (the page and the API
alike), and the data it freezes, the data it trains on, holds only those."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from curation.models import Example
from tests.training.conftest import add
from tests.training.test_views import form_data, url
from training.models import TrainingRun
from training.runs.services import run_dir, status_counts, training_run_prepare


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"


def set_status(example: Example, status: str) -> Example:
    Example.objects.filter(pk=example.pk).update(status=status)
    example.refresh_from_db()
    return example


@pytest.fixture
def mixed(project, users) -> dict[str, list[Example]]:
    """Training: 2 approved, 3 need review, 1 draft, 1 rejected; validation: 1 approved, 1 needs
    review; test: 1 approved (never counted here)."""
    admin = users["admin"]
    made: dict[str, list[Example]] = {"approved": [], "needs_review": [], "draft": [], "rejected": []}
    plan = [
        ("train", "approved", 2),
        ("train", "needs_review", 3),
        ("train", "draft", 1),
        ("train", "rejected", 1),
        ("validation", "approved", 1),
        ("validation", "needs_review", 1),
        ("test", "approved", 1),
    ]
    for split, status, n in plan:
        for i in range(n):
            example = set_status(add(project, admin, f"{split} {status} {i}?", split), status)
            if split != "test":
                made[status].append(example)
    return made


def frozen_ids(run: TrainingRun) -> dict[str, list[int]]:
    data = json.loads((run_dir(run) / "data.json").read_text(encoding="utf-8"))
    return {split: [row["id"] for row in data[split]] for split in ("train", "validation")}


def table(html: str) -> dict[str, tuple[int, int, str]]:
    """The count table as {status: (training, validation, used or left out)}."""
    rows = re.findall(
        r'data-status="(\w+)"><th scope="row">[^<]+</th><td class="num">(\d+)</td><td class="num">(\d+)</td>'
        r"<td>(?:<strong>(used)</strong>|<span class=\"muted\">(left out)</span>)",
        html,
    )
    return {status: (int(train), int(validation), used or left) for status, train, validation, used, left in rows}


def used(html: str) -> tuple[int, int]:
    row = html[html.index('id="used-counts"') :]
    train = re.search(r'data-split="train">(\d+)<', row).group(1)
    validation = re.search(r'data-split="validation">(\d+)<', row).group(1)
    return int(train), int(validation)


def test_counts_per_split_and_status_in_one_query(project, mixed, django_assert_num_queries):
    with django_assert_num_queries(1):
        counts = status_counts(project)
    assert counts["train"] == {"approved": 2, "needs_review": 3, "draft": 1, "rejected": 1}
    assert counts["validation"] == {"approved": 1, "needs_review": 1, "draft": 0, "rejected": 0}


def test_the_page_shows_each_status_and_what_a_new_run_would_take(client, project, users, mixed):
    client.force_login(users["admin"])
    response = client.get(url(project, "run_new"))
    html = response.content.decode()
    assert response.context["form"]["approved_only"].value() is True
    assert re.search(r'<input type="checkbox" name="approved_only"[^>]*checked', html)
    assert table(html) == {
        "approved": (2, 1, "used"),
        "needs_review": (3, 1, "left out"),
        "draft": (1, 0, "left out"),
        "rejected": (1, 0, "left out"),
    }
    assert used(html) == (2, 1)
    assert "2 training examples and 1 validation examples will be frozen" in html
    assert "4 examples in these splits need review and are left out" in html
    assert f'href="/p/{project.slug}/review/examples/"' in html


def test_the_table_alone_follows_the_option(client, project, users, mixed):
    client.force_login(users["admin"])
    htmx = {"HTTP_HX_REQUEST": "true"}
    off = client.get(url(project, "run_new") + "?counts=1", **htmx).content.decode()
    assert off.lstrip().startswith('<div id="data-counts"') and "<html" not in off
    assert table(off)["needs_review"] == (3, 1, "used") and table(off)["draft"][2] == "left out"
    assert used(off) == (5, 2)
    on = client.get(url(project, "run_new") + "?counts=1&approved_only=on", **htmx).content.decode()
    assert table(on)["needs_review"][2] == "left out" and used(on) == (2, 1)


def test_a_launch_from_the_page_takes_only_approved_examples(
    client, project, users, mixed, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    assert filled["approved_only"] == "True"
    with django_capture_on_commit_callbacks():
        response = client.post(url(project, "run_new"), filled)
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert (run.train_count, run.validation_count) == (2, 1) and run.snapshot["approved_only"] is True
    approved = [e.pk for e in mixed["approved"]]
    assert frozen_ids(run) == {"train": approved[:2], "validation": approved[2:]}
    assert [pk for pk, _hash in run.snapshot["train"]] == approved[:2]


def test_unticked_it_takes_the_examples_that_need_review_too(
    client, project, users, mixed, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    del filled["approved_only"]  # an unticked box is not sent
    with django_capture_on_commit_callbacks():
        client.post(url(project, "run_new"), filled)
    run = TrainingRun.objects.get()
    assert (run.train_count, run.validation_count) == (5, 2) and run.snapshot["approved_only"] is False
    left_out = {e.pk for e in mixed["draft"] + mixed["rejected"]}
    assert not left_out & set(frozen_ids(run)["train"])


def test_nothing_approved_is_refused_on_the_option(client, project, users):
    for i in range(2):
        add(project, users["admin"], f"Unreviewed {i}?", "train")
    client.force_login(users["admin"])
    response = client.get(url(project, "run_new"))
    assert "No example of the training split would be used" in response.content.decode()
    response = client.post(url(project, "run_new"), form_data(response))
    assert response.status_code == 200 and not TrainingRun.objects.exists()
    [error] = response.context["form"].errors["approved_only"]
    assert "no approved examples (2 are not reviewed yet)" in error
    assert 'id="error-approved_only"' in response.content.decode()


def test_the_api_takes_approved_examples_unless_told_otherwise(
    project, users, mixed, django_capture_on_commit_callbacks
):
    api = APIClient()
    api.force_login(users["admin"])
    with django_capture_on_commit_callbacks():
        response = api.post(f"/api/projects/{project.slug}/runs/", {}, format="json")
        assert response.status_code == 202, response.json()
        body = response.json()
        assert (body["train_count"], body["validation_count"], body["approved_only"]) == (2, 1, True)
        response = api.post(f"/api/projects/{project.slug}/runs/", {"approved_only": False}, format="json")
    body = response.json()
    assert (body["train_count"], body["validation_count"], body["approved_only"]) == (5, 2, False)
    first, second = TrainingRun.objects.order_by("number")
    assert frozen_ids(first)["train"] == [e.pk for e in mixed["approved"][:2]]
    assert len(frozen_ids(second)["train"]) == 5


def test_the_api_names_the_option_when_nothing_is_approved(project, users):
    add(project, users["admin"], "Unreviewed?", "train")
    api = APIClient()
    api.force_login(users["admin"])
    response = api.post(f"/api/projects/{project.slug}/runs/", {}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["approved_only"]


def test_the_service_default_keeps_its_old_meaning(project, users, mixed):
    run = training_run_prepare(project=project, user=users["admin"])
    assert run.train_count == 5 and run.snapshot["approved_only"] is False
