"""Rule runs on a real Huey consumer in another process: finished, and killed halfway."""

from __future__ import annotations

from curation.models import LabelingRule, RuleRun, WeakLabel
from curation.rules import spec as S
from curation.rules.services import rule_create
from curation.rules.tasks import rule_run_start
from tests.conftest import reap_after_lease, wait_for


def _finished(run_id: int) -> RuleRun | None:
    run = RuleRun.objects.get(pk=run_id)
    return run if run.finished else None


def test_a_real_consumer_applies_the_rules_and_stores_weak_labels(huey_consumer, corpus, project, users):
    admin = users["admin"]
    rule_create(
        project=project,
        user=admin,
        name="billing",
        kind=S.KEYWORDS,
        params={"keywords": "refund, invoice, charged"},
        label="billing",
        target="user",
    )
    rule_create(
        project=project,
        user=admin,
        name="shipping",
        kind=S.KEYWORDS,
        params={"keywords": "parcel, tracking"},
        label="shipping",
        target="user",
    )
    run = rule_run_start(project=project, user=admin)

    run = wait_for(lambda: _finished(run.pk), timeout=90)

    assert run.status == RuleRun.Status.DONE, run.error
    assert run.processed == run.total == 12
    assert WeakLabel.objects.filter(run=run).count() == 12
    assert WeakLabel.objects.filter(run=run, label__name="shipping").exists()
    assert run.metrics["model"] == "majority"  # two rules: too few for the label model, and it says so


def test_a_worker_killed_during_a_run_leaves_it_interrupted_with_no_weak_labels(huey_consumer, corpus, project, users):
    admin = users["admin"]
    rule_create(
        project=project,
        user=admin,
        name="words",
        kind=S.KEYWORDS,
        params={"keywords": "refund"},
        label="billing",
        target="user",
    )
    # The LLM rule loads the embedded model first: seconds during which the run is running.
    LabelingRule.objects.create(
        project=project,
        name="llm",
        kind=S.ZERO_SHOT,
        params={"instruction": ""},
        label=project.labels.get(name="billing"),
        target="user",
    )
    run = rule_run_start(project=project, user=admin)
    wait_for(lambda: RuleRun.objects.get(pk=run.pk).status == RuleRun.Status.RUNNING, timeout=60, interval=0.05)

    huey_consumer.kill()
    huey_consumer.wait(timeout=20)

    assert RuleRun.objects.get(pk=run.pk).status == RuleRun.Status.RUNNING
    assert reap_after_lease() == 1  # a live consumer, once the dead one's lease ran out
    run.refresh_from_db()
    assert run.status == RuleRun.Status.INTERRUPTED and "no weak labels" in run.error
    assert not WeakLabel.objects.filter(run=run).exists()
