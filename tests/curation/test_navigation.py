"""The project menu on every project page, and the dashboard's "what to do next": each role is
offered only what its pages accept, in the order of the work, with the current section marked
and what waits counted; the next steps follow the project's state."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from curation.core.services import example_create
from curation.labeling import services as labeling
from curation.models import Example
from curation.workspace import navigation
from curation.workspace.navigation import MENU_QUERIES, SECTIONS, next_steps, project_menu
from tests.conftest import PASSWORD
from tests.training.conftest import make_run
from tests.training.test_evaluation_pages import evaluation_of

ORDER = [section.key for section in SECTIONS]
ENTRY = re.compile(
    r'<a href="(?P<url>[^"]+)" data-section="(?P<key>\w+)"(?: aria-current="(?P<current>\w+)")?[^>]*>(?P<body>.*?)</a>'
)
LOGINS = {"annotator": "annie", "reviewer": "rhea", "admin": "adam"}


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "answer"}]


def menu(client, url: str) -> list[dict[str, str]]:
    html = client.get(url).content.decode()
    [nav] = re.findall(r'<nav class="project-nav".*?</nav>', html, re.S)
    return [m.groupdict() for m in ENTRY.finditer(nav)]


def exists(name: str) -> bool:
    try:
        reverse(name, args=["x"])
    except NoReverseMatch:
        return False
    return True


@pytest.mark.parametrize("role", ["annotator", "reviewer", "admin"])
def test_each_role_sees_the_entries_it_may_open_in_the_order_of_the_work(client, project, users, role):
    client.login(username=LOGINS[role], password=PASSWORD)
    entries = menu(client, f"/p/{project.slug}/")
    keys = [e["key"] for e in entries]
    assert keys == sorted(keys, key=ORDER.index)
    expected = {
        "annotator": {"label", "quality", "train", "evaluate"},
        "reviewer": {"label", "review", "quality", "generate", "train", "evaluate", "export"},
        "admin": set(ORDER) - (set() if exists("project_settings") else {"settings"}),
    }[role]
    assert set(keys) == expected
    for entry in entries:  # every entry offered opens for this role
        assert client.get(entry["url"]).status_code == 200, entry
    # The annotator's Evaluate is the evaluation list; judging is for reviewers.
    evaluate = next(e["url"] for e in entries if e["key"] == "evaluate")
    assert evaluate == reverse("evaluation_compare" if role == "annotator" else "judge_home", args=[project.slug])


def test_the_menu_is_on_every_project_page_and_marks_the_current_section(client, project, users, example):
    client.login(username="adam", password=PASSWORD)
    slug = project.slug

    def current(url: str) -> dict[str, str]:
        return {e["key"]: e["current"] for e in menu(client, url) if e["current"]}

    assert current(f"/p/{slug}/") == {}
    assert current(f"/p/{slug}/label/") == {"label": "page"}
    assert current(f"/p/{slug}/quality/pii/") == {"quality": "true"}
    assert current(f"/p/{slug}/disagreements/") == {"review": "true"}
    assert current(f"/p/{slug}/splits/") == {"train": "true"}
    assert current(f"/p/{slug}/runs/new/") == {"train": "true"}
    assert current(f"/p/{slug}/evaluations/compare/") == {"evaluate": "true"}
    assert current(f"/p/{slug}/connections/") == {"generate": "true"}
    assert current(f"/p/{slug}/examples/{example.pk}/") == {}
    if exists("project_members"):
        assert current(reverse("project_members", args=[slug])) == {"settings": "true"}
    # Not on pages outside a project.
    assert 'class="project-nav"' not in client.get("/").content.decode()


def test_the_menu_counts_what_waits_in_review_and_in_the_queue(client, project, users):
    project.annotations_per_example = 2
    project.save()
    examples = [example_create(project=project, user=users["admin"], messages=chat(i)) for i in range(4)]
    Example.objects.filter(pk=examples[0].pk).update(status=Example.Status.APPROVED)
    first = Example.objects.get(pk=examples[0].pk)
    labeling.annotation_submit(example=first, user=users["annotator"], based_on_version=first.version, label="billing")
    first.refresh_from_db()
    labeling.annotation_submit(example=first, user=users["reviewer"], based_on_version=first.version, label="shipping")
    # Three examples need review, one disagreement; annie has answered one of four.
    client.login(username="rhea", password=PASSWORD)
    entries = {e["key"]: e for e in menu(client, f"/p/{project.slug}/examples/")}
    assert 'class="nav-count" aria-hidden="true">4<' in entries["review"]["body"]
    html = client.get(f"/p/{project.slug}/examples/").content.decode()
    assert "3 examples need review, 0 drafts waiting, 1 disagreement" in html
    client.logout()
    client.login(username="annie", password=PASSWORD)
    entries = {e["key"]: e for e in menu(client, f"/p/{project.slug}/examples/")}
    assert "review" not in entries
    assert '<span class="nav-count" aria-hidden="true">3</span>' in entries["label"]["body"]
    assert "3 examples left in your queue" in client.get(f"/p/{project.slug}/examples/").content.decode()


def test_the_menu_costs_a_few_queries_and_none_on_htmx_fragments(client, rf, project, users, example, monkeypatch):
    for role, user in (("admin", users["admin"]), ("annotator", users["annotator"])):
        request = rf.get(f"/p/{project.slug}/examples/")
        request.user = user
        with CaptureQueriesContext(connection) as queries:
            entries = project_menu(request, project, role)
        assert entries and len(queries.captured_queries) <= MENU_QUERIES
    client.login(username="adam", password=PASSWORD)
    built: list[str] = []
    monkeypatch.setattr(navigation, "project_menu", lambda request, *args: built.append(request.path) or [])
    response = client.get(f"/p/{project.slug}/examples/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="example-table")
    assert response.status_code == 200 and 'class="project-nav"' not in response.content.decode()
    assert built == []  # never computed for a fragment
    client.get(f"/p/{project.slug}/examples/")
    assert built == [f"/p/{project.slug}/examples/"]


# --- what to do next -----------------------------------------------------------------------


def steps(project, role: str, **counts) -> list[str]:
    total = Example.objects.filter(project=project).count()
    base = {"unlabelled": 0, "disagreements": 0, "needs_review": 0, "drafts": 0}
    return [s.key for s in next_steps(project=project, role=role, counts={**base, **counts}, total=total)]


def test_an_empty_project_suggests_importing_to_those_who_may(project):
    assert steps(project, "admin") == ["import"]
    assert steps(project, "annotator") == []


def test_next_steps_follow_the_state_of_the_work_in_order(project, users):
    example = example_create(project=project, user=users["admin"], messages=chat(1))
    assert steps(project, "admin", unlabelled=5, disagreements=2, needs_review=1) == ["label", "disagreements"]
    assert steps(project, "reviewer", disagreements=2, needs_review=1) == ["disagreements", "review"]
    assert steps(project, "annotator", disagreements=2, needs_review=1, unlabelled=1) == ["label"]
    assert steps(project, "admin") == ["splits"]  # nothing waits; the examples are not split yet
    Example.objects.filter(pk=example.pk).update(split=Example.Split.TRAIN)
    assert steps(project, "admin") == ["train"]
    assert steps(project, "reviewer") == []  # reviewers do not launch training
    run = make_run(project, users["admin"], number=1)
    assert steps(project, "admin") == ["evaluate"]
    evaluation_of(run)
    assert steps(project, "admin") == []


def test_an_annotator_with_examples_waiting_is_sent_to_label_them(client, project, users):
    for i in range(3):
        example_create(project=project, user=users["admin"], messages=chat(i), label="billing")
    client.force_login(users["annotator"])
    page = client.get(reverse("project_detail", args=[project.slug])).content.decode()
    card = page[page.index("What to do next") :]
    assert "Label: 3 examples wait for your answer" in card
    assert reverse("label_queue", args=[project.slug]) in card


def test_each_suggested_step_opens_for_the_person_it_is_offered_to(client, project, users):
    for i in range(2):
        example_create(project=project, user=users["admin"], messages=chat(i))
    client.login(username="adam", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/").content.decode()
    [card] = re.findall(r'<section class="card next-steps".*?</section>', html, re.S)
    links = re.findall(r'href="([^"]+)" data-step="(\w+)"', card)
    assert [key for _, key in links] == ["label", "review"]
    for url, _ in links:
        assert client.get(url).status_code == 200
