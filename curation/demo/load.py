"""The demo project and one demo user per role, loaded idempotently."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from curation.models import Example, Label, Membership, Project, Role
from curation.rules.services import rule_create
from curation.services import example_create

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
    return project, added
