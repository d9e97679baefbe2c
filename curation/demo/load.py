"""The demo project and one demo user per role, loaded idempotently."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from curation.core.services import example_create
from curation.models import Example, GenerationJob, Label, Membership, Project, Role
from curation.rules.services import rule_create

DEMO_FILE = Path(__file__).with_name("demo_project.json")
DEMO_USERS = [("demo-admin", Role.ADMIN), ("demo-reviewer", Role.REVIEWER), ("demo-annotator", Role.ANNOTATOR)]


@transaction.atomic
def demo_load(*, password: str) -> tuple[Project, int]:
    """Create what is missing and change nothing that exists. Returns (project, examples added)."""
    data = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    User = get_user_model()
    fields = data["project"]
    project, _ = Project.objects.get_or_create(slug=fields["slug"], defaults=fields)
    users = {}
    for username, role in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            # The demo admin also runs Django's admin site.
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
        users[role] = user
    for label in data["labels"]:
        Label.objects.get_or_create(project=project, name=label["name"], defaults=label)
    # Examples only go into an empty project: once people have edited or deleted demo
    # examples, loading again must not bring the originals back.
    added = 0
    if not Example.objects.filter(project=project).exists():
        for row in data["examples"]:
            example_create(project=project, user=users[Role.ADMIN], source=Example.Source.HUMAN, **row)
        added = len(data["examples"])
    # Rules go in once, after the examples, so their first version is measured on them.
    for rule in data.get("rules", []):
        if not project.rules.filter(name=rule["name"]).exists() and added:
            rule_create(project=project, user=users[Role.ADMIN], **rule)
    if added and "generation" in data:
        _demo_drafts(project, users[Role.ADMIN], data["generation"])
    return project, added


def _demo_drafts(project: Project, user: object, spec: dict) -> None:
    """A template and a finished job with pre-written drafts, so the review queue has work to
    show before anyone has run the model (one prompt has two candidates to rank)."""
    from curation.connections.services import embedded_connection
    from curation.generation.checks import DraftChecker
    from curation.generation.synthetic import DraftRow, write_drafts
    from curation.generation.templates import template_save

    template = template_save(
        project=project,
        user=user,
        name=spec["template"]["name"],
        **{k: v for k, v in spec["template"].items() if k != "name"},
    )
    count = len(spec["drafts"])
    job = GenerationJob.objects.create(
        project=project,
        kind=GenerationJob.Kind.SYNTHETIC,
        template=template,
        backend="demo:pre-written",
        config={
            "count": count,
            "candidates": 2,
            "topics": spec["topics"],
            "task_types": ["customer support"],
            "temperature": 0.7,
            "max_new_tokens": 256,
            "critique": False,
            "seed": 0,
            # The embedded model's connection, so "new job" from here starts on it.
            "backend": {"connection": embedded_connection().pk},
        },
        status=GenerationJob.Status.DONE,
        total=count,
        processed=count,
        created_by=user,
    )
    checker = DraftChecker(project, job_id=job.pk)
    system = [{"role": "system", "content": project.system_prompt}] if project.system_prompt else []
    labels = dict(project.labels.values_list("name", "id"))
    made = 0
    for prompt in spec["drafts"]:
        rows = []
        for candidate, answer in enumerate(prompt["answers"]):
            messages = [
                *system,
                {"role": "user", "content": prompt["request"]},
                {"role": "assistant", "content": answer},
            ]
            target = len(messages) - 1
            rows.append(
                DraftRow(
                    key=f"{prompt['group']}:{candidate}",
                    group=prompt["group"],
                    candidate=candidate,
                    messages=messages,
                    target=target,
                    label_id=labels.get(prompt.get("label")),
                    metadata={"topic": prompt["topic"], "task_type": "customer support"},
                    request=template.text,
                    original=answer,
                    flags=checker.check(messages, target=target, group=prompt["group"]),
                )
            )
        made += len(write_drafts(job, rows))
    GenerationJob.objects.filter(pk=job.pk).update(created_count=made, finished_at=job.created_at)


def demo_logins(*, password: str) -> list[tuple[str, str]]:
    """(username, role) of the demo users that exist and still take the published password:
    what `serve` may print. Only `load_demo` creates them; an instance without the demo, or
    whose demo passwords were changed, prints none."""
    users = {u.username: u for u in get_user_model().objects.filter(username__in=[name for name, _ in DEMO_USERS])}
    return [(name, role) for name, role in DEMO_USERS if name in users and users[name].check_password(password)]
