"""The example browser: search, filters, sorting and bulk actions."""

from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.labeling import services as svc
from curation.models import Example, ExampleRevision
from curation.workspace.selectors import example_list
from tests.conftest import PASSWORD


def make(project, user, text, **kw) -> Example:
    return example_create(
        project=project,
        user=user,
        messages=[{"role": "user", "content": text}, {"role": "assistant", "content": "answer"}],
        **kw,
    )


def ids(qs) -> list[int]:
    return [e.pk for e in qs]


def test_search_finds_japanese_whatever_the_width_it_was_typed_in(project, users):
    kana = make(project, users["admin"], "ｶﾞｲﾄﾞを送ってください")  # half-width katakana
    latin = make(project, users["admin"], "Send the ＧＵＩＤＥ please")  # full-width latin
    make(project, users["admin"], "unrelated")
    assert ids(example_list(project=project, filters={"q": "ガイド"})) == [kana.pk]
    assert ids(example_list(project=project, filters={"q": "guide"})) == [latin.pk]
    assert ids(example_list(project=project, filters={"q": "送って ガイド"})) == [kana.pk]


def test_search_finds_imported_examples_too(project, users, settings, tmp_path):
    import io
    import json

    from curation.io.imports import example_import, import_job_create

    settings.UPLOAD_DIR = tmp_path
    row = {"messages": [{"role": "user", "content": "返品したい"}, {"role": "assistant", "content": "承知しました"}]}
    job = import_job_create(
        project=project,
        user=users["admin"],
        fileobj=io.BytesIO(json.dumps(row).encode()),
        filename="a.jsonl",
        format="openai",
    )
    example_import(job=job)
    assert example_list(project=project, filters={"q": "返品"}).count() == 1


def test_filters_by_annotator_disagreement_and_metadata(project, users):
    project.annotations_per_example = 2
    project.save()
    a = make(project, users["admin"], "a", metadata={"customer": "acme"})
    b = make(project, users["admin"], "b", metadata={"customer": "globex"})
    svc.annotation_submit(example=a, user=users["annotator"], based_on_version=1, label="billing")
    svc.annotation_submit(example=a, user=users["reviewer"], based_on_version=1, label="shipping")
    assert ids(example_list(project=project, filters={"annotator": "annie"})) == [a.pk]
    assert ids(example_list(project=project, filters={"disagreement": "1"})) == [a.pk]
    assert ids(example_list(project=project, filters={"meta_key": "customer", "meta_value": "globex"})) == [b.pk]
    # A key is never turned into a lookup: "customer__icontains" is a key no example has.
    assert ids(example_list(project=project, filters={"meta_key": "customer__icontains", "meta_value": "a"})) == []


def test_sorting(project, users):
    first = make(project, users["admin"], "first", label="shipping")
    second = make(project, users["admin"], "second", label="billing")
    assert ids(example_list(project=project, filters={"sort": "-id"})) == [second.pk, first.pk]
    assert ids(example_list(project=project, filters={"sort": "label"})) == [second.pk, first.pk]


def test_bulk_sets_the_split_of_every_matching_example_with_revisions(client, project, users):
    matching = [make(project, users["admin"], f"refund {i}") for i in range(3)]
    other = make(project, users["admin"], "other")
    # Moving examples between splits is an admin's (tests/curation/test_roles_enforced.py).
    client.login(username="adam", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/", {"scope": "filtered", "q": "refund", "field": "split", "value": "test"}
    )
    assert response.status_code == 302 and "q=refund" in response["Location"]
    assert set(Example.objects.filter(split="test").values_list("pk", flat=True)) == {e.pk for e in matching}
    other.refresh_from_db()
    assert other.split == "unassigned"
    revision = ExampleRevision.objects.filter(example=matching[0]).first()
    assert revision.before["split"] == "unassigned" and revision.after["split"] == "test"
    assert revision.user.username == "adam" and revision.version == 2


def test_bulk_on_selected_examples_only(client, project, users):
    chosen, left = make(project, users["admin"], "x"), make(project, users["admin"], "y")
    client.login(username="annie", password=PASSWORD)
    client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [chosen.pk], "field": "label", "value": "billing"},
    )
    chosen.refresh_from_db(), left.refresh_from_db()
    assert chosen.label.name == "billing" and left.label is None


def test_an_annotator_cannot_bulk_approve(client, project, users):
    example = make(project, users["admin"], "x")
    client.login(username="annie", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [example.pk], "field": "status", "value": "approved"},
    )
    assert response.status_code == 403
    example.refresh_from_db()
    assert example.status == Example.Status.NEEDS_REVIEW


def test_bulk_cannot_touch_another_projects_examples(client, project, users):
    from curation.models import Project

    other = Project.objects.create(name="Other", slug="other")
    foreign = make(other, None, "secret")
    client.login(username="adam", password=PASSWORD)  # an admin here, so only the project can stop it
    client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [foreign.pk], "field": "split", "value": "test"},
    )
    foreign.refresh_from_db()
    assert foreign.split == "unassigned"


@pytest.mark.parametrize("count", [5, 120])
def test_the_browser_query_count_does_not_grow_with_the_data(
    client, project, users, count, django_assert_max_num_queries
):
    for i in range(count):
        make(project, users["admin"], f"q{i}", label="billing")
    client.login(username="annie", password=PASSWORD)
    with django_assert_max_num_queries(10):
        assert client.get(f"/p/{project.slug}/examples/", {"q": "q", "sort": "-id"}).status_code == 200
