"""Quality checks on a real database: what a scan stores, leaks, redaction, duplicate groups."""

from __future__ import annotations

import pytest

from curation.core.services import StaleVersion, example_update
from curation.models import (
    Annotation,
    DuplicateCluster,
    DuplicatePair,
    Example,
    ExampleCheck,
    ExampleRevision,
    QualityScan,
)
from curation.quality import services as svc
from curation.quality import tasks
from tests.quality.conftest import add, run_scan


@pytest.fixture
def scanned(corpus, project, users, django_capture_on_commit_callbacks):
    return run_scan(project, users["admin"], django_capture_on_commit_callbacks)


def _cluster_of(example: Example) -> DuplicateCluster | None:
    check = ExampleCheck.objects.filter(example=example).select_related("cluster").first()
    return check.cluster if check else None


def test_a_scan_groups_near_and_exact_duplicates(scanned, corpus):
    near = _cluster_of(corpus["original"])
    assert near is not None and near == _cluster_of(corpus["near_copy"])
    exact = _cluster_of(corpus["train_twin"])
    assert exact is not None and exact == _cluster_of(corpus["exact_copy"]) and exact != near
    assert _cluster_of(corpus["plain"]) is None
    kinds = dict(DuplicatePair.objects.filter(scan=scanned).values_list("cluster_id", "kind"))
    assert kinds == {near.pk: "near", exact.pk: "exact"}
    assert scanned.summary["duplicates"]["clusters"] == 2
    assert sorted(near.splits) == ["test", "train"]


def test_a_scan_records_personal_data_without_copying_it(scanned, corpus):
    check = ExampleCheck.objects.get(scan=scanned, example=corpus["pii"])
    assert check.pii_count == 2
    assert {f["kind"] for f in check.pii} == {"email", "phone"}
    assert "taro.yamada" not in str(check.pii)  # offsets only: redaction must not leave a copy behind
    assert scanned.summary["pii"] == {"email": 1, "phone": 1}


def test_a_scan_counts_tokens_with_the_base_models_tokenizer(
    project, corpus, users, django_capture_on_commit_callbacks
):
    project.max_seq_length = 60
    project.save()
    scan = run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    lengths = scan.summary["lengths"]
    assert lengths["context"] == 8192 and lengths["limit"] == 60
    assert sum(count for _low, _high, count in lengths["bins"]) == Example.objects.count()
    truncated = set(ExampleCheck.objects.filter(scan=scan, truncated=True).values_list("example_id", flat=True))
    assert corpus["original"].pk in truncated and corpus["other"].pk not in truncated
    assert lengths["over_limit"] == len(truncated)


def test_leaks_list_exact_and_near_copies_with_the_current_splits(scanned, corpus):
    found = {(leak.evaluated.pk, leak.trained.pk, leak.kind) for leak in svc.leaks(corpus["original"].project)}
    assert found == {
        (corpus["near_copy"].pk, corpus["original"].pk, "near"),
        (corpus["exact_copy"].pk, corpus["train_twin"].pk, "exact"),
    }
    # Moving the evaluation copy into training ends the leak; editing the near copy makes the
    # scan's pair out of date, so it is no longer claimed.
    Example.objects.filter(pk=corpus["exact_copy"].pk).update(split="train")
    near = corpus["near_copy"]
    example_update(
        example=near,
        user=None,
        version=near.version,
        messages=[*near.messages[:1], {"role": "assistant", "content": "x"}],
    )
    assert svc.leaks(corpus["original"].project) == []


def test_exact_leaks_are_found_without_any_scan(corpus, project):
    assert QualityScan.objects.count() == 0
    assert [(leak.evaluated.pk, leak.kind) for leak in svc.leaks(project)] == [(corpus["exact_copy"].pk, "exact")]


def test_redacting_an_example_replaces_the_data_and_records_a_revision(scanned, corpus, users):
    example = corpus["pii"]
    n = svc.example_redact(example=example, user=users["annotator"], version=example.version)
    assert n == 2
    example.refresh_from_db()
    assert example.messages[0]["content"] == "Please call me on [PHONE] or write to [EMAIL] about my refund."
    revision = example.revisions.order_by("-id").first()
    assert revision.action == ExampleRevision.Action.REDACT and revision.user == users["annotator"]
    assert "taro.yamada@example.com" in revision.before["messages"][0]["content"]  # the history keeps the original
    assert ExampleCheck.objects.get(example=example).pii_count == 0
    assert svc.pii_unredacted(example.project) == (0, {})


def test_redaction_refuses_a_stale_version(scanned, corpus, users):
    example = corpus["pii"]
    with pytest.raises(StaleVersion):
        svc.example_redact(example=example, user=users["admin"], version=example.version - 1)
    example.refresh_from_db()
    assert "[EMAIL]" not in example.messages[0]["content"]


def test_redact_all_covers_examples_written_after_the_scan(scanned, corpus, project, users):
    late = add(project, users["admin"], "My IBAN is DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111.")
    assert svc.pii_unredacted(project)[0] == 2  # the scan's finding, and the new one checked now
    changed, replaced = svc.pii_redact_all(project=project, user=users["admin"])
    assert (changed, replaced) == (2, 4)
    late.refresh_from_db()
    assert late.messages[0]["content"] == "My IBAN is [IBAN], card [CREDIT_CARD]."
    assert svc.pii_unredacted(project)[0] == 0


def test_keeping_one_of_a_cluster_deletes_the_others_with_their_content_in_history(scanned, corpus, users):
    cluster = _cluster_of(corpus["original"])
    kept = svc.cluster_resolve(cluster=cluster, user=users["admin"], keep=corpus["original"].pk)
    assert kept.pk == corpus["original"].pk
    assert not Example.objects.filter(pk=corpus["near_copy"].pk).exists()
    deletion = ExampleRevision.objects.get(action=ExampleRevision.Action.DELETE)
    assert deletion.before["id"] == corpus["near_copy"].pk and "today" in deletion.before["messages"][0]["content"]
    cluster.refresh_from_db()
    assert cluster.resolution == "kept" and cluster.resolved_by == users["admin"]
    with pytest.raises(svc.ResolveError):
        svc.cluster_resolve(cluster=cluster, user=users["admin"], keep=corpus["original"].pk)


def test_merging_moves_label_metadata_and_annotations_into_the_kept_example(scanned, corpus, users, project):
    twin, copy = corpus["train_twin"], corpus["exact_copy"]
    Example.objects.filter(pk=copy.pk).update(metadata={"ticket": "T-9"}, label=project.labels.get(name="shipping"))
    Annotation.objects.create(
        example=copy, annotator=users["annotator"], status=Annotation.Status.SUBMITTED, based_on_version=1
    )
    cluster = _cluster_of(twin)
    kept = svc.cluster_resolve(cluster=cluster, user=users["admin"], keep=twin.pk, merge=True)
    assert kept.label.name == "shipping"
    assert kept.metadata == {"ticket": "T-9", "merged_from": [copy.pk]}
    assert kept.annotations.get().annotator == users["annotator"] and kept.annotation_count == 1
    assert kept.revisions.order_by("-id").first().action == ExampleRevision.Action.MERGE
    assert not Example.objects.filter(pk=copy.pk).exists()


def test_resolving_refuses_an_example_outside_the_cluster(scanned, corpus, users):
    with pytest.raises(svc.ResolveError) as error:
        svc.cluster_resolve(cluster=_cluster_of(corpus["original"]), user=users["admin"], keep=corpus["plain"].pk)
    assert error.value.field == "keep"
    assert Example.objects.filter(pk=corpus["near_copy"].pk).exists()


def test_a_new_scan_replaces_the_findings_of_the_last(
    scanned, corpus, project, users, django_capture_on_commit_callbacks
):
    second = run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    assert second.number == scanned.number + 1
    assert not ExampleCheck.objects.filter(scan=scanned).exists()
    assert ExampleCheck.objects.filter(scan=second).exists()


def test_only_one_scan_runs_at_a_time(project, users):
    tasks.quality_scan_start(project=project, user=users["admin"])  # on_commit never fires here: stays queued
    with pytest.raises(svc.ScanBusy):
        tasks.quality_scan_start(project=project, user=users["admin"])


def test_a_failing_check_fails_the_scan_and_writes_nothing(
    corpus, project, users, monkeypatch, django_capture_on_commit_callbacks
):
    from curation.quality import facts

    def broken(messages):
        raise RuntimeError("facts exploded")

    monkeypatch.setattr(facts, "assess", broken)
    with django_capture_on_commit_callbacks(execute=True):
        scan = tasks.quality_scan_start(project=project, user=users["admin"])
    scan.refresh_from_db()
    assert scan.status == QualityScan.Status.FAILED and "facts exploded" in scan.error
    assert not ExampleCheck.objects.exists() and not DuplicateCluster.objects.exists()


def test_semantic_duplicates_find_rewordings_that_minhash_misses(project, users, django_capture_on_commit_callbacks):
    a = add(project, users["admin"], "How do I reset my password?", "Use the Forgot password link.", split="train")
    b = add(project, users["admin"], "How can I reset my password?", "Use the Forgot password link.", split="test")
    add(project, users["admin"], "Do you ship to Canada?", "Yes, in five to seven days.", split="train")
    project.semantic_dedupe, project.semantic_threshold = True, 0.9
    project.save()
    scan = run_scan(project, users["admin"], django_capture_on_commit_callbacks)
    pair = DuplicatePair.objects.get(scan=scan)
    assert {pair.a_id, pair.b_id} == {a.pk, b.pk} and pair.kind == "semantic" and pair.similarity >= 0.9
    assert [(leak.evaluated.pk, leak.kind) for leak in svc.leaks(project)] == [(b.pk, "semantic")]
