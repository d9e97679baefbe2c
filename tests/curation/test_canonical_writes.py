"""Examples with tools through the write path: create, update and restore (services and API),
the history's diff, and imports whose duplicates take tools and labels into account."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from curation.core.history import example_restore, revision_diff
from curation.core.services import InvalidExample, content_hash, example_create, example_snapshot, example_update
from curation.io.imports import example_import, import_job_create
from curation.models import Example, ExampleRevision, ImportJob, Label, Project
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALLING = [
    {"role": "user", "content": "京都の天気は？"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "Call the weather tool.",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "京都"}'}}
        ],
    },
    {"role": "tool", "content": "晴れ", "tool_call_id": "call_0"},
    {"role": "assistant", "content": "晴れです。", "weight": 1},
]


def make(project, user, tools=(WEATHER,), messages=CALLING) -> Example:
    return example_create(project=project, user=user, messages=messages, tools=list(tools))


# --- services -------------------------------------------------------------------------------


def test_an_example_is_created_with_its_tools_hashed_and_in_its_revision(project, users):
    example = make(project, users["annotator"])

    example.refresh_from_db()
    assert example.tools == [WEATHER] and example.messages == CALLING
    assert example.content_hash == content_hash(CALLING, [WEATHER]) != content_hash(CALLING)
    assert example.revisions.get().after["tools"] == [WEATHER]
    assert example_snapshot(example)["tools"] == [WEATHER]


def test_without_tools_an_example_keeps_the_hash_of_its_messages(project, users):
    example = example_create(project=project, user=users["annotator"], messages=CALLING)
    assert example.tools == [] and example.content_hash == content_hash(CALLING)


@pytest.mark.parametrize(
    "tools, messages, field",
    [
        ([TIME], CALLING, "messages[1].tool_calls[0].function.name"),
        ([{"type": "function", "function": {}}], CALLING, "tools[0].function.name"),
        ("get_weather", CALLING, "tools"),
    ],
)
def test_a_create_with_bad_tools_or_calls_is_refused_naming_the_field(project, users, tools, messages, field):
    with pytest.raises(InvalidExample) as refused:
        example_create(project=project, user=users["annotator"], messages=messages, tools=tools)
    assert refused.value.field == field
    assert not Example.objects.exists()


def test_an_update_of_the_tools_makes_a_revision_and_a_new_hash(project, users):
    example = make(project, users["annotator"])
    old_hash = example.content_hash

    example = example_update(example=example, user=users["reviewer"], version=1, tools=[WEATHER, TIME])

    assert example.version == 2 and example.tools == [WEATHER, TIME]
    assert example.content_hash == content_hash(CALLING, [WEATHER, TIME]) != old_hash
    revision = example.revisions.first()
    assert revision.before["tools"] == [WEATHER] and revision.after["tools"] == [WEATHER, TIME]


def test_an_update_that_leaves_a_call_without_its_tool_is_refused(project, users):
    example = make(project, users["annotator"])
    with pytest.raises(InvalidExample) as refused:
        example_update(example=example, user=users["reviewer"], version=1, tools=[TIME])
    assert refused.value.field == "messages[1].tool_calls[0].function.name"
    example.refresh_from_db()
    assert example.version == 1 and example.tools == [WEATHER]


def test_an_update_of_the_messages_is_checked_against_the_tools(project, users):
    example = make(project, users["annotator"])
    messages = json.loads(json.dumps(CALLING))
    messages[1]["tool_calls"][0]["function"]["arguments"] = "{city: 京都}"
    with pytest.raises(InvalidExample) as refused:
        example_update(example=example, user=users["reviewer"], version=1, messages=messages)
    assert refused.value.field == "messages[1].tool_calls[0].function.arguments"


def test_an_approved_example_whose_tools_an_annotator_changes_goes_back_to_review(project, users):
    example = example_create(
        project=project, user=users["reviewer"], messages=CALLING, tools=[WEATHER], status=Example.Status.APPROVED
    )
    example = example_update(example=example, user=users["annotator"], version=1, tools=[WEATHER, TIME])
    assert example.status == Example.Status.NEEDS_REVIEW


def test_restoring_a_revision_restores_its_tools(project, users):
    example = make(project, users["annotator"])
    first = example.revisions.get()
    example = example_update(example=example, user=users["reviewer"], version=1, tools=[WEATHER, TIME])

    example = example_restore(example=example, revision=first, user=users["reviewer"], version=2)

    assert example.tools == [WEATHER] and example.content_hash == content_hash(CALLING, [WEATHER])
    assert example.revisions.first().action == ExampleRevision.Action.RESTORE


def test_restoring_a_revision_from_before_tools_were_kept_clears_them(project, users):
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    example = example_create(project=project, user=users["annotator"], messages=plain)
    old = example.revisions.get()
    old.after.pop("tools")
    old.save()
    example = example_update(example=example, user=users["reviewer"], version=1, tools=[TIME])

    example = example_restore(example=example, revision=old, user=users["reviewer"], version=2)

    assert example.tools == [] and example.content_hash == content_hash(plain)


def test_the_history_shows_a_change_of_tools(project, users, client):
    example = make(project, users["annotator"])
    example = example_update(example=example, user=users["reviewer"], version=1, tools=[WEATHER, TIME])
    changed = json.loads(json.dumps([WEATHER, TIME]))
    changed[1]["function"]["description"] = "The time now"
    example_update(example=example, user=users["reviewer"], version=2, tools=changed)

    newest, added, created = example.revisions.order_by("-version")
    [change] = revision_diff(added.before, added.after)
    assert (change.field, change.name, change.old_text, change.new_text) == (
        "tools",
        "Tools",
        "get_weather",
        "get_weather, get_time",
    )
    [change] = revision_diff(newest.before, newest.after)
    assert change.new_text == "get_weather, get_time (definitions changed)"
    assert [c.field for c in revision_diff(created.before, created.after)][:2] == ["messages", "tools"]
    # A snapshot from before tools were kept reads as no tools, not as a change.
    assert revision_diff({"messages": CALLING}, {"messages": CALLING, "tools": []}) == []

    assert client.login(username=users["reviewer"].username, password=PASSWORD)
    page = client.get(f"/p/{project.slug}/examples/{example.pk}/history/").content.decode()
    assert "Tools:" in page and "get_weather, get_time (definitions changed)" in page


def test_the_history_shows_a_changed_call_and_weight(project, users):
    example = make(project, users["annotator"])
    messages = json.loads(json.dumps(CALLING))
    messages[1]["tool_calls"][0]["function"]["arguments"] = '{"city": "大阪"}'
    messages[3]["weight"] = 0
    example_update(example=example, user=users["reviewer"], version=1, messages=messages)

    [change] = revision_diff(*(lambda r: (r.before, r.after))(example.revisions.first()))
    assert [t.number for t in change.turns] == [2, 4]
    inserted = ["".join(text for op, text in t.segments if op == "insert") for t in change.turns]
    assert "大阪" in inserted[0] and "weight 0" in inserted[1]


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
def api(users) -> APIClient:
    client = APIClient()
    client.login(username="annie", password=PASSWORD)
    return client


def url(project, example=None) -> str:
    base = f"/api/projects/{project.slug}/examples/"
    return f"{base}{example.pk}/" if example else base


def test_the_api_creates_and_returns_an_example_with_tools_and_calls(api, project):
    response = api.post(url(project), {"messages": CALLING, "tools": [WEATHER]}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tools"] == [WEATHER] and body["messages"] == CALLING
    example = Example.objects.get(pk=body["id"])
    assert example.tools == [WEATHER] and example.content_hash == content_hash(CALLING, [WEATHER])
    assert api.get(url(project, example)).json()["messages"] == CALLING


def test_the_api_refuses_bad_arguments_naming_the_field(api, project):
    messages = json.loads(json.dumps(CALLING))
    messages[1]["tool_calls"][0]["function"]["arguments"] = "[1]"
    response = api.post(url(project), {"messages": messages, "tools": [WEATHER]}, format="json")

    assert response.status_code == 400
    assert "messages[1].tool_calls[0].function.arguments" in response.json()
    assert not Example.objects.exists()


def test_the_api_updates_tools_with_a_revision(api, project, users):
    example = make(project, users["annotator"])
    response = api.patch(url(project, example), {"version": 1, "tools": [WEATHER, TIME]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["tools"] == [WEATHER, TIME] and response.json()["version"] == 2
    assert example.revisions.first().after["tools"] == [WEATHER, TIME]

    response = api.patch(url(project, example), {"version": 2, "tools": [{"type": "function"}]}, format="json")
    assert response.status_code == 400 and "tools[0].function" in response.json()


# --- imports --------------------------------------------------------------------------------


def jsonl(*records) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode("utf-8")


def run_import(project, user, data: bytes, **options) -> ImportJob:
    job = import_job_create(
        project=project, user=user, fileobj=io.BytesIO(data), filename="data.jsonl", format="openai", options=options
    )
    return example_import(job=job)


def test_rows_that_differ_only_in_their_tools_are_different_examples(io_project, io_user):
    rows = [{"messages": CALLING, "tools": tools} for tools in ([WEATHER], [WEATHER, TIME], [TIME, WEATHER])]
    job = run_import(io_project, io_user, jsonl(*rows, rows[0]))

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert (job.rows_created, job.rows_duplicate) == (3, 1)
    assert job.report["duplicates"] == [{"line": 4, "duplicate_of": "line 1"}]
    stored = list(Example.objects.order_by("pk").values_list("tools", "content_hash"))
    assert stored == [(r["tools"], content_hash(CALLING, r["tools"])) for r in rows]


def test_an_imported_row_without_tools_keeps_the_old_hash_and_finds_old_duplicates(io_project, io_user):
    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    earlier = example_create(project=io_project, user=io_user, messages=plain)
    job = run_import(io_project, io_user, jsonl({"messages": plain}, {"messages": plain, "tools": [TIME]}))

    assert job.report["duplicates"] == [{"line": 1, "duplicate_of": f"example {earlier.pk}"}]
    assert job.rows_created == 1 and Example.objects.latest("pk").tools == [TIME]


@pytest.fixture
def tickets(db) -> Project:
    project = Project.objects.create(name="Tickets", slug="io-tickets", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def ticket(text: str, label: str | None = None) -> dict:
    return {"messages": [{"role": "user", "content": text}], **({"label": label} if label else {})}


def test_a_labeled_duplicate_of_an_unlabeled_example_gives_it_the_label(tickets, io_user, client):
    unlabeled = example_create(project=tickets, user=io_user, messages=ticket("Refund please")["messages"])
    labeled = example_create(project=tickets, user=io_user, messages=ticket("Where?")["messages"], label="shipping")

    job = run_import(tickets, io_user, jsonl(ticket("Refund please", "billing"), ticket("Where?", "billing")))

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert (job.rows_created, job.rows_duplicate, job.report["labels_applied"]) == (0, 2, 1)
    assert job.report["duplicates"] == [
        {"line": 1, "duplicate_of": f"example {unlabeled.pk}", "label_applied": "billing"},
        {"line": 2, "duplicate_of": f"example {labeled.pk}"},
    ]
    unlabeled.refresh_from_db()
    labeled.refresh_from_db()
    assert unlabeled.label.name == "billing" and unlabeled.version == 2
    assert unlabeled.revisions.first().after["label"] == "billing"
    assert labeled.label.name == "shipping", "a label a person gave is not overwritten"

    io_user.is_superuser = True
    io_user.save()
    client.force_login(io_user)
    page = client.get(f"/p/{tickets.slug}/imports/{job.pk}/").content.decode()
    assert "Labels applied to unlabeled duplicates" in page and "label “billing” applied" in page


def test_a_labeled_duplicate_of_an_unlabeled_row_of_the_same_file_gives_it_the_label(tickets, io_user):
    job = run_import(
        tickets, io_user, jsonl(ticket("Refund please"), ticket("Refund please", "billing"), ticket("Refund please"))
    )

    assert (job.rows_created, job.rows_duplicate, job.report["labels_applied"]) == (1, 2, 1)
    assert Example.objects.get().label.name == "billing"


def test_a_labeled_duplicate_of_an_earlier_batch_gives_it_the_label(tickets, io_user, monkeypatch):
    monkeypatch.setattr("curation.io.imports.BATCH_SIZE", 2)
    rows = [ticket("Refund please"), ticket("Other"), ticket("Refund please", "billing")]
    job = run_import(tickets, io_user, jsonl(*rows))

    assert job.report["labels_applied"] == 1
    assert Example.objects.get(messages=rows[0]["messages"]).label.name == "billing"


def test_a_rejected_import_applies_no_label(tickets, io_user):
    unlabeled = example_create(project=tickets, user=io_user, messages=ticket("Refund please")["messages"])
    job = run_import(tickets, io_user, jsonl(ticket("Refund please", "billing"), {"messages": []}))

    assert job.status == ImportJob.Status.FAILED
    assert job.report["labels_applied"] == 0 and "label_applied" not in job.report["duplicates"][0]
    unlabeled.refresh_from_db()
    assert unlabeled.label is None and unlabeled.version == 1


def test_in_a_chat_project_a_labeled_duplicate_is_only_a_duplicate(io_project, io_user):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    example = example_create(project=io_project, user=io_user, messages=messages)
    job = run_import(io_project, io_user, jsonl({"messages": messages, "label": "billing"}))

    assert job.report["labels_applied"] == 0
    example.refresh_from_db()
    assert example.label is None
