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


def _gold_choices(html: str):
    from lxml import html as lxml_html

    return lxml_html.fromstring(html).xpath("//form[@id='resolve-form']//input[@name='label']")


def test_nothing_is_preselected_and_the_majority_is_only_a_suggestion(client, project, users, disputed):
    from curation.labeling.services import annotation_submit

    project.annotations_per_example = 3
    project.save()
    annotation_submit(example=disputed, user=users["admin"], based_on_version=disputed.version, label="shipping")
    client.login(username="rhea", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/disagreements/{disputed.pk}/").content.decode()
    radios = _gold_choices(html)
    assert [r.get("value") for r in radios] == ["billing", "shipping", ""]  # "" is "No label"
    assert not [r for r in radios if r.get("checked") is not None]
    assert [r.get("data-shortcut") for r in radios] == ["1", "2", None]
    assert 'id="majority-suggestion" data-suggestion="shipping"' in html
    assert "the majority: 2 of 3 annotators chose it" in html
    assert "2 votes: adam, rhea" in html and "1 vote: annie" in html
    assert "Keys: 1–2 = label" not in html and "Keys: 1, 2 = label" in html


def test_a_tie_has_no_majority_and_every_label_gets_a_number_key(client, project, users, disputed):
    from curation.models import Label

    Label.objects.create(project=project, name="returns")  # no shortcut of its own
    Label.objects.create(project=project, name="old", retired=True)
    client.login(username="rhea", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/disagreements/{disputed.pk}/").content.decode()
    radios = _gold_choices(html)
    assert [(r.get("value"), r.get("data-shortcut")) for r in radios] == [
        ("billing", "1"),
        ("shipping", "2"),
        ("returns", "3"),
        ("", None),
    ]
    assert "data-suggestion" not in html and "No majority" in html
    assert "Keys: 1–3 = label" in html


def test_resolving_without_choosing_a_label_is_refused_naming_the_field(client, project, disputed):
    client.login(username="rhea", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/disagreements/{disputed.pk}/",
        {"version": disputed.version, "role": ["user", "assistant"], "content": ["Refund?", "Yes."]},
    )
    assert response.status_code == 400
    assert b'data-error-field="label"' in response.content and b"Choose the gold label" in response.content
    disputed.refresh_from_db()
    assert disputed.resolved_at is None and disputed.label is None
    # "No label", chosen explicitly, is a choice.
    response = client.post(
        f"/p/{project.slug}/disagreements/{disputed.pk}/",
        {"version": disputed.version, "label": "", "role": ["user", "assistant"], "content": ["Refund?", "Yes."]},
    )
    assert response.status_code == 302
    disputed.refresh_from_db()
    assert disputed.resolved_at is not None and disputed.label is None


def test_a_refused_resolution_keeps_the_reviewers_own_choice(client, project, disputed):
    client.login(username="rhea", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/disagreements/{disputed.pk}/",
        {"version": disputed.version, "label": "shipping", "role": ["user", "assistant"], "content": ["Refund?", ""]},
    )
    assert response.status_code == 400
    checked = [r.get("value") for r in _gold_choices(response.content.decode()) if r.get("checked") is not None]
    assert checked == ["shipping"]


def test_the_empty_page_says_how_to_get_disagreements(client, project, users):
    client.login(username="adam", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/disagreements/").content.decode()
    assert "How disagreements appear" in html and "Each example is labeled by 1 person now." in html
    assert f'href="/p/{project.slug}/settings/">annotations per example</a> above 1' in html
    assert f'href="/p/{project.slug}/label/"' in html
    # A reviewer cannot change the settings: they are told whom to ask.
    client.login(username="rhea", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/disagreements/").content.decode()
    assert "/settings/" not in html and "Ask a project admin to set annotations per example above 1" in html
