"""Limits that bound any single request, whoever sends it: the size of an example, a search,
a bulk change, a rule's lists, what an upload decodes to, and the jobs a project may queue.
Each is refused with a 400 (or the service's own error) that says what and where."""

from __future__ import annotations

import json
import time
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.generation import ConfigError
from curation.io.imports import example_import, import_job_create
from curation.models import Example, GenerationJob, ImportJob
from curation.rules import spec as S
from curation.rules.spec import RuleError
from tests.conftest import PASSWORD


def api_for(username: str) -> APIClient:
    client = APIClient()
    client.login(username=username, password=PASSWORD)
    return client


def chat(text: str = "Where is my order?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "On its way."}]


def edit_form(example, contents: list[str]) -> dict:
    return {
        "version": example.version,
        "role": ["user", "assistant"] * (len(contents) // 2),
        "content": contents,
        "label": "shipping",
        "split": example.split,
        "status": example.status,
    }


# --- examples obey the import's limits ------------------------------------------------------


def test_an_example_of_100000_messages_is_refused_through_the_api(project, users):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}] * 50_000
    response = api_for("annie").post(f"/api/projects/{project.slug}/examples/", {"messages": messages}, format="json")
    assert response.status_code == 400
    error = response.json()["messages"][0]
    assert "100000 messages" in error and "at most 1000" in error and "SHIKOMI_MAX_MESSAGES" in error
    assert not Example.objects.exists()


def test_a_json_body_over_the_upload_limit_is_refused_before_it_is_parsed(project, users, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    messages = [{"role": "user", "content": "x" * 4_000}, {"role": "assistant", "content": "y" * 4_000}] * 2
    response = api_for("annie").post(f"/api/projects/{project.slug}/examples/", {"messages": messages}, format="json")
    # DRF reads JSON through request.body, so Django's form limit holds for the API too.
    assert response.status_code == 400
    assert not Example.objects.exists()
    # Under the limit the same endpoint still works.
    response = api_for("annie").post(
        f"/api/projects/{project.slug}/examples/", {"messages": messages[:2]}, format="json"
    )
    assert response.status_code == 201, response.content


def test_an_edit_to_100000_messages_is_refused_through_the_api(project, example):
    messages = chat() * 50_000
    response = api_for("annie").patch(
        f"/api/projects/{project.slug}/examples/{example.pk}/", {"version": 1, "messages": messages}, format="json"
    )
    assert response.status_code == 400 and "SHIKOMI_MAX_MESSAGES" in response.json()["messages"][0]
    example.refresh_from_db()
    assert len(example.messages) == 2 and example.version == 1


def test_an_over_size_message_is_refused_through_the_api_naming_its_index(project, example, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 2000
    messages = [{"role": "user", "content": "Where?"}, {"role": "assistant", "content": "x" * 3000}]
    response = api_for("annie").patch(
        f"/api/projects/{project.slug}/examples/{example.pk}/", {"version": 1, "messages": messages}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["messages[1].content"][0]
    assert "at most 2000 bytes" in error and "SHIKOMI_MAX_ROW_BYTES" in error
    example.refresh_from_db()
    assert example.messages[1]["content"] == "On its way."


def test_over_size_metadata_is_refused_through_the_api(project, users, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 2000
    response = api_for("annie").post(
        f"/api/projects/{project.slug}/examples/", {"messages": chat(), "metadata": {"note": "y" * 3000}}, format="json"
    )
    assert response.status_code == 400 and "SHIKOMI_MAX_ROW_BYTES" in response.json()["metadata"][0]


def test_an_over_size_message_is_refused_on_the_page(client, project, example, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 2000
    client.login(username="annie", password=PASSWORD)
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", edit_form(example, ["Where?", "x" * 3000]))
    assert response.status_code == 400
    page = response.content.decode()
    assert "messages[1].content" in page and "SHIKOMI_MAX_ROW_BYTES" in page
    example.refresh_from_db()
    assert example.version == 1


def test_too_many_messages_are_refused_on_the_page(client, project, example, settings):
    settings.SHIKOMI_MAX_MESSAGES = 4
    client.login(username="annie", password=PASSWORD)
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", edit_form(example, ["q", "a"] * 3))
    assert response.status_code == 400
    assert "6 messages; an example may have at most 4" in response.content.decode()
    example.refresh_from_db()
    assert example.version == 1


def test_a_page_edit_of_100000_messages_is_a_400_that_says_why(client, project, example):
    client.login(username="annie", password=PASSWORD)
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", edit_form(example, ["q", "a"] * 50_000))
    assert response.status_code == 400
    assert "too many form fields" in response.content.decode()
    example.refresh_from_db()
    assert example.version == 1


def test_an_import_row_with_too_many_messages_is_reported(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    settings.SHIKOMI_MAX_MESSAGES = 4
    data = (json.dumps({"messages": chat() * 3}) + "\n").encode()
    upload = SimpleUploadedFile("x.jsonl", data)
    job = import_job_create(project=project, user=users["admin"], fileobj=upload, filename="x.jsonl", format="openai")
    job = example_import(job=job)
    assert job.status == ImportJob.Status.FAILED
    assert job.report["errors"][0]["code"] == "too_many_messages"


# --- searches and bulk id lists --------------------------------------------------------------


def test_a_2000_word_search_is_a_400_with_a_message_through_the_api(project, example):
    q = " ".join(f"word{i}" for i in range(2000))
    # Its first 400 characters (about 50 words) are within the character limit, not the word limit.
    response = api_for("annie").get(f"/api/projects/{project.slug}/examples/", {"q": q[:400]})
    assert response.status_code == 400
    assert "at most 20 are searched for" in response.json()["q"][0]
    response = api_for("annie").get(f"/api/projects/{project.slug}/examples/", {"q": q})
    assert response.status_code == 400 and "SHIKOMI_MAX_SEARCH_CHARS" in response.json()["q"][0]


def test_a_2000_word_search_is_a_400_with_a_message_on_the_page(client, project, example):
    client.login(username="annie", password=PASSWORD)
    response = client.get(f"/p/{project.slug}/examples/", {"q": " ".join(["refund"] * 2000)})
    assert response.status_code == 400
    assert "SHIKOMI_MAX_SEARCH_CHARS" in response.content.decode()
    response = client.get(f"/p/{project.slug}/examples/", {"q": " ".join(["refund"] * 30)})
    assert response.status_code == 400
    assert "The search has 30 words; at most 20" in response.content.decode()


def test_a_search_within_the_limits_still_finds(client, project, example):
    client.login(username="annie", password=PASSWORD)
    response = client.get(f"/p/{project.slug}/examples/", {"q": "where order"})
    assert response.status_code == 200 and f"/examples/{example.pk}/" in response.content.decode()


def test_a_300000_id_bulk_request_is_a_400_with_a_message_through_the_api(project, example):
    ids = list(range(1, 300_001))
    response = api_for("adam").post(
        f"/api/projects/{project.slug}/examples/bulk/",
        {"field": "label", "value": "billing", "ids": ids},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["ids"][0]
    assert "300000 examples were named" in error and "SHIKOMI_MAX_BULK_IDS" in error
    example.refresh_from_db()
    assert example.label.name == "shipping"


def test_a_bulk_request_over_the_id_limit_is_a_400_with_a_message_on_the_page(client, project, example, settings):
    settings.SHIKOMI_MAX_BULK_IDS = 3
    client.login(username="adam", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [str(example.pk), "2", "3", "4"], "field": "label", "value": "billing"},
    )
    assert response.status_code == 400
    assert "4 examples were named; one bulk change may name at most 3" in response.content.decode()
    example.refresh_from_db()
    assert example.label.name == "shipping"


def test_a_300000_id_bulk_request_on_the_page_is_a_400_that_says_why(client, project, example):
    client.login(username="adam", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [str(i) for i in range(1, 300_001)], "field": "label", "value": "billing"},
    )
    assert response.status_code == 400
    assert "too many form fields" in response.content.decode()


def test_a_bulk_change_within_the_limit_still_works_through_the_api(project, example):
    response = api_for("adam").post(
        f"/api/projects/{project.slug}/examples/bulk/",
        {"field": "label", "value": "billing", "ids": [example.pk]},
        format="json",
    )
    assert response.status_code == 200 and response.json() == {"changed": 1}


# --- rules' lists ----------------------------------------------------------------------------


def test_a_huge_keyword_list_is_refused_before_it_is_read():
    text = "\n".join(f"word{i}" for i in range(200_000))
    started = time.monotonic()
    with pytest.raises(RuleError) as caught:
        S.clean_params("keywords", {"keywords": text})
    assert time.monotonic() - started < 0.5
    assert caught.value.field == "keywords" and "at most 20200 are allowed" in caught.value.message
    with pytest.raises(RuleError) as caught:
        S.clean_params("keywords", {"keywords": [f"w{i}" for i in range(200_000)]})
    assert "The list has 200000 entries; at most 100 per rule." == caught.value.message


def test_a_metadata_rule_with_a_huge_list_of_values_is_refused():
    with pytest.raises(RuleError) as caught:
        S.clean_params("metadata", {"key": "customer", "op": "in", "value": [f"c{i}" for i in range(150)]})
    assert caught.value.field == "value" and "at most 100 values" in caught.value.message


def test_a_huge_keyword_list_is_a_400_through_the_rules_api(project, users):
    rule = {
        "name": "many",
        "kind": "keywords",
        "params": {"keywords": [f"w{i}" for i in range(5000)]},
        "label": "billing",
    }
    response = api_for("adam").post(f"/api/projects/{project.slug}/rules/", rule, format="json")
    assert response.status_code == 400 and "5000 entries" in str(response.json())


# --- what an upload decodes to ---------------------------------------------------------------


def _small_parquet_of_large_data(path) -> int:
    """1000 rows repeating one 5,000-character text: dictionary-encoded and compressed, a few KB."""
    text = "refund " * 700
    table = pa.table({"text": [text] * 1000, "label": ["billing"] * 1000})
    pq.write_table(table, path, compression="zstd")
    return path.stat().st_size


def test_a_small_parquet_file_that_decodes_past_the_limit_is_refused(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.SHIKOMI_MAX_DECODED_BYTES = 1_000_000
    path = tmp_path / "huge.parquet"
    assert _small_parquet_of_large_data(path) < 100_000
    with path.open("rb") as f:
        job = import_job_create(project=project, user=users["admin"], fileobj=f, filename="huge.parquet", format="hf")
    job = example_import(job=job)
    assert job.status == ImportJob.Status.FAILED
    assert "huge.parquet decodes to more than" in job.error and "SHIKOMI_MAX_DECODED_BYTES" in job.error
    assert job.report["errors"][0]["code"] == "file_too_large"
    assert not Example.objects.exists()


def test_a_parquet_file_within_the_decoded_limit_imports(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.SHIKOMI_MAX_DECODED_BYTES = 100_000_000
    path = tmp_path / "fine.parquet"
    _small_parquet_of_large_data(path)
    project.kind = project.Kind.CLASSIFICATION
    project.save()
    with path.open("rb") as f:
        job = import_job_create(project=project, user=users["admin"], fileobj=f, filename="fine.parquet", format="hf")
    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED, job.error


def test_a_zipped_dataset_member_that_decodes_past_the_limit_is_named(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.SHIKOMI_MAX_DECODED_BYTES = 1_000_000
    inner = tmp_path / "train.parquet"
    _small_parquet_of_large_data(inner)
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(inner, "data/train.parquet")
    with archive.open("rb") as f:
        job = import_job_create(project=project, user=users["admin"], fileobj=f, filename="dataset.zip", format="hf")
    job = example_import(job=job)
    assert job.status == ImportJob.Status.FAILED
    assert "data/train.parquet in dataset.zip decodes to more than" in job.error


# --- jobs a project may queue ----------------------------------------------------------------


@pytest.fixture
def template(project, users):
    from curation.generation.templates import template_save

    return template_save(
        project=project, user=users["reviewer"], name="support", text="Write a customer message.\nTopic: {topic}"
    )


def test_a_project_may_queue_only_so_many_generation_jobs(project, users, template, settings):
    from curation.generation.tasks import augment_start, synthetic_start

    settings.SHIKOMI_MAX_OPEN_GENERATION_JOBS = 2
    for _ in range(2):
        synthetic_start(project=project, user=users["reviewer"], template=template, count=2)
    with pytest.raises(ConfigError) as caught:
        synthetic_start(project=project, user=users["reviewer"], template=template, count=2)
    assert caught.value.field == "budget"
    assert "already has 2 generation jobs queued or running" in caught.value.message
    example = example_create(project=project, user=users["admin"], messages=chat())
    with pytest.raises(ConfigError) as caught:
        augment_start(project=project, user=users["reviewer"], example_ids=[example.pk])
    assert "SHIKOMI_MAX_OPEN_GENERATION_JOBS" in caught.value.message
    assert GenerationJob.objects.count() == 2
    GenerationJob.objects.update(status=GenerationJob.Status.DONE)
    synthetic_start(project=project, user=users["reviewer"], template=template, count=2)


def test_a_generation_job_asking_for_too_many_tokens_is_refused(project, users, template, settings):
    from curation.generation.tasks import synthetic_start

    settings.SHIKOMI_MAX_JOB_TOKENS = 100_000
    with pytest.raises(ConfigError) as caught:
        synthetic_start(
            project=project, user=users["reviewer"], template=template, count=100, candidates=2, max_new_tokens=1024
        )
    assert "204,800 tokens (100 × 2 × 1024 tokens)" in caught.value.message
    assert "SHIKOMI_MAX_JOB_TOKENS" in caught.value.message
    assert not GenerationJob.objects.exists()


def test_the_generation_api_refuses_a_job_over_the_token_budget_with_a_400(project, users, template, settings):
    settings.SHIKOMI_MAX_JOB_TOKENS = 100_000
    response = api_for("rhea").post(
        f"/api/projects/{project.slug}/generation-jobs/",
        {"template": template.pk, "count": 100, "candidates": 2, "max_new_tokens": 1024},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "SHIKOMI_MAX_JOB_TOKENS" in str(response.json())


@pytest.fixture
def finished_run(project, users, tmp_path):
    from training.models import TrainingRun
    from training.runs.tasks import training_run_create

    for i in range(4):
        split = Example.Split.TEST if i >= 2 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(f"Question {i}?"), split=split)
    run = training_run_create(project=project, user=users["admin"], enqueue=False)
    output = tmp_path / "output"
    output.mkdir()
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.DONE, output_dir=str(output))
    run.refresh_from_db()
    return run


def test_a_project_may_queue_only_so_many_evaluations(finished_run, settings):
    from training.evaluation.tasks import evaluation_start
    from training.models import Evaluation
    from training.runs.services import TrainingRefused

    settings.SHIKOMI_MAX_OPEN_EVALUATIONS = 1
    evaluation_start(run=finished_run, enqueue=False)
    with pytest.raises(TrainingRefused) as caught:
        evaluation_start(run=finished_run, enqueue=False)
    assert "already has 1 evaluations queued or running" in caught.value.message
    assert Evaluation.objects.count() == 1


def test_an_evaluation_over_the_token_budget_is_refused(finished_run, settings):
    from training.evaluation.tasks import evaluation_start
    from training.runs.services import TrainingRefused

    settings.SHIKOMI_MAX_JOB_TOKENS = 1000
    with pytest.raises(TrainingRefused) as caught:
        evaluation_start(run=finished_run, max_new_tokens=512, enqueue=False)
    assert "3,072 tokens (2 test examples × 3 models × 512 tokens)" in caught.value.message
