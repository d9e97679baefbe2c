from __future__ import annotations

from curation.core.services import example_update
from tests.conftest import PASSWORD


def edit_form(example, answer: str, **extra) -> dict:
    return {
        "version": example.version,
        "role": ["user", "assistant"],
        "content": [example.messages[0]["content"], answer],
        "label": "shipping",
        "split": example.split,
        "status": example.status,
        **extra,
    }


def test_an_edit_saves_with_a_revision(client, project, example):
    client.login(username="annie", password=PASSWORD)
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", edit_form(example, "It ships today."))
    assert response.status_code == 302
    example.refresh_from_db()
    assert example.messages[1]["content"] == "It ships today." and example.version == 2
    assert example.revisions.first().user.username == "annie"


def test_a_second_save_of_the_same_version_shows_both_and_keeps_my_text(client, project, example, users):
    mine = edit_form(example, "My version of the answer.")
    example_update(
        example=example,
        user=users["reviewer"],
        version=1,
        messages=[example.messages[0], {"role": "assistant", "content": "Their version."}],
    )
    client.login(username="annie", password=PASSWORD)
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", mine)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Their version." in html and "My version of the answer." in html
    assert 'name="version" value="2"' in html
    example.refresh_from_db()
    assert example.messages[1]["content"] == "Their version."
    # After merging, the save goes through.
    mine["version"] = 2
    assert client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", mine).status_code == 302


def test_an_annotator_is_not_offered_approval_and_cannot_approve(client, project, example):
    client.login(username="annie", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/examples/{example.pk}/").content.decode()
    assert 'value="approved"' not in html
    response = client.post(f"/p/{project.slug}/examples/{example.pk}/edit/", edit_form(example, "x", status="approved"))
    assert response.status_code == 403
    example.refresh_from_db()
    assert example.status == "needs_review"
