from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.labeling import services as svc
from curation.models import Example
from tests.conftest import PASSWORD


@pytest.fixture
def disputed(project, users) -> Example:
    project.annotations_per_example = 2
    project.save()
    example = example_create(
        project=project,
        user=users["admin"],
        messages=[{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Yes."}],
    )
    svc.annotation_submit(
        example=example, user=users["annotator"], based_on_version=1, label="billing", note="about money"
    )
    svc.annotation_submit(
        example=example,
        user=users["reviewer"],
        based_on_version=1,
        label="shipping",
        messages=[{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Yes, within 30 days."}],
    )
    example.refresh_from_db()
    return example


def test_a_reviewer_sees_every_answer_side_by_side(client, project, disputed):
    client.login(username="rhea", password=PASSWORD)
    assert str(disputed.pk) in client.get(f"/p/{project.slug}/disagreements/").content.decode()
    html = client.get(f"/p/{project.slug}/disagreements/{disputed.pk}/").content.decode()
    assert "annie" in html and "rhea" in html and "about money" in html and "Yes, within 30 days." in html


def test_the_resolution_becomes_the_gold_and_leaves_the_queue(client, project, disputed):
    client.login(username="adam", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/disagreements/{disputed.pk}/",
        {
            "version": disputed.version,
            "label": "billing",
            "role": ["user", "assistant"],
            "content": ["Refund?", "Yes, within 30 days."],
        },
    )
    assert response.status_code == 302
    disputed.refresh_from_db()
    assert disputed.label.name == "billing" and disputed.status == Example.Status.APPROVED
    assert disputed.messages[1]["content"] == "Yes, within 30 days."
    assert disputed.resolved_by.username == "adam"
    assert not svc.disagreement_list(project=project).exists()


def test_a_stale_resolution_is_refused_with_the_current_version(client, project, disputed, users):
    from curation.core.services import example_update

    example_update(example=disputed, user=users["admin"], version=disputed.version, split="train")
    client.login(username="rhea", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/disagreements/{disputed.pk}/",
        {"version": 1, "label": "billing", "role": ["user", "assistant"], "content": ["Refund?", "Yes."]},
    )
    assert response.status_code == 409
    disputed.refresh_from_db()
    assert disputed.label is None and disputed.resolved_at is None
