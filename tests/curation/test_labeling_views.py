from __future__ import annotations

import pytest

from curation.core.services import example_create, example_update
from curation.models import Annotation, Example
from tests.conftest import PASSWORD


@pytest.fixture
def examples(project, users) -> list[Example]:
    return [
        example_create(
            project=project,
            user=users["admin"],
            messages=[{"role": "user", "content": f"Question {i}"}, {"role": "assistant", "content": f"Answer {i}"}],
        )
        for i in range(2)
    ]


@pytest.fixture
def annie(client, users):
    client.login(username="annie", password=PASSWORD)
    return client


def form(example, label="billing", answer=None, **extra) -> dict:
    return {
        "version": example.version,
        "label": label,
        "role": ["user", "assistant"],
        "content": [example.messages[0]["content"], answer or example.messages[1]["content"]],
        "note": "",
        **extra,
    }


def test_the_queue_page_shows_the_next_example_with_its_turns_editable(annie, project, examples):
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert "Question 0" in html and '<textarea name="content"' in html
    assert 'data-shortcut="1"' in html and "2 examples waiting for you" in html


def test_submitting_applies_the_label_and_moves_to_the_next_example(annie, project, examples):
    response = annie.post(f"/p/{project.slug}/label/{examples[0].pk}/submit/", form(examples[0], "shipping"))
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/label/"
    examples[0].refresh_from_db()
    assert examples[0].label.name == "shipping"
    assert "Question 1" in annie.get(f"/p/{project.slug}/label/").content.decode()


def test_an_edited_answer_is_stored_with_line_breaks_normalised(annie, project, examples):
    annie.post(f"/p/{project.slug}/label/{examples[0].pk}/submit/", form(examples[0], answer="Line one\r\nLine two"))
    examples[0].refresh_from_db()
    assert examples[0].messages[1]["content"] == "Line one\nLine two"


def test_autosave_keeps_the_draft_and_the_page_brings_it_back(annie, project, examples):
    response = annie.post(f"/p/{project.slug}/label/{examples[0].pk}/draft/", form(examples[0], answer="Half a thou"))
    assert response.status_code == 200 and response.content.startswith(b"Draft saved")
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert "Half a thou" in html


def test_a_conflicting_submit_shows_their_change_and_keeps_my_text(annie, project, examples, users):
    seen = form(examples[0], "billing", answer="My careful rewrite")
    example_update(
        example=examples[0],
        user=users["reviewer"],
        version=1,
        messages=[{"role": "user", "content": "Question 0"}, {"role": "assistant", "content": "Reviewer's answer"}],
    )

    response = annie.post(f"/p/{project.slug}/label/{examples[0].pk}/submit/", seen)

    assert response.status_code == 409
    html = response.content.decode()
    assert "Reviewer&#x27;s answer" in html and "My careful rewrite" in html
    assert 'name="version" value="2"' in html  # a second submit, after merging, goes through
    examples[0].refresh_from_db()
    assert examples[0].messages[1]["content"] == "Reviewer's answer"
    draft = Annotation.objects.get(annotator=users["annotator"])
    assert draft.status == Annotation.Status.DRAFT and draft.messages[1]["content"] == "My careful rewrite"


def test_an_invalid_submit_keeps_the_text_and_says_what_is_wrong(annie, project, examples):
    response = annie.post(f"/p/{project.slug}/label/{examples[0].pk}/submit/", form(examples[0], answer="   "))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Turn 2, content: the content is empty" in html and 'data-error-field="messages[1].content"' in html


def test_skip_and_undo(annie, project, examples):
    annie.post(f"/p/{project.slug}/label/{examples[0].pk}/skip/")
    assert "Question 1" in annie.get(f"/p/{project.slug}/label/").content.decode()
    annie.post(f"/p/{project.slug}/label/undo/")
    assert "Question 0" in annie.get(f"/p/{project.slug}/label/").content.decode()


def test_an_annotator_cannot_label_another_projects_example(annie, project, examples, users):
    from curation.models import Project

    other = Project.objects.create(name="Other", slug="other")
    foreign = example_create(
        project=other, user=None, messages=[{"role": "user", "content": "s"}, {"role": "assistant", "content": "t"}]
    )
    response = annie.post(f"/p/{project.slug}/label/{foreign.pk}/submit/", form(foreign))
    assert response.status_code == 404
    assert not Annotation.objects.exists()
