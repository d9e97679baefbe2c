"""The labeling and review API: the queue, answers, disagreements, agreement, bulk edits,
splits and class balance, each as the browser pages offer them."""

from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.labeling import services as annotations
from curation.models import Annotation, Example, Project
from tests.conftest import PASSWORD


def client_for(username: str) -> APIClient:
    client = APIClient()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def annie(users) -> APIClient:
    return client_for("annie")


@pytest.fixture
def rhea(users) -> APIClient:
    return client_for("rhea")


@pytest.fixture
def adam(users) -> APIClient:
    return client_for("adam")


def base(project: Project) -> str:
    return f"/api/projects/{project.slug}/"


SERIAL = itertools.count()


def make(project: Project, users, n: int, *, label: str | None = "billing", **extra) -> list[Example]:
    return [
        example_create(
            project=project,
            user=users["admin"],
            label=label,
            messages=[{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": f"Answer {i}"}],
            **extra,
        )
        for i in itertools.islice(SERIAL, n)
    ]


def disagreement(project: Project, users, example: Example) -> Example:
    project.annotations_per_example = 2
    project.save()
    annotations.annotation_submit(example=example, user=users["annotator"], based_on_version=1, label="billing")
    annotations.annotation_submit(example=example, user=users["reviewer"], based_on_version=1, label="shipping")
    example.refresh_from_db()
    return example


# The queue


def test_the_queue_hands_out_the_next_example_and_leases_it(annie, project, example, users):
    response = annie.get(base(project) + "queue/")

    assert response.status_code == 200
    assert response.json()["example"]["id"] == example.pk
    assert response.json()["remaining"] == 1
    assert Annotation.objects.get(example=example, annotator=users["annotator"]).status == Annotation.Status.DRAFT


def test_the_queue_never_returns_an_example_the_caller_answered(annie, project, users):
    first, second = make(project, users, 2)
    assert (
        annie.post(
            base(project) + f"examples/{first.pk}/annotation/",
            {"based_on_version": 1, "label": "shipping"},
            format="json",
        ).status_code
        == 201
    )

    body = annie.get(base(project) + "queue/").json()
    assert body["example"]["id"] == second.pk
    assert annie.post(base(project) + f"examples/{second.pk}/annotation/skip/").status_code == 200

    assert annie.get(base(project) + "queue/").json() == {"example": None, "remaining": 0}


def test_an_outsider_gets_no_queue(project, users):
    assert client_for("outsider").get(base(project) + "queue/").status_code == 404


# Answers


def test_a_submitted_answer_is_applied_with_one_annotator(annie, project, example):
    response = annie.post(
        base(project) + f"examples/{example.pk}/annotation/",
        {"based_on_version": 1, "label": "billing", "rating": 4, "note": "polite"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["label"], body["rating"], body["annotator"]) == ("submitted", "billing", 4, "annie")
    example.refresh_from_db()
    assert example.label.name == "billing" and example.version == 2


def test_a_stale_answer_is_refused_with_409_and_kept_as_a_draft(annie, project, example, users):
    annotations.example_update(example=example, user=users["reviewer"], version=1, label="billing")

    response = annie.post(
        base(project) + f"examples/{example.pk}/annotation/",
        {"based_on_version": 1, "label": "shipping"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["current"]["version"] == 2
    draft = Annotation.objects.get(example=example, annotator=users["annotator"])
    assert draft.status == Annotation.Status.DRAFT and draft.label.name == "shipping"
    example.refresh_from_db()
    assert example.label.name == "billing", "the stale answer must not land"


@pytest.mark.parametrize(
    "answer,field",
    [
        ({"label": "refunds"}, "label"),
        ({"rating": 9}, "rating"),
        ({}, "label"),
        ({"label": "billing", "based_on_version": "x"}, "based_on_version"),
    ],
)
def test_an_invalid_answer_is_refused_naming_the_field(annie, project, example, answer, field):
    response = annie.post(
        base(project) + f"examples/{example.pk}/annotation/", {"based_on_version": 1, **answer}, format="json"
    )

    assert response.status_code == 400
    assert field in response.json()
    assert not Annotation.objects.filter(example=example, status=Annotation.Status.SUBMITTED).exists()


def test_a_draft_is_autosaved_without_validation(annie, project, example, users):
    response = annie.post(
        base(project) + f"examples/{example.pk}/annotation/draft/",
        {"based_on_version": 1, "label": "billing", "note": "half a thou"},
        format="json",
    )

    assert response.status_code == 200
    draft = Annotation.objects.get(example=example, annotator=users["annotator"])
    assert (draft.status, draft.note, draft.label.name) == (Annotation.Status.DRAFT, "half a thou", "billing")


def test_undo_reopens_the_last_answer_and_says_when_there_is_none(annie, project, example, users):
    assert annie.post(base(project) + "queue/undo/").json()["example"] is None
    annie.post(
        base(project) + f"examples/{example.pk}/annotation/", {"based_on_version": 1, "label": "billing"}, format="json"
    )

    response = annie.post(base(project) + "queue/undo/")

    assert response.status_code == 200
    assert response.json()["example"]["id"] == example.pk
    assert Annotation.objects.get(example=example, annotator=users["annotator"]).status == Annotation.Status.DRAFT
    assert annie.get(base(project) + "queue/").json()["example"]["id"] == example.pk


def test_a_reviewer_sees_every_answer_to_an_example(rhea, project, example, users):
    disagreement(project, users, example)

    response = rhea.get(base(project) + f"examples/{example.pk}/annotations/")

    assert response.status_code == 200
    assert [(a["annotator"], a["label"], a["status"]) for a in response.json()] == [
        ("annie", "billing", "submitted"),
        ("rhea", "shipping", "submitted"),
    ]


def test_an_annotator_cannot_read_others_answers(annie, project, example):
    assert annie.get(base(project) + f"examples/{example.pk}/annotations/").status_code == 403


# Disagreements and agreement


def test_a_reviewer_lists_and_resolves_a_disagreement(rhea, project, example, users):
    example = disagreement(project, users, example)
    listed = rhea.get(base(project) + "disagreements/").json()
    assert [e["id"] for e in listed["results"]] == [example.pk]

    response = rhea.post(
        base(project) + f"disagreements/{example.pk}/resolve/",
        {"version": example.version, "label": "billing"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert (response.json()["label"], response.json()["status"]) == ("billing", "approved")
    assert rhea.get(base(project) + "disagreements/").json()["results"] == []


def test_a_stale_resolution_is_refused_with_409(rhea, project, example, users):
    example = disagreement(project, users, example)
    read = example.version
    annotations.example_update(example=example, user=users["admin"], version=read, label="billing")

    response = rhea.post(
        base(project) + f"disagreements/{example.pk}/resolve/",
        {"version": read, "label": "shipping"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["current"]["label"] == "billing"


def test_an_annotator_cannot_resolve_a_disagreement(annie, project, example, users):
    example = disagreement(project, users, example)

    response = annie.post(
        base(project) + f"disagreements/{example.pk}/resolve/",
        {"version": example.version, "label": "billing"},
        format="json",
    )

    assert response.status_code == 403
    example.refresh_from_db()
    assert example.resolved_at is None
    assert annie.get(base(project) + "disagreements/").status_code == 403


def test_agreement_reports_alpha_pairs_and_labels(annie, project, example, users):
    disagreement(project, users, example)
    (agreed,) = make(project, users, 1, label=None)
    for person in ("annotator", "reviewer"):
        annotations.annotation_submit(example=agreed, user=users[person], based_on_version=1, label="billing")

    body = annie.get(base(project) + "agreement/").json()

    assert body["units"] == 2
    assert set(body) == {"units", "alpha", "alpha_band", "fleiss", "fleiss_band", "pairs", "per_label"}
    assert [(p["a"], p["b"], p["units"], p["kappa"]) for p in body["pairs"]] == [("annie", "rhea", 2, 0.0)]
    assert {row["label"] for row in body["per_label"]} == {"billing", "shipping"}


# Bulk edits


def test_bulk_sets_a_split_on_the_chosen_ids(adam, project, users):
    first, second, third = make(project, users, 3)

    # Moving examples between splits is an admin's (tests/curation/test_roles_enforced.py).
    response = adam.post(
        base(project) + "examples/bulk/",
        {"field": "split", "value": "test", "ids": [first.pk, third.pk]},
        format="json",
    )

    assert response.json() == {"changed": 2}
    assert list(Example.objects.filter(split="test").order_by("id").values_list("pk", flat=True)) == [
        first.pk,
        third.pk,
    ]
    second.refresh_from_db()
    assert second.version == 1


def test_bulk_labels_every_example_matching_the_filters(annie, project, users, example):
    make(project, users, 2, label=None)

    response = annie.post(
        base(project) + "examples/bulk/",
        {"field": "label", "value": "billing", "filters": {"label": "-", "q": "question"}},
        format="json",
    )

    assert response.json() == {"changed": 2}
    example.refresh_from_db()
    assert example.label.name == "shipping"


def test_an_annotator_cannot_bulk_approve(annie, project, example):
    response = annie.post(
        base(project) + "examples/bulk/", {"field": "status", "value": "approved", "ids": [example.pk]}, format="json"
    )

    assert response.status_code == 403
    example.refresh_from_db()
    assert example.status != Example.Status.APPROVED


def test_a_reviewer_can_bulk_approve(rhea, project, example):
    response = rhea.post(
        base(project) + "examples/bulk/", {"field": "status", "value": "approved", "ids": [example.pk]}, format="json"
    )

    assert response.json() == {"changed": 1}


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"field": "metadata", "value": "x", "ids": [1]}, "field"),
        ({"field": "split", "value": "holdout", "ids": [1]}, "split"),
        ({"field": "split", "value": "test"}, "ids"),
    ],
)
def test_a_bad_bulk_request_is_refused_naming_the_field(annie, project, example, payload, field):
    response = annie.post(base(project) + "examples/bulk/", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()


# Splits and balance

SPLIT = {"method": "stratified", "train": 0.6, "validation": 0.2, "test": 0.2, "seed": 7}


def test_an_admin_previews_then_assigns_splits_reproducibly(adam, project, users):
    make(project, users, 10)
    preview = adam.post(base(project) + "splits/preview/", SPLIT, format="json").json()
    assert preview["total"] == 10 and preview["moved"] == 10
    assert {split: sum(row.values()) for split, row in preview["table"].items()} == {
        "train": 6,
        "validation": 2,
        "test": 2,
    }

    assert adam.post(base(project) + "splits/assign/", SPLIT, format="json").json() == {"moved": 10}
    first = dict(Example.objects.values_list("pk", "split"))
    Example.objects.update(split=Example.Split.UNASSIGNED)
    assert adam.post(base(project) + "splits/assign/", SPLIT, format="json").json() == {"moved": 10}

    assert dict(Example.objects.values_list("pk", "split")) == first
    project.refresh_from_db()
    assert project.split_config["seed"] == 7


@pytest.mark.parametrize(
    "change,field",
    [
        ({"train": 0.9}, "ratios"),
        ({"test": 1.5}, "test"),
        ({"method": "alphabetical"}, "method"),
        ({"method": "group"}, "group_key"),
    ],
)
def test_a_bad_split_request_is_refused_naming_the_field(adam, project, example, change, field):
    response = adam.post(base(project) + "splits/preview/", {**SPLIT, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_a_reviewer_cannot_assign_splits(rhea, project, example):
    assert rhea.post(base(project) + "splits/assign/", SPLIT, format="json").status_code == 403
    example.refresh_from_db()
    assert example.split == Example.Split.UNASSIGNED


def test_balance_previews_a_strategy_with_a_row_per_label(annie, project, users):
    make(project, users, 3, label="billing", split="train")
    make(project, users, 1, label="shipping", split="train")
    make(project, users, 1, label=None, split="train")

    response = annie.get(base(project) + "balance/?strategy=oversample")

    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "oversample"
    rows = {row["label"]: (row["before"], row["after"]) for row in body["labels"]}
    assert rows["billing"] == (3, 3) and rows["shipping"][0] == 1 and rows["shipping"][1] > 1
    assert None in rows
    assert annie.get(base(project) + "balance/?strategy=magic").status_code == 400


def test_an_admin_saves_the_balance_strategy_and_an_annotator_cannot(adam, annie, project):
    assert annie.post(base(project) + "balance/", {"strategy": "undersample"}, format="json").status_code == 403

    assert adam.post(base(project) + "balance/", {"strategy": "undersample"}, format="json").status_code == 200

    project.refresh_from_db()
    assert project.balance_strategy == "undersample"
    assert adam.get(base(project) + "balance/").json()["strategy"] == "undersample"
    assert adam.post(base(project) + "balance/", {"strategy": "magic"}, format="json").status_code == 400


# Browsing


def test_the_example_list_accepts_the_browser_filters(annie, project, users, example):
    disagreement(project, users, example)
    make(project, users, 2, metadata={"customer": "acme"})

    def ids(query: str) -> list[int]:
        return [e["id"] for e in annie.get(base(project) + "examples/?" + query).json()["results"]]

    assert ids("disagreement=1") == [example.pk]
    assert ids("annotator=rhea") == [example.pk]
    assert len(ids("meta_key=customer&meta_value=acme")) == 2
    assert ids("q=order") == [example.pk]
    assert ids("sort=-id")[-1] == example.pk


def test_the_schema_documents_the_labeling_endpoints(annie):
    paths = annie.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for path in (
        "queue/",
        "queue/undo/",
        "examples/{example_id}/annotation/",
        "disagreements/{example_id}/resolve/",
        "agreement/",
        "examples/bulk/",
        "splits/assign/",
        "balance/",
    ):
        assert "/api/projects/{slug}/" + path in paths
