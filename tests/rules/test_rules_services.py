"""Rules as a user writes them: every kind matches what it must and nothing else, edits are
versioned and checked, runs store weak labels, and accepting them keeps provenance."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from curation.core.services import example_update
from curation.models import Example, ExampleRevision, LabelingRule, RuleRun, WeakLabel
from curation.rules import spec as S
from curation.rules.accepting import weak_labels_accept
from curation.rules.engine import ABSTAIN, Corpus, apply_rules
from curation.rules.services import (
    StaleRule,
    rule_clean,
    rule_create,
    rule_preview,
    rule_run_execute,
    rule_update,
)
from curation.rules.spec import RuleError, RuleSpec, clean_params
from curation.rules.tasks import rule_run_start
from tests.conftest import reap_after_lease
from tests.rules.conftest import chat, labeled, write_rules


def _votes(kind: str, params: dict, texts: list[str], *, target: str = S.USER, metadata=None) -> list[bool]:
    rule = RuleSpec("r", kind, 0, target, clean_params(kind, params))
    corpus = Corpus([chat(t, "Thanks for writing to Kumo Coffee") for t in texts], metadata or [])
    return [bool(v != ABSTAIN) for v in apply_rules([rule], corpus)[:, 0]]


def test_keywords_match_whole_words_in_any_case_and_can_require_all():
    texts = ["Refund please", "refunded already", "refund and invoice", "nothing here", "返金してください"]
    assert _votes(S.KEYWORDS, {"keywords": "refund, invoice"}, texts) == [True, False, True, False, False]
    assert _votes(S.KEYWORDS, {"keywords": ["refund", "invoice"], "mode": "all"}, texts) == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert _votes(S.KEYWORDS, {"keywords": ["Refund"], "case_sensitive": True}, texts) == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert _votes(S.KEYWORDS, {"keywords": ["返金"], "whole_word": False}, texts) == [False, False, False, False, True]


def test_a_keyword_rule_reads_the_role_it_is_told_to():
    texts = ["Where is my parcel?"]
    assert _votes(S.KEYWORDS, {"keywords": ["kumo"]}, texts, target=S.USER) == [False]
    assert _votes(S.KEYWORDS, {"keywords": ["kumo"]}, texts, target=S.ASSISTANT) == [True]
    assert _votes(S.KEYWORDS, {"keywords": ["kumo", "parcel"], "mode": "all"}, texts, target=S.BOTH) == [True]


def test_regex_rules_search_the_text():
    texts = ["Order #12345 is late", "order 99 is late", "ORDER #77777", ""]
    assert _votes(S.REGEX, {"pattern": r"#\d{5}"}, texts) == [True, False, True, False]
    assert _votes(S.REGEX, {"pattern": r"^order", "case_sensitive": True}, texts) == [False, True, False, False]
    assert _votes(S.REGEX, {"pattern": r"^order"}, texts) == [True, True, True, False]


def test_length_rules_count_words_or_characters():
    texts = ["hi", "one two three four", "x" * 50]
    assert _votes(S.LENGTH, {"unit": "words", "max": 2}, texts) == [True, False, True]
    assert _votes(S.LENGTH, {"unit": "chars", "min": 10, "max": 30}, texts) == [False, True, False]


def test_metadata_rules_compare_fields():
    meta = [{"channel": "email", "priority": 5}, {"channel": "chat", "priority": "2"}, {}, {"tags": ["vip", "jp"]}]
    texts = ["a", "b", "c", "d"]
    assert _votes(S.METADATA, {"key": "channel", "op": "equals", "value": "email"}, texts, metadata=meta) == [
        True,
        False,
        False,
        False,
    ]
    assert _votes(S.METADATA, {"key": "channel", "op": "not_equals", "value": "email"}, texts, metadata=meta) == [
        False,
        True,
        False,
        False,
    ]
    assert _votes(S.METADATA, {"key": "priority", "op": "gt", "value": "3"}, texts, metadata=meta) == [
        True,
        False,
        False,
        False,
    ]
    assert _votes(S.METADATA, {"key": "priority", "op": "exists"}, texts, metadata=meta) == [True, True, False, False]
    assert _votes(S.METADATA, {"key": "channel", "op": "missing"}, texts, metadata=meta) == [False, False, True, True]
    assert _votes(S.METADATA, {"key": "tags", "op": "contains", "value": "VIP"}, texts, metadata=meta) == [
        False,
        False,
        False,
        True,
    ]
    assert _votes(S.METADATA, {"key": "channel", "op": "in", "value": "chat, phone"}, texts, metadata=meta) == [
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        (S.KEYWORDS, {"keywords": " , "}, "keywords"),
        (S.KEYWORDS, {"keywords": ["a"], "mode": "some"}, "mode"),
        (S.REGEX, {"pattern": "("}, "pattern"),
        (S.REGEX, {"pattern": r"(\w+) \1"}, "pattern"),
        (S.REGEX, {"pattern": r"foo(?=bar)"}, "pattern"),
        (S.LENGTH, {"unit": "words"}, "min"),
        (S.LENGTH, {"min": 5, "max": 2}, "max"),
        (S.METADATA, {"key": "x", "op": "gt", "value": "many"}, "value"),
        (S.SIMILARITY, {"threshold": 1.5}, "threshold"),
        ("python", {"code": "import os"}, "kind"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(kind, params, field):
    with pytest.raises(RuleError) as error:
        clean_params(kind, params)
    assert error.value.field == field and error.value.message


def test_a_catastrophic_backtracking_pattern_finishes_quickly():
    # (a+)+$ takes exponential time in a backtracking engine on "aaaa…!"; RE2 is linear.
    rule = RuleSpec("evil", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"(a+)+$|(x+x+)+y"}))
    corpus = Corpus([chat("a" * 50_000 + "!"), chat("x" * 50_000), chat("aaa")])
    result: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: result.append(apply_rules([rule], corpus)), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=30)  # a backtracking engine would not return in our lifetime
    assert not worker.is_alive(), f"the applier hung for {time.monotonic() - started:.0f} s"
    assert result[0][:, 0].tolist() == [ABSTAIN, ABSTAIN, 0]


def test_a_pattern_too_large_to_run_safely_is_refused_with_a_clear_error():
    with pytest.raises(RuleError) as error:
        clean_params(S.REGEX, {"pattern": r"((a{100}){100}){100}"})
    assert error.value.field == "pattern" and "too large" in error.value.message


def test_similarity_rules_vote_for_texts_close_to_examples_people_labeled(corpus, project):
    data = rule_clean(
        project=project,
        name="near billing",
        kind=S.SIMILARITY,
        params={"threshold": 0.6},
        label="billing",
        target=S.USER,
    )
    preview = rule_preview(project=project, rule=data, sample=20)
    hits = {item["id"] for item in preview.sample}
    by_text = {e.first_user_text: e.pk for e in corpus}
    assert by_text["Please refund the duplicate charge"] in hits  # near another billing example
    assert by_text["Hello, nice shop"] not in hits
    assert by_text["Where is my parcel? Tracking is stuck"] not in hits


def test_zero_shot_rules_vote_when_the_backend_answers_their_label(corpus, project, monkeypatch):
    class Backend:
        name = "fake"

        def generate(self, conversations, *, max_new_tokens=64, temperature=0.0):
            prompts = [c[-1]["content"] for c in conversations]
            return ["billing" if "refund" in p.lower() else "none" for p in prompts]

    monkeypatch.setattr("llm.local.default_backend", lambda: Backend())
    data = rule_clean(project=project, name="llm", kind=S.ZERO_SHOT, params={}, label="billing", target=S.USER)
    preview = rule_preview(project=project, rule=data, sample=20)
    texts = {e.pk: e.first_user_text for e in corpus}
    assert {texts[item["id"]] for item in preview.sample} == {
        "Please refund the duplicate charge",
        "Can I get a refund for the grinder?",
        "Refund my parcel shipping cost please",
    }


def test_the_preview_counts_hits_highlights_them_and_measures_accuracy(corpus, project):
    data = rule_clean(
        project=project,
        name="refund",
        kind=S.KEYWORDS,
        params={"keywords": "refund, parcel"},
        label="billing",
        target=S.USER,
    )
    preview = rule_preview(project=project, rule=data)
    assert preview.hits == 6 and preview.scanned == 12
    # Among people's labels it hit one billing and two shipping examples.
    assert (preview.gold_hits, preview.correct) == (3, 1)
    first = next(item for item in preview.sample if item["id"] == corpus[1].pk)
    assert ("refund", True) in first["parts"] and first["gold"] == "billing"


def test_annotators_and_reviewers_may_not_writewrite_rules(project, users):
    for who in ("annotator", "reviewer"):
        with pytest.raises(PermissionDenied):
            rule_create(
                project=project,
                user=users[who],
                name="x",
                kind=S.KEYWORDS,
                params={"keywords": "refund"},
                label="billing",
                target="user",
            )
    assert not LabelingRule.objects.exists()


def test_each_edit_is_a_new_version_and_a_stale_edit_is_refused(corpus, project, users):
    admin = users["admin"]
    rule = rule_create(
        project=project,
        user=admin,
        name="refund",
        kind=S.KEYWORDS,
        params={"keywords": "refund, parcel"},
        label="billing",
        target="user",
    )
    rule = rule_update(rule=rule, user=admin, version=1, params={"keywords": "refund, charged, invoice"})
    assert rule.version == 2
    history = list(rule.revisions.order_by("version"))
    assert [r.version for r in history] == [1, 2]
    # The history shows the edit made the rule better on what people labeled.
    assert history[0].stats["saved"]["accuracy"] == pytest.approx(1 / 3)
    assert history[1].stats["saved"]["accuracy"] == 1.0
    with pytest.raises(StaleRule):
        rule_update(rule=rule, user=admin, version=1, name="renamed")
    assert LabelingRule.objects.get().name == "refund"


def test_a_run_stores_weak_labels_with_votes_analysis_and_both_models(corpus, project, users):
    write_rules(project, users["admin"])
    run = rule_run_start(project=project, user=users["admin"])
    run = rule_run_execute(run=RuleRun.objects.get(pk=run.pk))  # the task is immediate in tests
    assert run.status == RuleRun.Status.DONE, run.error
    assert run.number == 1 and WeakLabel.objects.filter(run=run).count() == 12
    weak = {w.example.first_user_text: w for w in WeakLabel.objects.filter(run=run).select_related("example", "label")}
    conflicted = weak["Refund my parcel shipping cost please"]
    assert conflicted.conflict and set(conflicted.votes.values()) == {"billing", "shipping"}
    assert weak["Hello, nice shop"].label is None and weak["Hello, nice shop"].confidence == 0.0
    assert weak["I need an invoice for last month"].label.name == "billing"
    assert [row["name"] for row in run.analysis] == ["billing words", "parcel", "amounts"]
    assert run.analysis[1]["polarity"] == ["shipping"] and run.analysis[1]["accuracy"] == 1.0
    assert run.metrics["model"] == "label_model"
    assert run.metrics["majority"]["accuracy"] == 1.0 and run.metrics["label_model"]["n_gold"] == 6
    revision = LabelingRule.objects.get(name="parcel").revisions.get()
    assert revision.stats["run"]["number"] == 1


def test_a_run_that_fails_leaves_no_weak_labels_and_says_why(corpus, project, users, monkeypatch):
    write_rules(project, users["admin"])
    run = rule_run_start(project=project, user=users["admin"])
    RuleRun.objects.filter(pk=run.pk).update(status=RuleRun.Status.QUEUED)
    WeakLabel.objects.all().delete()

    def broken(*args, **kwargs):
        raise MemoryError("out of memory while fitting")

    monkeypatch.setattr("curation.rules.analysis.label", broken)
    with pytest.raises(MemoryError):
        rule_run_execute(run=RuleRun.objects.get(pk=run.pk))
    run.refresh_from_db()
    assert run.status == RuleRun.Status.FAILED and "out of memory" in run.error
    assert not WeakLabel.objects.filter(run=run).exists()


def test_a_run_left_running_by_a_dead_worker_is_marked_interrupted(project, users):
    run = RuleRun.objects.create(project=project, number=7, status=RuleRun.Status.RUNNING)
    assert reap_after_lease() == 1
    run.refresh_from_db()
    assert run.status == RuleRun.Status.INTERRUPTED and run.error


def test_accepting_weak_labels_never_overwrites_people_and_keeps_provenance(corpus, project, users):
    admin = users["admin"]
    write_rules(project, admin)
    run = rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=admin).pk))
    before = labeled(project)

    changed = weak_labels_accept(run=run, user=admin, threshold=0.9)

    after = labeled(project)
    assert all(after[text] == label for text, label in before.items() if label is not None)
    newly = {text: label for text, label in after.items() if before[text] is None and label is not None}
    assert len(newly) == changed and newly["I need an invoice for last month"] == "billing"
    assert "Hello, nice shop" not in newly
    example = Example.objects.get(messages__0__content="I need an invoice for last month")
    assert example.weak_label.run == run and example.weak_label.confidence >= 0.9
    revision = ExampleRevision.objects.filter(example=example).first()
    assert revision.after["label"] == "billing" and revision.after["label_source"]["rule_set"] == 1
    # Accepting again changes nothing; a person's edit takes the label over.
    assert weak_labels_accept(run=run, user=admin, threshold=0.9) == 0
    example = example_update(example=example, user=users["annotator"], version=example.version, label="shipping")
    assert example.weak_label is None


def test_annotators_may_not_start_runs_or_accept_labels(corpus, project, users):
    write_rules(project, users["admin"])
    with pytest.raises(PermissionDenied):
        rule_run_start(project=project, user=users["annotator"])
    run = rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=users["admin"]).pk))
    with pytest.raises(PermissionDenied):
        weak_labels_accept(run=run, user=users["reviewer"], threshold=0.5)


def test_the_queue_can_send_the_least_certain_examples_first(corpus, project, users):
    from curation.labeling.services import queue_next
    from curation.models import Project
    from curation.rules.services import queue_order_set

    admin = users["admin"]
    write_rules(project, admin)
    rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=admin).pk))
    assert queue_next(project=project, user=users["annotator"]).pk == corpus[0].pk  # oldest first by default

    queue_order_set(project=project, user=admin, order=Project.QueueOrder.UNCERTAIN)
    project.refresh_from_db()
    first = queue_next(project=project, user=users["reviewer"])

    assert first.first_user_text == "Refund my parcel shipping cost please"  # the rules conflict on it
    with pytest.raises(PermissionDenied):
        queue_order_set(project=project, user=users["reviewer"], order=Project.QueueOrder.OLDEST)
