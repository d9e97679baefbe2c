"""The training pages: the list of runs, the launch form with its presets, errors and quality
gates, a run's page with its live progress, the points the chart reads, cancel and resume,
the adapter download, and two runs compared. The trainer never runs here: launches are
captured before their task is enqueued, and pages are tested on runs made directly."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from curation.models import Example, Project
from curation.workspace.navigation import MENU_QUERIES
from tests.training.conftest import add, make_run
from training.engine.config import PRESETS
from training.models import TrainingPoint, TrainingRun

HOSTILE_LOG = "step 3 done\n<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_cuda(monkeypatch) -> None:
    """QLoRA is refused the same way on every machine that runs these tests."""
    monkeypatch.setattr("training.engine.config.cuda_available", lambda: False)


def approved(example: Example) -> Example:
    """The example approved: a new run takes approved examples only, unless told otherwise."""
    Example.objects.filter(pk=example.pk).update(status=Example.Status.APPROVED)
    example.refresh_from_db()
    return example


@pytest.fixture
def data(data) -> list[Example]:
    """The training data approved: two training examples and one validation example."""
    return [approved(example) for example in data]


def url(project: Project, name: str, *args: Any) -> str:
    return reverse(name, args=[project.slug, *args])


def form_data(response) -> dict[str, Any]:
    """What the browser would send for the launch form as the page filled it in."""
    form = response.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = value if isinstance(value, list) else str(value)
    return data


# --- who may -----------------------------------------------------------------------------


@pytest.fixture
def run(project, users) -> TrainingRun:
    return make_run(project, users["admin"])


def pages(project: Project, run: TrainingRun) -> dict[str, str]:
    return {
        "run_list": url(project, "run_list"),
        "run_new": url(project, "run_new"),
        "run_compare": url(project, "run_compare") + f"?a={run.pk}&b={run.pk}",
        "run_detail": url(project, "run_detail", run.pk),
        "run_points": url(project, "run_points", run.pk),
        "run_action": url(project, "run_action", run.pk),
        "run_artifact": url(project, "run_artifact", run.pk),
    }


@pytest.mark.parametrize("name", ["run_list", "run_new", "run_compare", "run_detail", "run_points", "run_artifact"])
def test_outsiders_get_404_for_every_page(client, project, users, run, name):
    client.force_login(users["outsider"])
    assert client.get(pages(project, run)[name]).status_code == 404


def test_outsiders_get_404_for_actions_too(client, project, users, run):
    client.force_login(users["outsider"])
    assert client.post(url(project, "run_action", run.pk), {"action": "cancel"}).status_code == 404
    assert client.post(url(project, "run_new"), {}).status_code == 404


@pytest.mark.parametrize("name", ["run_list", "run_compare", "run_detail", "run_points"])
def test_annotators_may_watch_and_compare(client, project, users, run, name):
    client.force_login(users["annotator"])
    assert client.get(pages(project, run)[name]).status_code == 200


def test_annotators_may_not_launch_cancel_resume_or_download(client, project, users, run, data):
    client.force_login(users["annotator"])
    assert client.get(url(project, "run_new")).status_code == 403
    assert client.post(url(project, "run_new"), {"method": "lora"}).status_code == 403
    assert client.post(url(project, "run_action", run.pk), {"action": "cancel"}).status_code == 403
    assert client.post(url(project, "run_action", run.pk), {"action": "resume"}).status_code == 403
    assert client.get(url(project, "run_artifact", run.pk)).status_code == 403
    assert TrainingRun.objects.count() == 1
    assert not TrainingRun.objects.get().cancel_requested


def test_reviewers_may_not_launch(client, project, users, data):
    client.force_login(users["reviewer"])
    assert client.get(url(project, "run_new")).status_code == 403
    assert client.post(url(project, "run_new"), {"method": "lora"}).status_code == 403
    assert not TrainingRun.objects.exists()


def test_a_run_of_another_project_is_not_found(client, project, users, run):
    other = Project.objects.create(name="Other", slug="other")
    foreign = make_run(other, users["admin"])
    client.force_login(users["admin"])
    assert client.get(url(project, "run_detail", foreign.pk)).status_code == 404
    assert client.get(url(project, "run_points", foreign.pk)).status_code == 404
    assert client.get(url(project, "run_compare") + f"?a={run.pk}&b={foreign.pk}").status_code == 404


# --- the list ----------------------------------------------------------------------------


def test_the_list_shows_runs_newest_first_with_their_key_settings(client, project, users):
    make_run(
        project,
        users["admin"],
        number=1,
        config={"lora_rank": 8, "lora_alpha": 16, "batch_size": 4, "gradient_accumulation": 2, "max_steps": 20},
        result={"final_train_loss": 1.23456, "final_val_loss": 1.5},
    )
    make_run(
        project,
        users["admin"],
        number=2,
        config={"method": "full", "epochs": 3, "max_seq_length": 2048},
        status=TrainingRun.Status.RUNNING,
    )
    make_run(project, users["admin"], number=3, config={"method": "dpo"}, preference_count=9)
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_list")).content.decode()
    assert page.index('id="run-3"') < page.index('id="run-2"') < page.index('id="run-1"')
    first = page[page.index('id="run-1"') :]
    assert "8 / 16" in first and "4 × 2 = 8" in first and "20 steps" in first and "1.2346" in first
    second = page[page.index('id="run-2"') : page.index('id="run-1"')]
    assert "3 epochs" in second and "2048" in second and "Full fine-tuning" in second
    assert "embedded SmolLM2-135M-Instruct" in second
    assert "9 pairs" in page[page.index('id="run-3"') : page.index('id="run-2"')]
    assert 'name="run"' in page  # the checkboxes that choose two runs to compare
    assert url(project, "run_new") not in page  # only admins are offered a new run
    client.force_login(users["admin"])
    assert url(project, "run_new") in client.get(url(project, "run_list")).content.decode()


def test_the_list_reads_a_fixed_number_of_queries(client, project, users, django_assert_max_num_queries):
    for number in range(1, 8):
        make_run(project, users["admin"], number=number)
    client.force_login(users["admin"])
    with django_assert_max_num_queries(8 + MENU_QUERIES):
        assert client.get(url(project, "run_list")).status_code == 200


# --- launching ---------------------------------------------------------------------------


def test_the_form_starts_from_the_quick_cpu_demo_with_bounds_and_help(client, project, users, data):
    project.balance_strategy = "oversample"
    project.save()
    client.force_login(users["admin"])
    response = client.get(url(project, "run_new"))
    page = response.content.decode()
    form = response.context["form"]
    assert form["max_steps"].value() == "20" and form["preset"].value() == "quick_cpu_demo"
    assert form["balance"].value() == "oversample"
    assert 'name="learning_rate"' in page and 'min="1e-07"' in page and 'max="0.01"' in page and 'step="any"' in page
    assert 'name="lora_rank"' in page and 'min="1"' in page and 'max="256"' in page and 'step="1"' in page
    assert "Rank of the LoRA matrices" in page  # the BOUNDS help text
    for module in ("q_proj", "v_proj", "gate_proj", "down_proj"):
        assert f'value="{module}"' in page
    assert "Empty: the embedded SmolLM2-135M-Instruct" in page
    # What the run would freeze: 2 training and 1 validation examples.
    readiness = page[page.index('id="readiness"') :]
    assert "2 training examples and 1 validation examples" in readiness


def test_a_preset_fills_in_the_form(client, project, users, data):
    client.force_login(users["admin"])
    form = client.get(url(project, "run_new") + "?preset=lora_standard").context["form"]
    assert form["lora_rank"].value() == "16" and form["epochs"].value() == "3" and form["max_steps"].value() == "0"
    response = client.get(url(project, "run_new") + "?preset=nonsense")
    assert response.context["form"]["max_steps"].value() == "20"
    assert "There is no preset nonsense" in response.content.decode()


def test_launching_with_a_preset_stores_the_presets_values(
    client, project, users, data, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new") + "?preset=lora_standard"))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(project, "run_new"), filled)
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == url(project, "run_detail", run.pk)
    assert len(callbacks) == 1  # the training task, not run here
    for name, value in PRESETS["lora_standard"][1].items():
        assert run.config[name] == value, name
    assert run.status == TrainingRun.Status.QUEUED and run.train_count == 2 and run.validation_count == 1
    assert run.created_by == users["admin"]


def test_other_target_modules_join_the_checked_ones(client, project, users, data, django_capture_on_commit_callbacks):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update({"target_modules": ["q_proj", "v_proj"], "target_modules_other": "c_attn, c_proj"})
    with django_capture_on_commit_callbacks():
        client.post(url(project, "run_new"), filled)
    assert TrainingRun.objects.get().config["target_modules"] == ["q_proj", "v_proj", "c_attn", "c_proj"]


def test_each_invalid_setting_gets_its_own_error_on_its_field(client, project, users, data):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update({"learning_rate": "1", "lora_rank": "0", "batch_size": "x", "method": "qlora"})
    response = client.post(url(project, "run_new"), filled)
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"learning_rate", "lora_rank", "batch_size", "method"}
    assert all(len(errors) == 1 for errors in form.errors.values())
    assert "between 1e-07 and 0.01" in form.errors["learning_rate"][0]
    assert "between 1 and 256" in form.errors["lora_rank"][0]
    assert form.errors["batch_size"] == ["Enter a whole number."]
    assert "QLoRA needs a CUDA GPU" in form.errors["method"][0] and "LoRA" in form.errors["method"][0]
    page = response.content.decode()
    assert 'id="error-method"' in page and 'id="error-batch_size"' in page
    assert not TrainingRun.objects.exists()


def test_an_empty_training_split_is_refused(client, project, users):
    add(project, users["admin"], "Only a test example", "test")
    client.force_login(users["admin"])
    response = client.get(url(project, "run_new"))
    assert "The training split is empty" in response.content.decode()
    response = client.post(url(project, "run_new"), form_data(response))
    assert response.status_code == 200
    assert any("The training split is empty" in e for e in response.context["form"].non_field_errors())
    assert not TrainingRun.objects.exists()


@pytest.fixture
def leak(project, users, data) -> Example:
    """A validation example that is an exact copy of a training one."""
    return approved(add(project, users["admin"], "Where is my parcel?", "validation"))


def test_a_leak_blocks_the_launch_until_an_admin_overrides_it_with_a_reason(
    client, project, users, leak, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    response = client.post(url(project, "run_new"), filled)
    page = response.content.decode()
    assert response.status_code == 200 and not TrainingRun.objects.exists()
    blockers = page[page.index('id="blockers"') :]
    assert f"id {leak.pk}" in blockers and "To launch anyway" in blockers
    assert "<details open>" in page[page.index('id="override"') :]

    response = client.post(url(project, "run_new"), {**filled, "override_leakage": "on"})
    assert response.context["form"].errors["override_reason"] == [
        "Say why the leakage is acceptable; it is recorded on the run."
    ]
    assert not TrainingRun.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            url(project, "run_new"), {**filled, "override_leakage": "on", "override_reason": "A known FAQ twin."}
        )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and len(callbacks) == 1
    [override] = run.gate_overrides
    assert override["gate"] == "leakage" and override["reason"] == "A known FAQ twin." and override["by"] == "adam"
    assert leak.pk in override["ids"]


# --- a run's page ------------------------------------------------------------------------


@pytest.fixture
def running(project, users) -> TrainingRun:
    return make_run(
        project,
        users["admin"],
        status=TrainingRun.Status.RUNNING,
        step=7,
        total_steps=20,
        device="cpu float32",
        progress={
            "epoch": 0.35,
            "train_loss": 1.23456,
            "val_loss": 1.5,
            "learning_rate": 0.0003,
            "tokens_per_second": 123.4,
            "eta_seconds": 95,
            "tokens_seen": 4096,
        },
        log=HOSTILE_LOG,
        warnings=["Only 12 training examples: under a few hundred, a model mostly memorises them."],
        gate_overrides=[{"gate": "leakage", "by": "adam", "at": "2025-01-01T00:00:00", "reason": "Known twin."}],
    )


def test_the_run_page_shows_progress_settings_and_snapshot(client, project, users, running):
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_detail", running.pk)).content.decode()
    progress = page[page.index('id="run-progress"') :]
    for shown in ("7 / 20", "0.35", "1.2346", "1.5000", "3.00e-04", "123", "4096", "1 min 35 s", "cpu float32"):
        assert shown in progress, shown
    assert "step 7 of 20" in page and '<progress value="35.0" max="100"' in page
    assert 'hx-trigger="every 2s"' in page  # polls while the run is running
    config = page[page.index('id="run-config"') :]
    assert "Learning rate" in config and "Warm-up share" in config and "q_proj, k_proj, v_proj, o_proj" in config
    assert "12 training examples, 3 validation examples" in page
    assert "Only 12 training examples" in page and "Known twin." in page
    assert url(project, "run_points", running.pk) in page and "js/training.js" in page


def test_the_log_is_escaped(client, project, users, running):
    client.force_login(users["admin"])
    page = client.get(url(project, "run_detail", running.pk)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page


def test_the_status_part_is_polled_until_the_run_ends(client, project, users, running):
    client.force_login(users["annotator"])
    address = url(project, "run_detail", running.pk)
    response = client.get(address, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="run-status"') and "1.2346" in body
    running.status = TrainingRun.Status.DONE
    running.save()
    response = client.get(address, HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and "hx-trigger" not in response.content.decode()


def test_a_failed_run_shows_its_error_as_an_alert(client, project, users):
    failed = make_run(project, users["admin"], status=TrainingRun.Status.FAILED, error="Out of memory <b>here</b>")
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_detail", failed.pk)).content.decode()
    assert '<p class="error" role="alert">Out of memory &lt;b&gt;here&lt;/b&gt;</p>' in page


def test_admins_get_cancel_on_a_running_run_and_annotators_no_buttons(client, project, users, running):
    client.force_login(users["admin"])
    assert 'value="cancel"' in client.get(url(project, "run_detail", running.pk)).content.decode()
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_detail", running.pk)).content.decode()
    assert 'value="cancel"' not in page and 'value="resume"' not in page


def test_the_noscript_table_lists_the_last_points(client, project, users, running):
    TrainingPoint.objects.bulk_create(
        [TrainingPoint(run=running, step=s, epoch=s / 20, train_loss=2 - s / 10) for s in range(1, 8)]
    )
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_detail", running.pk)).content.decode()
    chart = page[page.index('id="run-chart"') :]
    table = chart[chart.index("<noscript>") : chart.index("</noscript>")]
    assert "1.3000" in table and "1.9000" in table


def test_the_chart_script_builds_elements_and_never_parses_html():
    script = (Path(__file__).resolve().parents[2] / "static" / "js" / "training.js").read_text()
    assert "createElementNS" in script and "textContent" in script
    for parsing in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert parsing not in script, parsing


# --- the points the chart reads ----------------------------------------------------------


def test_points_come_as_json_after_a_step(client, project, users, running):
    for step in range(1, 6):
        TrainingPoint.objects.create(
            run=running, step=step, epoch=step / 10, train_loss=3 - step / 10, learning_rate=1e-4, tokens_per_second=50
        )
    TrainingPoint.objects.filter(step=5).update(val_loss=2.75)
    client.force_login(users["annotator"])
    data = client.get(url(project, "run_points", running.pk) + "?after=3").json()
    assert [p["step"] for p in data["points"]] == [4, 5]
    assert data["points"][1] == {
        "step": 5,
        "epoch": 0.5,
        "train_loss": 2.5,
        "val_loss": 2.75,
        "learning_rate": 0.0001,
        "tokens_per_second": 50.0,
    }
    assert data["finished"] is False and data["status"] == "running"
    assert len(client.get(url(project, "run_points", running.pk)).json()["points"]) == 5
    response = client.get(url(project, "run_points", running.pk) + "?after=x")
    assert response.status_code == 400 and list(response.json()) == ["after"]


# --- cancel and resume -------------------------------------------------------------------


def test_cancel_asks_a_running_run_to_stop_and_ends_a_queued_one(client, project, users, running):
    queued = make_run(project, users["admin"], number=2, status=TrainingRun.Status.QUEUED)
    client.force_login(users["admin"])
    response = client.post(url(project, "run_action", running.pk), {"action": "cancel"})
    assert response.status_code == 302 and response["Location"] == url(project, "run_detail", running.pk)
    running.refresh_from_db()
    assert running.cancel_requested and running.status == TrainingRun.Status.RUNNING
    client.post(url(project, "run_action", queued.pk), {"action": "cancel"})
    queued.refresh_from_db()
    assert queued.status == TrainingRun.Status.CANCELLED


def test_resume_continues_from_the_checkpoint(client, project, users, tmp_path, django_capture_on_commit_callbacks):
    checkpoint = tmp_path / "checkpoint-4"
    checkpoint.mkdir()
    stopped = make_run(project, users["admin"], status=TrainingRun.Status.CANCELLED, checkpoint=str(checkpoint))
    client.force_login(users["admin"])
    page = client.get(url(project, "run_detail", stopped.pk)).content.decode()
    assert 'value="resume"' in page
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(project, "run_action", stopped.pk), {"action": "resume"}, follow=True)
    stopped.refresh_from_db()
    assert stopped.status == TrainingRun.Status.QUEUED and stopped.resumed == 1 and len(callbacks) == 1
    page = response.content.decode()
    assert "continues from its last checkpoint" in page and "resumed 1 time" in page


def test_resume_without_a_checkpoint_says_why_and_changes_nothing(client, project, users):
    stopped = make_run(project, users["admin"], status=TrainingRun.Status.FAILED)
    client.force_login(users["admin"])
    page = client.get(url(project, "run_detail", stopped.pk)).content.decode()
    assert 'value="resume"' not in page
    response = client.post(url(project, "run_action", stopped.pk), {"action": "resume"}, follow=True)
    assert "no checkpoint to resume from" in response.content.decode()
    stopped.refresh_from_db()
    assert stopped.status == TrainingRun.Status.FAILED and stopped.resumed == 0


# --- the download ------------------------------------------------------------------------


@pytest.fixture
def done(project, users, tmp_path) -> TrainingRun:
    output = tmp_path / "output"
    (output / "tokenizer").mkdir(parents=True)
    (output / "adapter_config.json").write_text('{"r": 8}')
    (output / "tokenizer" / "tokenizer.json").write_text("{}")
    return make_run(project, users["admin"], output_dir=str(output), result={"how": "done", "final_train_loss": 1.1})


def test_reviewers_download_the_output_folder_as_a_zip(client, project, users, done):
    client.force_login(users["reviewer"])
    page = client.get(url(project, "run_detail", done.pk)).content.decode()
    assert "Download adapter (.zip)" in page
    response = client.get(url(project, "run_artifact", done.pk))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'filename="support-run-1.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["support-run-1/adapter_config.json", "support-run-1/tokenizer/tokenizer.json"]
    assert archive.read("support-run-1/adapter_config.json") == b'{"r": 8}'


def test_annotators_are_not_offered_the_download(client, project, users, done):
    client.force_login(users["annotator"])
    assert "Download adapter (.zip)" not in client.get(url(project, "run_detail", done.pk)).content.decode()


def test_a_run_without_output_has_nothing_to_download(client, project, users, running):
    client.force_login(users["reviewer"])
    assert "Download adapter" not in client.get(url(project, "run_detail", running.pk)).content.decode()
    response = client.get(url(project, "run_artifact", running.pk))
    assert response.status_code == 404 and "no trained output to download" in response.content.decode()


# --- comparing ---------------------------------------------------------------------------


def test_compare_shows_both_configurations_and_marks_the_differences(client, project, users):
    a = make_run(project, users["admin"], number=1, config={"lora_rank": 8}, result={"final_val_loss": 1.25})
    b = make_run(project, users["admin"], number=2, config={"lora_rank": 32}, result={"final_val_loss": 0.75})
    client.force_login(users["annotator"])
    page = client.get(url(project, "run_compare") + f"?a={a.pk}&b={b.pk}").content.decode()
    table = page[page.index('id="compare-config"') : page.index('id="compare-results"')]
    rank_row = next(row for row in table.split("<tr") if "LoRA rank" in row)
    assert 'class="differs"' in rank_row and "<td>8</td>" in rank_row and "<td>32</td>" in rank_row
    alpha_row = next(row for row in table.split("<tr") if "LoRA alpha" in row)
    assert "differs" not in alpha_row
    assert table.count('class="differs"') == 1
    assert "1.2500" in page and "0.7500" in page
    assert url(project, "run_points", a.pk) in page and url(project, "run_points", b.pk) in page


def test_the_lists_checkboxes_lead_to_the_comparison(client, project, users):
    a = make_run(project, users["admin"], number=1)
    b = make_run(project, users["admin"], number=2, config={"seed": 7})
    client.force_login(users["annotator"])
    response = client.get(url(project, "run_compare") + f"?run={b.pk}&run={a.pk}")
    assert response.context["a"] == b and response.context["b"] == a
    response = client.get(url(project, "run_compare") + f"?run={a.pk}")
    assert response.status_code == 400 and "Choose exactly two runs" in response.content.decode()
    response = client.get(url(project, "run_compare"))
    assert response.status_code == 200 and 'id="compare-choose"' in response.content.decode()


def test_the_run_page_names_the_reasoning_setting_not_its_code():
    from training.runs.views import setting_text

    assert setting_text("reasoning", "drop_earlier") == "Remove it from earlier turns"
    assert setting_text("reasoning", "mask") == "Show it, no loss"
