from __future__ import annotations

import pytest

from curation.core.history import example_restore, revision_diff, text_diff
from curation.core.services import InvalidExample, StaleVersion, example_create, example_snapshot, example_update
from curation.models import Example, ExampleRevision, Label, Project
from tests.conftest import PASSWORD

QUESTION = {"role": "user", "content": "Where is my order?"}


def turns(answer: str) -> list[dict[str, str]]:
    return [QUESTION, {"role": "assistant", "content": answer}]


def login(client, users, role: str):
    assert client.login(username=users[role].username, password=PASSWORD)
    return client


def history_url(example: Example) -> str:
    return f"/p/{example.project.slug}/examples/{example.pk}/history/"


def restore_url(example: Example, revision: ExampleRevision) -> str:
    return f"/p/{example.project.slug}/examples/{example.pk}/revisions/{revision.pk}/restore/"


def edit(example: Example, user, **changes) -> Example:
    return example_update(example=example, user=user, version=example.version, **changes)


def test_a_changed_assistant_turn_shows_the_words_inserted_and_deleted(example, users):
    edit(example, users["reviewer"], messages=turns("It is on its way, arriving Friday."))

    revision = example.revisions.first()
    (change,) = revision_diff(revision.before, revision.after)

    assert change.field == "messages"
    (turn,) = change.turns
    assert (turn.kind, turn.number, turn.role) == ("changed", 2, "assistant")
    assert ("delete", "On") in turn.segments
    assert ("insert", "It is on") in turn.segments
    assert ("equal", " its way") in turn.segments
    assert ("insert", ", arriving Friday") in turn.segments


def test_the_segments_rebuild_both_the_old_and_the_new_text():
    old = "Line one\nthe  quick brown fox — jumps 東京へ行きます。"
    new = "Line one\r\nthe slow brown cat jumps\tover 大阪へ行きました。"
    segments = text_diff(old, new)
    assert "".join(text for op, text in segments if op != "insert") == old
    assert "".join(text for op, text in segments if op != "delete") == new


def test_japanese_text_is_compared_character_by_character():
    segments = text_diff("明日は東京に行きます。", "明日は大阪に行きました。")
    assert segments == [
        ("equal", "明日は"),
        ("delete", "東京"),
        ("insert", "大阪"),
        ("equal", "に行きま"),
        ("delete", "す"),
        ("insert", "した"),
        ("equal", "。"),
    ]


def test_words_next_to_japanese_are_still_whole_words():
    assert text_diff("GPUで学習", "TPUで学習") == [("delete", "GPU"), ("insert", "TPU"), ("equal", "で学習")]


def test_a_turn_added_in_the_middle_and_one_removed_are_named_as_such(example, users):
    system = {"role": "system", "content": "Be brief."}
    edit(example, users["annotator"], messages=[system, QUESTION, {"role": "assistant", "content": "On its way."}])
    added = example.revisions.first()
    edit(example, users["annotator"], messages=[QUESTION, {"role": "assistant", "content": "On its way."}])
    removed = example.revisions.first()

    (change,) = revision_diff(added.before, added.after)
    assert [(t.kind, t.number, t.role, t.segments) for t in change.turns] == [
        ("added", 1, "system", [("insert", "Be brief.")])
    ]
    (change,) = revision_diff(removed.before, removed.after)
    assert [(t.kind, t.number, t.role, t.segments) for t in change.turns] == [
        ("removed", 1, "system", [("delete", "Be brief.")])
    ]


def test_an_inserted_turn_does_not_make_the_edited_one_after_it_look_replaced():
    before = {"messages": [QUESTION, {"role": "assistant", "content": "Soon."}]}
    after = {
        "messages": [
            QUESTION,
            {"role": "user", "content": "Today?"},
            {"role": "assistant", "content": "Very soon."},
        ]
    }
    (change,) = revision_diff(before, after)
    added, edited = change.turns
    assert (added.kind, added.number, added.role) == ("added", 2, "user")
    assert (edited.kind, edited.number, edited.role) == ("changed", 3, "assistant")
    assert edited.segments == [("delete", "Soon"), ("insert", "Very soon"), ("equal", ".")]


def test_a_label_change_reads_old_to_new(example, users):
    edit(example, users["admin"], label="billing", split="train")
    revision = example.revisions.first()

    changes = {c.field: c for c in revision_diff(revision.before, revision.after)}

    assert set(changes) == {"label", "split"}
    assert (changes["label"].old, changes["label"].new) == ("shipping", "billing")
    assert (changes["split"].old_text, changes["split"].new_text) == ("Unassigned", "Train")


def test_metadata_lists_the_keys_added_removed_and_changed():
    before = {"metadata": {"lang": "en", "ticket": 12, "kept": True}}
    after = {"metadata": {"lang": "ja", "kept": True, "tags": ["vip"]}}

    (change,) = revision_diff(before, after)

    assert [(k.key, k.kind, k.old, k.new) for k in change.keys] == [
        ("lang", "changed", "en", "ja"),
        ("tags", "added", None, ["vip"]),
        ("ticket", "removed", 12, None),
    ]
    assert change.keys[1].new_text == '["vip"]'


def test_a_creation_reads_as_every_turn_added(example):
    revision = example.revisions.get()
    changes = {c.field: c for c in revision_diff(revision.before, revision.after)}
    assert [t.kind for t in changes["messages"].turns] == ["added", "added"]
    assert changes["label"].new == "shipping"


def test_the_history_lists_revisions_newest_first_with_who_and_the_diff(client, example, users):
    edit(example, users["reviewer"], messages=turns("It is on its way."))

    html = login(client, users, "annotator").get(history_url(example)).content.decode()

    assert "<html" in html  # a page of its own without htmx
    assert html.index("version 2") < html.index("version 1")
    assert "rhea" in html and "annie" in html
    assert "<del>On</del><ins>It is on</ins> its way." in html


def test_htmx_gets_only_the_history_section(client, example, users):
    html = login(client, users, "annotator").get(history_url(example), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.lstrip().startswith("<section")
    assert 'id="history"' in html


def test_the_history_is_a_fixed_number_of_queries(client, example, users, django_assert_max_num_queries):
    for i in range(20):
        edit(example, users["reviewer" if i % 2 else "annotator"], messages=turns(f"Answer number {i}."))
    login(client, users, "annotator")
    with django_assert_max_num_queries(8):
        response = client.get(history_url(example), HTTP_HX_REQUEST="true")
    assert response.content.decode().count('class="revision ') == 21


def test_restoring_brings_back_the_old_text_as_a_restore_revision_by_the_reviewer(client, example, users):
    original = example.revisions.get()
    edit(example, users["annotator"], messages=turns("Lost in the post."), label="billing", metadata={"x": 1})

    response = login(client, users, "reviewer").post(restore_url(example, original), {"version": 2})

    assert response.status_code == 302 and response["Location"] == f"/p/support/examples/{example.pk}/"
    example.refresh_from_db()
    assert example.messages[1]["content"] == "On its way."
    assert (example.label.name, example.metadata, example.version) == ("shipping", {}, 3)
    latest = example.revisions.first()
    assert (latest.action, latest.user, latest.version) == (ExampleRevision.Action.RESTORE, users["reviewer"], 3)
    assert latest.after == example_snapshot(example)


def test_restoring_through_htmx_asks_the_browser_to_reload_the_example(client, example, users):
    original = example.revisions.get()
    edit(example, users["annotator"], messages=turns("Lost in the post."))
    response = login(client, users, "reviewer").post(
        restore_url(example, original), {"version": 2}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == f"/p/support/examples/{example.pk}/"


def test_restoring_with_a_stale_version_is_refused_and_changes_nothing(client, example, users):
    original = example.revisions.get()
    edit(example, users["annotator"], messages=turns("Lost in the post."))
    edit(example, users["admin"], messages=turns("Delivered yesterday."))  # after the reviewer loaded version 2

    response = login(client, users, "reviewer").post(
        restore_url(example, original), {"version": 2}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 409
    html = response.content.decode()
    assert "now at version 3, not 2" in html
    assert 'name="version" value="3"' in html  # restoring again from this answer can succeed
    example.refresh_from_db()
    assert example.messages[1]["content"] == "Delivered yesterday." and example.version == 3
    assert example.revisions.count() == 3


def test_the_service_raises_stale_version_for_an_old_version(example, users):
    original = example.revisions.get()
    edit(example, users["annotator"], status="draft")
    with pytest.raises(StaleVersion):
        example_restore(example=example, revision=original, user=users["reviewer"], version=1)
    assert Example.objects.get(pk=example.pk).status == "draft"


def test_restoring_a_label_that_was_deleted_names_the_label(client, example, users, project):
    original = example.revisions.get()
    edit(example, users["annotator"], label="billing")
    Label.objects.filter(project=project, name="shipping").delete()

    with pytest.raises(InvalidExample) as error:
        example_restore(example=example, revision=original, user=users["reviewer"], version=2)
    assert error.value.field == "label" and "shipping" in error.value.message

    response = login(client, users, "reviewer").post(restore_url(example, original), {"version": 2})
    assert response.status_code == 400 and "shipping" in response.content.decode()
    assert Example.objects.get(pk=example.pk).version == 2


def test_annotator_may_view_history_but_not_restore(client, example, users):
    original = example.revisions.get()
    edit(example, users["annotator"], messages=turns("Lost in the post."))
    login(client, users, "annotator")

    html = client.get(history_url(example)).content.decode()
    assert "<ins>Lost in the post</ins>" in html and "Restore version" not in html
    assert client.post(restore_url(example, original), {"version": 2}).status_code == 403
    example.refresh_from_db()
    assert example.version == 2


def test_a_reviewer_is_offered_every_version_but_the_current_one(client, example, users):
    edit(example, users["annotator"], messages=turns("Lost in the post."))
    html = login(client, users, "reviewer").get(history_url(example)).content.decode()
    assert "Restore version 1" in html and "Restore version 2" not in html


def test_hostile_content_in_a_diff_is_escaped(client, example, users):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    edit(example, users["annotator"], messages=turns(f"On its way. {evil}"), metadata={evil: evil})

    html = login(client, users, "reviewer").get(history_url(example)).content.decode()

    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_revision_of_another_example_is_not_found(client, example, users, project):
    other = example_create(project=project, user=users["admin"], messages=turns("Another answer."))
    elsewhere = Project.objects.create(name="Elsewhere", slug="elsewhere")
    foreign = example_create(project=elsewhere, user=None, messages=turns("Foreign."))
    login(client, users, "reviewer")

    for revision in (other.revisions.get(), foreign.revisions.get()):
        assert client.post(restore_url(example, revision), {"version": 1}).status_code == 404
    assert client.get(history_url(foreign)).status_code == 404
    example.refresh_from_db()
    assert example.version == 1
