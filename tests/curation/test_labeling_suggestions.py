"""The labeling page never chooses a label for the annotator: the current label is at most a
marked suggestion (when the project asks for it), and every label has a key the page names."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied

from curation.core.errors import ServiceError
from curation.core.services import example_create
from curation.labeling.selectors import keys_in_words, labels_with_keys
from curation.labeling.services import label_suggestions_set
from curation.models import Annotation, Example, Label, Project, RuleRun, WeakLabel
from tests.conftest import PASSWORD


@pytest.fixture
def annie(client, users):
    client.login(username="annie", password=PASSWORD)
    return client


@pytest.fixture
def labelled(project, users) -> Example:
    """The only example in the queue, with a gold label set by a person."""
    return example_create(
        project=project,
        user=users["admin"],
        messages=[{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "On its way."}],
        label="shipping",
    )


def checked_labels(html: str) -> list[str]:
    radios = re.findall(r'<input type="radio" name="label"[^>]*>', html)
    return [re.search(r'value="([^"]*)"', r).group(1) for r in radios if re.search(r"\schecked\b", r)]


def suggest(project: Project) -> None:
    Project.objects.filter(pk=project.pk).update(label_suggestions=Project.LabelSuggestions.SUGGESTION)


def test_new_projects_hide_the_current_label(db):
    assert Project.objects.create(name="New", slug="new").label_suggestions == Project.LabelSuggestions.HIDDEN


def test_the_current_label_is_neither_chosen_nor_shown_by_default(annie, project, labelled):
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert "Where is my parcel?" in html
    assert checked_labels(html) == []
    assert 'id="label-suggestion"' not in html and "(suggested)" not in html
    assert "shipping</span>" not in html  # not even in the example's heading


def test_with_suggestions_on_the_current_label_is_shown_as_a_persons_suggestion_and_not_chosen(
    annie, project, labelled
):
    suggest(project)
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert checked_labels(html) == []
    suggestion = re.search(r'<div class="note small" id="label-suggestion".*?</div>', html, re.S).group(0)
    assert 'data-suggestion="shipping"' in suggestion and "Suggestion" in suggestion
    assert "from a person" in suggestion
    assert html.count("(suggested)") == 1


def test_a_label_from_the_rules_is_suggested_with_its_rule_set_model_and_confidence(annie, project, labelled):
    suggest(project)
    run = RuleRun.objects.create(project=project, number=3, status=RuleRun.Status.DONE)
    weak = WeakLabel.objects.create(
        run=run,
        example=labelled,
        label=Label.objects.get(project=project, name="shipping"),
        confidence=0.873,
        accepted_from=WeakLabel.Source.LABEL_MODEL,
    )
    Example.objects.filter(pk=labelled.pk).update(weak_label=weak)

    html = annie.get(f"/p/{project.slug}/label/").content.decode()

    assert checked_labels(html) == []
    assert "from the rules (rule set v3, Label model), confidence 0.87" in html


def test_an_annotators_own_draft_label_is_restored(annie, project, labelled, users):
    Annotation.objects.create(
        example=labelled, annotator=users["annotator"], label=project.labels.get(name="billing"), based_on_version=1
    )
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert checked_labels(html) == ["billing"]


def test_submitting_without_a_label_or_a_change_is_refused_and_leaves_the_gold_label(annie, project, labelled):
    response = annie.post(
        f"/p/{project.slug}/label/{labelled.pk}/submit/",
        {
            "version": labelled.version,
            "role": ["user", "assistant"],
            "content": ["Where is my parcel?", "On its way."],
            "note": "",
        },
    )
    assert response.status_code == 400
    assert "Choose a label, edit the text, rate or write a note, or skip." in response.content.decode()
    assert checked_labels(response.content.decode()) == []
    labelled.refresh_from_db()
    assert labelled.label.name == "shipping"
    assert not Annotation.objects.filter(status=Annotation.Status.SUBMITTED).exists()


def test_labels_without_a_shortcut_get_the_next_free_number_in_the_order_they_were_made(project):
    # The fixture's labels hold 1 and 2.
    c = Label.objects.create(project=project, name="c-returns")
    a = Label.objects.create(project=project, name="a-account")
    Label.objects.create(project=project, name="letter", shortcut="x")
    keys = {label.name: label.key for label in labels_with_keys(project=project)}
    assert keys == {"billing": "1", "shipping": "2", "c-returns": "3", "a-account": "4", "letter": "x"}
    assert [label.key for label in labels_with_keys(project=project)] == ["1", "2", "3", "4", "x"]
    assert c.pk < a.pk


def test_past_ten_labels_the_rest_have_no_key_and_the_help_says_so(annie, project, labelled):
    Label.objects.filter(project=project).update(shortcut="")
    for i in range(10):
        Label.objects.create(project=project, name=f"extra-{i:02d}")
    labels = labels_with_keys(project=project)
    assert [label.key for label in labels] == [*"1234567890", "", ""]

    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    assert html.count("data-shortcut=") == 10
    assert 'data-shortcut="0"' in html
    help_text = re.search(r'<p class="muted small" id="key-help">(.*?)</p>', html, re.S).group(1)
    assert "1–9, 0 = label" in help_text and "2 labels have no key: click them." in help_text


def test_the_key_help_lists_only_the_keys_that_exist(annie, project, labelled):
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    help_text = re.search(r'<p class="muted small" id="key-help">(.*?)</p>', html, re.S).group(1)
    assert help_text.startswith("Keys: 1, 2 = label, Enter = submit")
    assert "number" not in help_text and "no key" not in help_text
    assert "<kbd>1</kbd> billing" in html and "<kbd>2</kbd> shipping" in html


def test_a_project_without_labels_offers_no_label_keys(annie, project, labelled):
    Example.objects.filter(pk=labelled.pk).update(label=None)
    Label.objects.filter(project=project).delete()
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    help_text = re.search(r'<p class="muted small" id="key-help">(.*?)</p>', html, re.S).group(1)
    assert help_text.startswith("Keys: Enter = submit") and "= label" not in help_text


@pytest.mark.parametrize(
    ("keys", "words"),
    [(["1", "2", "3"], "1–3"), (list("1234567890"), "1–9, 0"), (["1", "2"], "1, 2"), (["1", "3", "x"], "1, 3, x")],
)
def test_keys_in_words(keys, words):
    assert keys_in_words(keys) == words


def test_only_a_project_admin_sets_whether_suggestions_are_shown(project, users):
    label_suggestions_set(project=project, user=users["admin"], value="suggestion")
    project.refresh_from_db()
    assert project.label_suggestions == Project.LabelSuggestions.SUGGESTION
    with pytest.raises(PermissionDenied):
        label_suggestions_set(project=project, user=users["reviewer"], value="hidden")
    with pytest.raises(ServiceError) as refused:
        label_suggestions_set(project=project, user=users["admin"], value="preselected")
    assert refused.value.field == "label_suggestions"
    project.refresh_from_db()
    assert project.label_suggestions == Project.LabelSuggestions.SUGGESTION


def test_the_setting_is_edited_in_django_admin(client, project, users):
    client.login(username="root", password=PASSWORD)
    html = client.get(f"/admin/curation/project/{project.pk}/change/").content.decode()
    assert 'name="label_suggestions"' in html and "Shown as a suggestion" in html
