"""Every URL and API endpoint, for every role: allowed answers and forbidden answers.

A route must declare what it needs (``project_view(Action.X)``, ``signed_in``, a
``ProjectAPIView.project_action`` or ``required_access``); a new route without one fails
``test_every_route_declares_who_may_use_it``. The expected matrix is written out here, not
imported, so a change to curation/core/permissions.py shows up as a failing test to update on
purpose, together with the documented table.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.services import api_token_create
from curation.core.services import example_create
from curation.models import (
    Connection,
    Draft,
    DuplicateCluster,
    Example,
    ExampleCheck,
    GenerationJob,
    ImportJob,
    Label,
    LabelingRule,
    Membership,
    PromptTemplate,
    QualityScan,
    Role,
    RuleRun,
    Source,
)
from tests.conftest import PASSWORD
from training.models import Comparison, EvalSample, Evaluation, TrainingRun

ROLES = ["anonymous", "outsider", "annotator", "reviewer", "admin", "superuser"]
EXPECTED = {
    "view": {"annotator", "reviewer", "admin", "superuser"},
    "label": {"annotator", "reviewer", "admin", "superuser"},
    "edit": {"annotator", "reviewer", "admin", "superuser"},
    "review": {"reviewer", "admin", "superuser"},
    "export": {"reviewer", "admin", "superuser"},
    "import": {"admin", "superuser"},
    "manage_rules": {"admin", "superuser"},
    "launch_training": {"admin", "superuser"},
    "manage_project": {"admin", "superuser"},
    # Creating projects: staff or the curation.add_project permission (only the superuser here).
    "create_project": {"superuser"},
    "authenticated": {"outsider", "annotator", "reviewer", "admin", "superuser"},
    "public": set(ROLES),
}
# Django's own pages: sign-in is public; the admin site checks is_staff itself.
DJANGO_ROUTES = {
    "login": "public",
    "logout": "authenticated",
    "password_change": "authenticated",
    "password_change_done": "authenticated",
}
SKIPPED_PREFIXES = ("admin/",)


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


ROUTES = [(route, p) for route, p in _walk(get_resolver().url_patterns) if not route.startswith(SKIPPED_PREFIXES)]


def access_for(pattern: URLPattern, method: str) -> str | None:
    if pattern.name in DJANGO_ROUTES:
        return DJANGO_ROUTES[pattern.name]
    callback = pattern.callback
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        if hasattr(view_class, "action_for") and hasattr(view_class, "project_action"):
            return str(view_class.action_for(method))
        return getattr(view_class, "required_access", None)
    return getattr(callback, "required_access", None)


def test_every_route_declares_who_may_use_it():
    undeclared = [route for route, p in ROUTES if access_for(p, "GET") is None]
    assert not undeclared, f"routes without a permission declaration: {undeclared}"


def test_the_walk_sees_the_api_and_the_pages():
    names = {p.name for _, p in ROUTES}
    assert {"api_examples", "api_example", "import_upload", "export", "example_list"} <= names
    assert {"source_list", "source_detail", "source_import", "api_sources", "api_source_imports"} <= names


CASES = [
    pytest.param(route, pattern, method, id=f"{method} {route}")
    for route, pattern in ROUTES
    for method in ("GET", "POST", "PATCH", "DELETE")
]


def _url(route: str, objects: dict[str, int | str]) -> str:
    url = "/" + route
    for key, value in objects.items():
        for converter in ("slug", "int", "str"):
            url = url.replace(f"<{converter}:{key}>", str(value))
    assert "<" not in url, f"no test object for {url}"
    return url


def _client(users, role):
    client = Client()
    if role != "anonymous":
        assert client.login(username=users[role].username, password=PASSWORD)
    return client


def _denied(response, role: str) -> bool:
    if role == "anonymous":
        login_redirect = response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
        return login_redirect or response.status_code in (401, 403)
    return response.status_code in (403, 404)


@pytest.mark.parametrize("route,pattern,method", CASES)
def test_role_gets_the_answer_the_matrix_promises(route, pattern, method, project, users, tmp_path):
    job = ImportJob.objects.create(
        project=project, format="openai", filename="a.jsonl", path="/nonexistent", status=ImportJob.Status.SUCCEEDED
    )

    def request(role: str):
        # A fresh example for each request, so a DELETE by one role does not hide it from the next.
        example = example_create(
            project=project,
            user=users["admin"],
            label="billing",
            messages=[{"role": "user", "content": f"Q {role}"}, {"role": "assistant", "content": "A"}],
        )
        # A fresh rule and rule run too: one role deleting them must not hide them from the next.
        rule = LabelingRule.objects.create(
            project=project,
            name=f"rule {example.pk}",
            kind="keywords",
            params={"keywords": ["Q"], "mode": "any", "whole_word": True, "case_sensitive": False},
            label=project.labels.get(name="billing"),
        )
        run = RuleRun.objects.create(
            # Counting down, so runs the app numbers (the highest + 1) never collide with these.
            project=project,
            number=1_000_000 - example.pk,
            status=RuleRun.Status.DONE,
            label_names=["billing", "shipping"],
        )
        # And a finished quality check with one duplicate group, for the same reason.
        scan = QualityScan.objects.create(
            project=project, number=1_000_000 - example.pk, status=QualityScan.Status.DONE, config={}
        )
        cluster = DuplicateCluster.objects.create(scan=scan, size=1, similarity=1.0, splits=["unassigned"])
        ExampleCheck.objects.create(scan=scan, example=example, content_hash=example.content_hash, cluster=cluster)
        generation = GenerationJob.objects.create(
            project=project, kind=GenerationJob.Kind.AUGMENT, status=GenerationJob.Status.DONE
        )
        # A synthetic job with a template and a draft waiting for review, for the generation routes.
        template = PromptTemplate.objects.create(project=project, name=f"t{example.pk}", text="{topic}")
        synthetic = GenerationJob.objects.create(
            project=project, kind=GenerationJob.Kind.SYNTHETIC, template=template, status=GenerationJob.Status.DONE
        )
        draft = example_create(
            project=project,
            user=users["admin"],
            messages=[{"role": "user", "content": f"Q {role}?"}, {"role": "assistant", "content": "A draft"}],
            status=Example.Status.DRAFT,
            source=Example.Source.SYNTHETIC,
        )
        Draft.objects.create(example=draft, project=project, job=synthetic, template=template, group="p0", target=1)
        # A finished training run with an output folder, for the training routes.
        output = tmp_path / f"run-{example.pk}"
        output.mkdir()
        (output / "adapter_config.json").write_text("{}")
        training_run = TrainingRun.objects.create(
            project=project, number=1_000_000 - example.pk, status=TrainingRun.Status.DONE, output_dir=str(output)
        )
        # Its finished evaluation, with one pair to judge.
        evaluation = Evaluation.objects.create(run=training_run, status=Evaluation.Status.DONE, total=1, processed=1)
        sample = EvalSample.objects.create(
            evaluation=evaluation, prompt="Q?", reference="A", outputs={"base": "B", "few_shot": "F", "tuned": "T"}
        )
        comparison = Comparison.objects.create(evaluation=evaluation, sample=sample, opponent="base")
        # A connection of the project's own (one role deleting it must not hide it from the next).
        connection = Connection.objects.create(project=project, name=f"c{example.pk}", kind=Connection.Kind.EMBEDDED)
        # A source of the project's own (one role deleting it must not hide it from the next).
        source = Source.objects.create(
            project=project,
            name=f"s{example.pk}",
            kind=Source.Kind.SQL,
            options={"query": "SELECT 1", "row_limit": 10, "timeout": 5},
        )
        # A fresh label and member: an admin's merge, delete or removal must not hide them from the next role.
        extra_label = Label.objects.create(project=project, name=f"extra {example.pk}")
        member = type(users["admin"]).objects.create_user(username=f"member{example.pk}", password=PASSWORD)
        Membership.objects.create(project=project, user=member, role=Role.ANNOTATOR)
        generating = "generate/" in route or "generation-jobs/" in route
        url = _url(
            route,
            {
                "slug": project.slug,
                "example_id": draft.pk if "drafts/" in route else example.pk,
                "job_id": generation.pk if "augment/" in route else synthetic.pk if generating else job.pk,
                "template_id": template.pk,
                # Training routes have a "runs" segment; rule runs live under "rules/runs/" and "rule-runs/".
                "run_id": training_run.pk if "runs" in route.split("/") and "rules" not in route else run.pk,
                "revision_id": example.revisions.first().pk,
                "rule_id": rule.pk,
                "cluster_id": cluster.pk,
                "number": scan.number,
                "evaluation_id": evaluation.pk,
                "key": comparison.key,
                "connection_id": connection.pk,
                "source_id": source.pk,
                "label_id": extra_label.pk,
                "user_id": member.pk,
                # The requesting user's own API token (someone else's is 404 to them).
                "token_id": api_token_create(user=users[role], name="matrix")[0].token_key
                if role != "anonymous"
                else "no-token",
            },
        )
        client = _client(users, role)
        send = getattr(client, method.lower())
        return send(url, content_type="application/json") if method in ("PATCH", "DELETE") else send(url)

    # A method the route does not offer answers 405 to everyone (checked for anonymous too,
    # so a 405 cannot hide a missing check in front of it).
    if request("superuser").status_code == 405:
        for role in ROLES:
            response = request(role)
            assert response.status_code == 405 or _denied(response, role), (role, response.status_code)
        return
    access = access_for(pattern, method)
    assert access in EXPECTED, f"{method} {route}: unknown access {access!r}"
    for role in ROLES:
        response = request(role)
        if role in EXPECTED[access]:
            assert not _denied(response, role) and response.status_code < 500, (
                f"{role} should be allowed to {method} {route} ({access}); got {response.status_code}"
            )
        else:
            assert _denied(response, role), (
                f"{role} should be refused {method} {route} ({access}); got {response.status_code}"
            )


@pytest.mark.parametrize("role,allowed", [("annotator", False), ("admin", True), ("superuser", True)])
def test_admin_site_is_for_staff_only(role, allowed, users, client):
    users["admin"].is_staff = True
    users["admin"].is_superuser = True
    users["admin"].save()
    client.login(username=users[role].username, password=PASSWORD)
    response = client.get("/admin/curation/example/")
    assert (response.status_code == 200) is allowed


def test_outsider_cannot_tell_a_project_exists(users, client, project):
    client.login(username="outsider", password=PASSWORD)
    assert client.get(f"/p/{project.slug}/").status_code == 404
    assert client.get("/p/no-such-project/").status_code == 404
    assert project.name not in client.get("/").content.decode()


def test_member_sees_only_their_projects_in_the_api(users, client, project):
    from curation.models import Project

    Project.objects.create(name="Secret", slug="secret")
    client.login(username="annie", password=PASSWORD)
    slugs = [p["slug"] for p in client.get("/api/projects/").json()["results"]]
    assert slugs == ["support"]
