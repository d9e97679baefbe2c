"""Weak labels accepted with a preview: the rows accepting would write, a page at a time, each
with the votes of the rules behind it; and accepting part of them, as "only these" or "all
except these", on the page and through the API; then the dashboard counts them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.models import Example, RuleRun, WeakLabel
from curation.rules import accepting, choosing
from curation.rules.choosing import Choice, choice_clean
from curation.rules.spec import RuleError
from curation.workspace.selectors import project_counts
from tests.conftest import PASSWORD
from tests.rules.conftest import chat
from tests.rules.weak import label_of, make_run

HTMX = {"HX-Request": "true"}


@pytest.fixture
def run(project, users) -> RuleRun:
    run = make_run(project, users["admin"])
    run.rules = [
        {"id": 11, "version": 1, "name": "refund words", "kind": "keywords"},
        {"id": 12, "version": 2, "name": "parcel words", "kind": "keywords"},
    ]
    run.save(update_fields=["rules"])
    votes = {"u1": {"11": "billing"}, "u2": {"12": "shipping", "11": "billing"}}
    for weak in WeakLabel.objects.filter(run=run).select_related("example"):
        weak.votes = votes.get(weak.example.first_user_text, {})
        weak.save(update_fields=["votes"])
    return run


def ids(project, *texts: str) -> list[int]:
    return [Example.objects.get(project=project, messages__0__content=t).pk for t in texts]


def test_accepting_only_the_chosen_rows_labels_those_alone(run, project, users):
    u2 = ids(project, "u2")
    changed = accepting.weak_labels_accept(
        run=run, user=users["admin"], threshold=0.5, choice=Choice(choosing.ONLY, frozenset(u2))
    )
    assert changed == 1
    assert (label_of(project, "u1"), label_of(project, "u2")) == (None, "shipping")


def test_accepting_all_except_the_unticked_rows_leaves_those_out(run, project, users):
    u1 = ids(project, "u1")
    # An id the threshold does not select (g1, labeled by a person) is ignored, never an error.
    choice = choice_clean(except_=[*u1, *ids(project, "g1")])
    assert accepting.weak_labels_accept(run=run, user=users["admin"], threshold=0.5, choice=choice) == 1
    assert (label_of(project, "u1"), label_of(project, "u2"), label_of(project, "g1")) == (None, "shipping", "billing")


def test_a_choice_says_what_is_wrong_with_it():
    with pytest.raises(RuleError) as both:
        choice_clean(only=[1], except_=[2])
    assert both.value.field == "only"
    with pytest.raises(RuleError) as empty:
        choice_clean(only=[])
    assert empty.value.field == "only" and "at least one" in empty.value.message
    with pytest.raises(RuleError) as word:
        choice_clean(except_="3, x7")
    assert word.value.field == "except" and "x7" in word.value.message
    with pytest.raises(RuleError) as many:
        choice_clean(except_=list(range(1, choosing.MAX_IDS + 2)))
    assert many.value.field == "except" and "10,000" in many.value.message
    assert choice_clean(except_="3, 4 5") == Choice(choosing.EXCEPT, frozenset({3, 4, 5}))
    assert choice_clean() == Choice()


def test_the_preview_lists_each_rows_votes_by_rule_name(run, project):
    summary = accepting.accept_summary(run=run, source="majority", threshold=0.5)
    rows = {row.text: row for row in summary.page.rows}
    assert rows["u1"].votes == [("refund words", "billing")]
    # The votes for the proposed label first, then the others.
    assert rows["u2"].label == "shipping" and rows["u2"].votes == [
        ("parcel words", "shipping"),
        ("refund words", "billing"),
    ]
    assert summary.preview[1]["votes"] == [
        {"rule": "parcel words", "label": "shipping"},
        {"rule": "refund words", "label": "billing"},
    ]


@pytest.fixture
def many(project, users) -> RuleRun:
    """A run proposing a label for 120 examples nobody labeled: three pages of 50."""
    admin = users["admin"]
    for i in range(120):
        example_create(project=project, user=admin, messages=chat(f"question {i:03d}"))
    return make_run(
        project, admin, rows={f"question {i:03d}": (None, ("billing", 0.9), ("billing", 1.0)) for i in range(120)}
    )


def test_the_run_page_pages_through_every_row_accepting_would_write(client, many, project):
    client.login(username="adam", password=PASSWORD)
    page = client.get(f"/p/{project.slug}/rules/runs/{many.pk}/?threshold=0.5&source=majority").content.decode()
    assert "Examples 1–50 of 120 that accepting would label" in page and "Page 1 of 3" in page
    assert page.count('class="accept-pick"') == 50 and "question 000" in page and "question 050" not in page
    url = f"/p/{project.slug}/rules/runs/{many.pk}/accept/rows/"
    third = client.get(url, {"threshold": "0.5", "source": "majority", "page": "3"}, headers=HTMX).content.decode()
    assert "Examples 101–120 of 120" in third and third.count('class="accept-pick"') == 20
    assert "question 119" in third and 'rel="next"' not in third and 'rel="prev"' in third
    # Past the last page: the last; nonsense: the first.
    assert "Page 3 of 3" in client.get(url, {"threshold": "0.5", "page": "99"}, headers=HTMX).content.decode()
    assert "Page 1 of 3" in client.get(url, {"threshold": "0.5", "page": "x"}, headers=HTMX).content.decode()
    # Without htmx the rows' address shows the run page.
    assert client.get(url, {"page": "2"}).status_code == 302


def test_the_page_accepts_all_except_the_unticked_rows_and_the_dashboard_counts_them(client, many, project):
    client.login(username="adam", password=PASSWORD)
    left_out = list(
        Example.objects.filter(project=project, messages__0__content__in=["question 003", "question 077"]).values_list(
            "pk", flat=True
        )
    )
    url = f"/p/{project.slug}/rules/runs/{many.pk}/accept/"
    done = client.post(
        url,
        {"threshold": "0.5", "source": "majority", "mode": "except", "ids": ",".join(map(str, left_out))},
        follow=True,
    )
    assert "118 examples labeled from rule set v1" in done.content.decode()
    assert not Example.objects.filter(pk__in=left_out, label__isnull=False).exists()
    counts = dict(project_counts(project=project)["label_source"])
    assert list(counts.values())[1] == 118  # labels from rules
    # Then only the chosen ones: the two left out.
    client.post(url, {"threshold": "0.5", "source": "majority", "mode": "only", "ids": str(left_out[0])})
    assert Example.objects.filter(pk__in=left_out, label__isnull=False).count() == 1


def test_the_page_says_which_field_is_wrong(client, many, project):
    client.login(username="adam", password=PASSWORD)
    url = f"/p/{project.slug}/rules/runs/{many.pk}/accept/"
    wrong = client.post(url, {"threshold": "0.5", "mode": "only", "ids": ""}, follow=True).content.decode()
    assert "Chosen examples" in wrong and "Choose at least one example to accept." in wrong
    assert not Example.objects.filter(project=project, weak_label__isnull=False).exists()


def test_the_api_accepts_only_or_except_and_refuses_both_or_too_many(run, project):
    api = APIClient()
    api.login(username="adam", password=PASSWORD)
    url = f"/api/projects/{project.slug}/rule-runs/{run.pk}/accept/"
    u1, u2 = ids(project, "u1", "u2")
    both = api.post(url, {"threshold": 0.5, "only": [u1], "except": [u2]}, format="json")
    assert both.status_code == 400 and "only" in both.json()
    many = api.post(url, {"threshold": 0.5, "except": list(range(1, 10_002))}, format="json")
    assert many.status_code == 400 and "except" in many.json()
    bad = api.post(url, {"threshold": 0.5, "only": ["seven"]}, format="json")
    assert bad.status_code == 400 and "only" in bad.json()
    assert api.post(url, {"threshold": 0.5, "source": "majority", "except": [u2]}, format="json").json() == {
        "accepted": 1
    }
    assert (label_of(project, "u1"), label_of(project, "u2")) == ("billing", None)
    assert api.post(url, {"threshold": 0.5, "source": "majority", "only": [u2]}, format="json").json() == {
        "accepted": 1
    }
    assert label_of(project, "u2") == "shipping"


def test_the_api_preview_pages_and_gives_the_votes(many, project):
    api = APIClient()
    api.login(username="adam", password=PASSWORD)
    url = f"/api/projects/{project.slug}/rule-runs/{many.pk}/accept/"
    second = api.get(url, {"threshold": 0.5, "source": "majority", "page": 2}).json()
    assert (second["page"], second["pages"], len(second["preview"])) == (2, 3, 50)
    assert second["preview"][0]["text"] == "question 050" and second["preview"][0]["votes"] == []
