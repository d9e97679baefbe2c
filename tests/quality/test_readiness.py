"""Each readiness line goes to warn or fail when its condition holds; the launch gate blocks
a training run on leaks unless an admin overrides, and the override is on the run."""

from __future__ import annotations

import json

import pytest

from curation.core.services import InvalidExample
from curation.io.exports import example_export
from curation.models import Example, Label, Project
from curation.quality.gates import LaunchBlocked
from curation.quality.readiness import readiness
from tests.quality.conftest import add, run_scan
from training.models import TrainingRun
from training.runs.services import TrainingRefused
from training.runs.tasks import training_run_create


def lines(project) -> dict[str, tuple[str, str]]:
    return {line.key: (line.status, line.detail) for line in readiness(project).lines}


def status(project, key: str) -> str:
    return lines(project)[key][0]


def test_before_any_scan_the_scan_based_lines_warn_that_nothing_was_checked(corpus, project):
    report = lines(project)
    for key in ("duplicates", "pii", "length", "format", "facts"):
        assert report[key][0] == "warn" and "Not checked yet" in report[key][1], key
    assert report["leakage"][0] == "fail"  # the exact copy across splits is found without a scan


def test_small_data_warns_and_no_data_fails(project, users):
    assert status(project, "size") == "fail"
    add(project, users["admin"], "Hello there", split="train")
    assert status(project, "size") == "warn"
    Example.objects.bulk_create(
        [
            Example(
                project=project, messages=[{"role": "user", "content": f"q{i}"}], content_hash=f"h{i}", split="train"
            )
            for i in range(200)
        ]
    )
    assert status(project, "size") == "pass"


def test_rejected_and_draft_examples_do_not_count_as_data(project, users):
    add(project, users["admin"], "Hello there", split="train", status="rejected")
    assert status(project, "size") == "fail"


def test_split_sizes_fail_without_training_and_warn_without_validation(project, users):
    add(project, users["admin"], "one", split="test")
    assert status(project, "splits") == "fail"
    add(project, users["admin"], "two", split="train")
    assert status(project, "splits") == "warn"


@pytest.fixture
def classification(db, users) -> Project:
    project = Project.objects.create(name="Intent", slug="intent", kind=Project.Kind.CLASSIFICATION)
    for name in ("billing", "shipping"):
        Label.objects.create(project=project, name=name)
    return project


def test_class_balance_fails_on_a_missing_label_and_warns_on_imbalance(classification, users):
    make = lambda label, n: Example.objects.bulk_create(  # noqa: E731
        [
            Example(
                project=classification,
                messages=[{"role": "user", "content": f"{label} {i}"}],
                content_hash=f"{label}{i}",
                label=classification.labels.get(name=label),
                split="train",
            )
            for i in range(n)
        ]
    )
    make("billing", 40)
    assert status(classification, "balance") == "fail"
    make("shipping", 5)
    assert status(classification, "balance") == "warn"
    make("shipping", 30)
    assert status(classification, "balance") == "pass"


def test_scan_lines_warn_or_fail_on_what_the_scan_found(corpus, project, users, django_capture_on_commit_callbacks):
    project.max_seq_length = 60
    project.save()
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    report = lines(project)
    assert report["duplicates"][0] == "warn"
    assert report["leakage"][0] == "fail"
    assert report["pii"][0] == "warn"
    assert report["length"][0] == "warn" and "60 tokens" in report["length"][1]
    project.block_on_pii = True
    project.save()
    assert status(project, "pii") == "fail"


def test_drafts_waiting_for_review_warn(project, users):
    add(project, users["admin"], "generated", source="synthetic", status="draft")
    assert status(project, "drafts") == "warn"


def test_structured_answers_that_do_not_parse_fail_the_format_line(db, users, django_capture_on_commit_callbacks):
    project = Project.objects.create(
        name="Extract",
        slug="extract",
        kind=Project.Kind.STRUCTURED,
        json_schema={"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
    )
    add(project, users["admin"], "I live in Osaka", json.dumps({"city": "Osaka"}), split="train")
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    assert status(project, "format") == "pass"
    add(project, users["admin"], "I live in Kyoto", '{"city": "Kyo', split="train")
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    assert status(project, "format") == "fail"


def test_answers_full_of_facts_absent_from_the_prompt_warn(project, users, django_capture_on_commit_callbacks):
    for question, answer in [
        ("Who founded Sony?", "Masaru Ibuka and Akio Morita founded Sony in Tokyo in 1946."),
        ("When did Apollo 11 land?", "Apollo 11 landed on July 20, 1969, with Neil Armstrong and Buzz Aldrin."),
    ]:
        add(project, users["admin"], question, answer, split="train")
    run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    assert status(project, "facts") == "warn"


def test_a_training_run_is_refused_while_leaks_exist(corpus, project, users):
    with pytest.raises(LaunchBlocked) as blocked:
        training_run_create(project=project, user=users["admin"])
    assert blocked.value.blockers[0].gate == "leakage"
    assert str(corpus["exact_copy"].pk) in blocked.value.blockers[0].message
    assert not TrainingRun.objects.exists()


def test_an_override_needs_a_reason_and_is_recorded_on_the_run(corpus, project, users):
    with pytest.raises(TrainingRefused) as refused:
        training_run_create(project=project, user=users["admin"], override_leakage=True)
    assert refused.value.field == "override_reason"
    run = training_run_create(
        project=project, user=users["admin"], override_leakage=True, override_reason="The copy is a known FAQ."
    )
    [override] = run.gate_overrides
    assert (
        override["gate"] == "leakage" and override["by"] == "adam" and override["reason"] == "The copy is a known FAQ."
    )
    assert override["ids"] == [corpus["exact_copy"].pk]
    train_ids = [pk for pk, _hash in run.snapshot["train"]]
    assert corpus["original"].pk in train_ids and corpus["near_copy"].pk not in train_ids
    assert dict(map(tuple, run.snapshot["train"]))[corpus["pii"].pk] == corpus["pii"].content_hash


def test_a_run_on_an_empty_training_split_is_refused(project, users):
    add(project, users["admin"], "only a test example", split="test")
    with pytest.raises(TrainingRefused) as refused:
        training_run_create(project=project, user=users["admin"])
    assert refused.value.field == "split"


def test_unredacted_personal_data_blocks_export_and_training_when_the_project_asks(project, users):
    add(project, users["admin"], "Mail me at hanako@example.jp", split="train")
    content_type, name, chunks = example_export(project=project, status="any", format="openai")
    assert b"hanako@example.jp" in b"".join(chunks)  # no block by default
    project.block_on_pii = True
    project.save()
    with pytest.raises(InvalidExample) as error:
        example_export(project=project, status="any", format="openai")
    assert error.value.field == "pii" and "1 example still holds personal data" in error.value.message
    with pytest.raises(LaunchBlocked) as blocked:
        training_run_create(project=project, user=users["admin"], override_leakage=True, override_reason="n/a")
    assert blocked.value.blockers[0].gate == "pii"
