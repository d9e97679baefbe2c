import json

from django.core.management import call_command

from curation.core.services import example_update
from curation.models import Draft, Example, Membership, Project


def test_the_demo_loads_once_however_often_it_runs(db):
    call_command("load_demo")
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    assert Example.objects.filter(project=project).count() == 42 + 4  # and four drafts to review
    drafts = Draft.objects.filter(project=project).select_related("example")
    assert sorted(d.group for d in drafts) == ["p0", "p0", "p1", "p2"]
    assert all(d.example.status == Example.Status.DRAFT and d.decision == "pending" for d in drafts)
    assert project.generation_jobs.get().status == "done"
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"demo-admin": "admin", "demo-reviewer": "reviewer", "demo-annotator": "annotator"}
    assert set(project.labels.values_list("name", flat=True)) == {
        "billing",
        "shipping",
        "returns",
        "product",
        "account",
    }


def test_the_demo_keeps_what_people_changed(db):
    call_command("load_demo")
    example = Example.objects.filter(project__slug="kumo-support").first()
    changed = example.messages + [{"role": "user", "content": "one more thing"}]
    example_update(example=example, user=None, version=example.version, messages=changed)
    Example.objects.filter(project__slug="kumo-support").last().delete()
    call_command("load_demo")
    example.refresh_from_db()
    assert example.messages[-1]["content"] == "one more thing"
    assert Example.objects.filter(project__slug="kumo-support").count() == 41 + 4


def test_the_demo_json_answers_parse(db):
    call_command("load_demo")
    json_examples = Example.objects.filter(project__slug="kumo-support", metadata__task="json")
    assert json_examples.count() >= 10
    for example in json_examples:
        json.loads(example.messages[-1]["content"])


def test_the_demo_rules_apply_and_agree_with_the_demo_labels_more_often_than_not(db):
    from curation.models import RuleRun
    from curation.rules.services import rule_run_execute
    from curation.rules.tasks import rule_run_start

    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    assert project.rules.count() == 5
    admin = project.memberships.get(role="admin").user
    run = rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=admin).pk))
    assert run.status == RuleRun.Status.DONE, run.error
    assert run.metrics["label_model"]["accuracy"] > 0.6 and run.metrics["majority"]["accuracy"] > 0.6
