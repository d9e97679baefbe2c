"""The training API as a script uses it: launch with a preset or settings, the errors per
field, the quality gates (409) and their override, watching a run and its points, cancel,
resume, the adapter download and the launch options. The trainer never runs: launches are
captured before their task is enqueued, and runs to watch are made directly."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from curation.models import Project
from tests.training.conftest import add, make_run
from tests.training.test_views import approved
from training.engine.config import PRESETS, TrainConfig
from training.models import TrainingPoint, TrainingRun


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_cuda(monkeypatch) -> None:
    monkeypatch.setattr("training.engine.config.cuda_available", lambda: False)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def adam(users) -> APIClient:
    return client_for(users["admin"])


def base(project: Project) -> str:
    return f"/api/projects/{project.slug}/"


@pytest.fixture
def data(data) -> list:
    """The training data approved: a launch takes approved examples only, unless told otherwise."""
    return [approved(example) for example in data]


@pytest.fixture
def run(project, users) -> TrainingRun:
    return make_run(project, users["admin"])


# --- who may -----------------------------------------------------------------------------

WATCH = ["runs/", "runs/{run}/", "runs/{run}/points/", "training-options/"]
ADMIN_ONLY = ["runs/", "runs/{run}/cancel/", "runs/{run}/resume/"]


@pytest.mark.parametrize("path", WATCH)
def test_outsiders_get_404_and_members_may_watch(project, users, run, path):
    address = base(project) + path.format(run=run.pk)
    assert client_for(users["outsider"]).get(address).status_code == 404
    assert client_for(users["annotator"]).get(address).status_code == 200


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_only_admins_launch_cancel_and_resume(project, users, run, data, path):
    address = base(project) + path.format(run=run.pk)
    assert client_for(users["outsider"]).post(address, {}, format="json").status_code == 404
    assert client_for(users["annotator"]).post(address, {}, format="json").status_code == 403
    assert client_for(users["reviewer"]).post(address, {}, format="json").status_code == 403
    assert TrainingRun.objects.count() == 1 and not TrainingRun.objects.get().cancel_requested


def test_annotators_may_not_download_and_outsiders_do_not_see_the_run(project, users, run):
    address = base(project) + f"runs/{run.pk}/artifact/"
    assert client_for(users["outsider"]).get(address).status_code == 404
    assert client_for(users["annotator"]).get(address).status_code == 403


# --- launching ---------------------------------------------------------------------------


def test_a_launch_with_a_preset_stores_its_values_and_answers_202(
    adam, project, data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = adam.post(base(project) + "runs/", {"preset": "lora_standard", "config": {"seed": 7}}, format="json")
    assert response.status_code == 202, response.json()
    assert len(callbacks) == 1  # the training task, not run here
    run = TrainingRun.objects.get()
    for name, value in PRESETS["lora_standard"][1].items():
        assert run.config[name] == value, name
    assert run.config["seed"] == 7
    body = response.json()
    assert body["id"] == run.pk and body["status"] == "queued" and body["config"]["lora_rank"] == 16
    assert body["train_count"] == 2 and body["validation_count"] == 1 and body["approved_only"] is True


def test_every_bad_setting_is_named_with_its_own_message(adam, project, data):
    response = adam.post(
        base(project) + "runs/",
        {"config": {"learning_rate": 1, "lora_rank": 0, "batch_size": "x", "method": "qlora", "colour": "red"}},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"learning_rate", "lora_rank", "batch_size", "method", "colour"}
    assert all(len(messages) == 1 for messages in errors.values())
    assert "between 1e-07 and 0.01" in errors["learning_rate"][0]
    assert "between 1 and 256" in errors["lora_rank"][0]
    assert errors["batch_size"] == ["Enter a whole number."]
    assert "QLoRA needs a CUDA GPU and this machine has none" in errors["method"][0]
    assert "Unknown setting" in errors["colour"][0]
    assert not TrainingRun.objects.exists()


def test_an_unknown_preset_and_a_config_that_is_not_an_object_are_refused(adam, project, data):
    response = adam.post(base(project) + "runs/", {"preset": "turbo"}, format="json")
    assert response.status_code == 400 and "Unknown preset" in response.json()["preset"][0]
    response = adam.post(base(project) + "runs/", {"config": ["lora"]}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["config"]


def test_an_empty_training_split_is_refused(adam, project, users):
    add(project, users["admin"], "Only a test example", "test")
    response = adam.post(base(project) + "runs/", {}, format="json")
    assert response.status_code == 400 and "training split is empty" in response.json()["split"][0]


def test_a_leak_answers_409_until_it_is_overridden_with_a_reason(
    adam, project, users, data, django_capture_on_commit_callbacks
):
    twin = approved(add(project, users["admin"], "Where is my parcel?", "validation"))
    response = adam.post(base(project) + "runs/", {"preset": "quick_cpu_demo"}, format="json")
    assert response.status_code == 409
    [blocker] = response.json()["blockers"]
    assert blocker["gate"] == "leakage" and blocker["ids"] == [twin.pk] and str(twin.pk) in blocker["message"]
    assert response.json()["detail"]
    response = adam.post(base(project) + "runs/", {"override_leakage": True}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["override_reason"]
    assert not TrainingRun.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = adam.post(
            base(project) + "runs/", {"override_leakage": True, "override_reason": "A known twin."}, format="json"
        )
    assert response.status_code == 202 and len(callbacks) == 1
    [override] = response.json()["gate_overrides"]
    assert override["reason"] == "A known twin." and override["by"] == "adam" and override["ids"] == [twin.pk]


# --- watching ----------------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_paginated(adam, project, users):
    for number in (1, 2, 3):
        make_run(project, users["admin"], number=number)
    body = adam.get(base(project) + "runs/").json()
    assert body["count"] == 3 and [r["number"] for r in body["results"]] == [3, 2, 1]
    assert "snapshot" not in body["results"][0]


def test_a_run_reads_with_progress_result_and_log_but_not_the_snapshot_ids(adam, project, users, tmp_path):
    checkpoint = tmp_path / "checkpoint-3"
    checkpoint.mkdir()
    run = make_run(
        project,
        users["admin"],
        status=TrainingRun.Status.CANCELLED,
        step=3,
        total_steps=10,
        device="cpu float32",
        progress={"epoch": 0.3, "train_loss": 1.5, "val_loss": None, "eta_seconds": 20},
        result={"how": "cancelled", "final_train_loss": 1.5},
        log="\n".join(f"line {i}" for i in range(200)),
        checkpoint=str(checkpoint),
        error="",
        warnings=["No validation split: no validation loss and no early stopping."],
    )
    body = adam.get(base(project) + f"runs/{run.pk}/").json()
    assert body["progress"]["train_loss"] == 1.5 and body["result"]["how"] == "cancelled"
    assert body["step"] == 3 and body["total_steps"] == 10 and body["fraction"] == 0.3
    assert body["device"] == "cpu float32" and body["train_count"] == 12 and body["validation_count"] == 3
    assert body["config"]["learning_rate"] == TrainConfig().learning_rate
    assert body["log_tail"].endswith("line 199") and "line 0\n" not in body["log_tail"]
    assert body["can_resume"] is True and body["has_artifact"] is False
    assert body["warnings"] == ["No validation split: no validation loss and no early stopping."]
    assert "snapshot" not in body


def test_points_come_after_a_step(adam, project, users, run):
    for step in range(1, 5):
        TrainingPoint.objects.create(run=run, step=step, train_loss=2.0 - step / 10)
    body = adam.get(base(project) + f"runs/{run.pk}/points/?after=2").json()
    assert [p["step"] for p in body["points"]] == [3, 4] and body["finished"] is True and body["status"] == "done"
    assert len(adam.get(base(project) + f"runs/{run.pk}/points/").json()["points"]) == 4
    response = adam.get(base(project) + f"runs/{run.pk}/points/?after=-1")
    assert response.status_code == 400 and list(response.json()) == ["after"]


# --- cancel, resume ----------------------------------------------------------------------


def test_cancel_answers_202_and_409_once_the_run_has_ended(adam, project, users):
    running = make_run(project, users["admin"], status=TrainingRun.Status.RUNNING)
    response = adam.post(base(project) + f"runs/{running.pk}/cancel/")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    done = make_run(project, users["admin"], number=2)
    response = adam.post(base(project) + f"runs/{done.pk}/cancel/")
    assert response.status_code == 409 and "already ended" in response.json()["detail"]
    done.refresh_from_db()
    assert not done.cancel_requested


def test_resume_answers_202_with_a_checkpoint_and_409_without(
    adam, project, users, tmp_path, django_capture_on_commit_callbacks
):
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    stopped = make_run(project, users["admin"], status=TrainingRun.Status.INTERRUPTED, checkpoint=str(checkpoint))
    with django_capture_on_commit_callbacks() as callbacks:
        response = adam.post(base(project) + f"runs/{stopped.pk}/resume/")
    assert response.status_code == 202 and response.json()["status"] == "queued" and response.json()["resumed"] == 1
    assert len(callbacks) == 1
    bare = make_run(project, users["admin"], number=2, status=TrainingRun.Status.FAILED)
    response = adam.post(base(project) + f"runs/{bare.pk}/resume/")
    assert response.status_code == 409 and "no checkpoint" in response.json()["detail"]
    response = adam.post(base(project) + f"runs/{stopped.pk}/resume/")  # queued now: not resumable
    assert response.status_code == 409


# --- the download ------------------------------------------------------------------------


def test_reviewers_download_the_output_as_a_zip_and_get_404_without_one(project, users, run, tmp_path):
    rhea = client_for(users["reviewer"])
    response = rhea.get(base(project) + f"runs/{run.pk}/artifact/")
    assert response.status_code == 404 and "no trained output" in response.json()["detail"]
    output = tmp_path / "output"
    output.mkdir()
    (output / "adapter_model.safetensors").write_bytes(b"\x00weights")
    (output / "shikomi_run.json").write_text('{"method": "lora"}')
    run.output_dir = str(output)
    run.save()
    response = rhea.get(base(project) + f"runs/{run.pk}/artifact/")
    assert response.status_code == 200 and 'filename="support-run-1.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["support-run-1/adapter_model.safetensors", "support-run-1/shikomi_run.json"]
    assert archive.read("support-run-1/adapter_model.safetensors") == b"\x00weights"


# --- options and schema ------------------------------------------------------------------


def test_the_options_list_methods_presets_bounds_and_cuda(project, users):
    body = client_for(users["annotator"]).get(base(project) + "training-options/").json()
    assert {m["key"] for m in body["methods"]} >= {"lora", "qlora", "full", "dpo"}
    assert {p["key"] for p in body["presets"]} == set(PRESETS)
    quick = next(p for p in body["presets"] if p["key"] == "quick_cpu_demo")
    assert quick["values"]["max_steps"] == 20
    by_name = {f["name"]: f for f in body["fields"]}
    assert set(by_name) == set(TrainConfig().as_dict())
    assert by_name["learning_rate"]["low"] == 1e-7 and by_name["learning_rate"]["high"] == 0.01
    assert by_name["learning_rate"]["default"] == 2e-4 and "Peak learning rate" in by_name["learning_rate"]["help"]
    assert by_name["method"]["low"] is None and by_name["target_modules"]["default"] == TrainConfig().target_modules
    assert body["schedulers"] == ["constant", "linear", "cosine"]
    assert [b["key"] for b in body["balance"]] == ["none", "oversample", "undersample", "class_weights"]
    assert "gate_proj" in body["target_modules"] and body["cuda"] is False


def test_the_schema_documents_the_training_endpoints(adam):
    paths = adam.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/projects/{slug}/runs/"])
    assert "get" in paths["/api/projects/{slug}/runs/{run_id}/"]
    assert "get" in paths["/api/projects/{slug}/runs/{run_id}/points/"]
    assert "post" in paths["/api/projects/{slug}/runs/{run_id}/cancel/"]
    assert "post" in paths["/api/projects/{slug}/runs/{run_id}/resume/"]
    assert "get" in paths["/api/projects/{slug}/runs/{run_id}/artifact/"]
    assert "get" in paths["/api/projects/{slug}/training-options/"]
