"""Generation with tools: jobs offer the project's tools (augmentation: the source example's),
drafts keep the calls the model made in the canonical shape, and calls are checked and flagged."""

from __future__ import annotations

import html

import pytest

from curation.core.services import content_hash, example_create
from curation.generation.augment import augment_execute
from curation.generation.checks import flag_message
from curation.generation.tasks import augment_start
from curation.generation.tools import project_tools
from curation.models import Draft, Example

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def call(name: str, arguments: str, call_id: str = "srv-1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def with_tools(project, user, tools: list, status: str = Example.Status.APPROVED, city: str = "Kyoto") -> Example:
    calls = [call(tools[0]["function"]["name"], f'{{"city": "{city}"}}', "call_0")]
    return example_create(
        project=project,
        user=user,
        status=status,
        tools=tools,
        messages=[
            {"role": "user", "content": f"Weather in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_0", "content": "Sunny."},
            {"role": "assistant", "content": f"Sunny in {city}."},
        ],
    )


@pytest.fixture
def tool_project(project, users):
    with_tools(project, users["admin"], [WEATHER])
    return project


def codes(draft: Draft) -> list[str]:
    return [flag["code"] for flag in draft.flags]


def test_a_job_offers_the_tools_of_the_approved_examples_and_the_drafts_keep_them(tool_project, drafts, backend):
    made = drafts(count=2)
    job = made[0].job
    assert job.config["tools"] == [WEATHER]
    # the request step is asked without tools; each answer is offered the project's tools
    requests, answers = backend.tools_seen
    assert requests is None and answers == [[WEATHER], [WEATHER]]
    for draft in made:
        example = draft.example
        assert example.tools == [WEATHER]
        assert example.content_hash == content_hash(example.messages, [WEATHER])
        assert "tool_calls" not in example.messages[draft.target]


def test_a_call_is_kept_structured_with_canonical_ids_and_a_valid_one_is_not_flagged(tool_project, drafts, backend):
    backend.tool_calls = {
        "Question": [call("get_weather", '{"city": "Kyoto"}'), call("get_weather", '{"city": "Nara"}')]
    }
    [draft] = drafts(count=1)
    turn = draft.example.messages[draft.target]
    assert turn == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}},
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Nara"}'}},
        ],
    }
    assert codes(draft) == []  # a turn that only calls is not empty
    assert draft.original == ""


@pytest.mark.parametrize(
    ("made", "code", "words"),
    [
        (call("get_wether", '{"city": "Kyoto"}'), "tool_unknown", "uses the function “get_wether”, which is not one"),
        (call("get_weather", "{city: Kyoto}"), "tool_arguments_invalid", "(get_weather) are not valid JSON"),
        (call("get_weather", '"Kyoto"'), "tool_arguments_invalid", "are JSON but not an object"),
        (call("get_weather", '{"town": "Kyoto"}'), "tool_arguments_schema", "'city' is a required property"),
    ],
)
def test_a_bad_call_is_flagged_naming_the_call_and_the_problem(tool_project, drafts, backend, made, code, words):
    backend.tool_calls = {"Question": [made]}
    [draft] = drafts(count=1)
    assert draft.example.messages[draft.target]["tool_calls"][0]["function"] == made["function"]
    [flag] = [flag for flag in draft.flags if flag["code"].startswith("tool_")]
    assert flag["code"] == code and flag["call"] == "call_0"
    message = flag_message(flag)
    assert "call_0" in message and words in message


def test_the_review_card_shows_the_tool_flags(tool_project, drafts, backend, client, users):
    backend.tool_calls = {"Question": [call("get_wether", "{}")]}
    drafts(count=1)
    client.force_login(users["reviewer"])
    page = html.unescape(client.get(f"/p/{tool_project.slug}/drafts/").content.decode())
    assert "flag-tool_unknown" in page and "Call call_0 uses the function “get_wether”" in page


def test_an_answer_that_calls_is_not_critiqued(tool_project, drafts, backend):
    backend.tool_calls = {"Question 1 ": [call("get_weather", '{"city": "Kyoto"}')]}
    made = drafts(count=2, critique=True)
    calling, writing = made
    assert calling.critique == "" and "critique_unparsed" not in codes(calling)
    assert calling.example.messages[calling.target]["tool_calls"]
    assert writing.critique == "too short." and writing.first_answer
    assert len(backend.calls[-1]) == 1  # one critique asked, for the answer that wrote text


def test_a_project_without_tools_offers_none(project, drafts, backend):
    [draft] = drafts(count=1)
    assert draft.job.config["tools"] == [] and draft.example.tools == []
    assert backend.tools_seen == [None, None]


def test_the_offered_tools_come_from_approved_examples_one_definition_per_name(project, users):
    with_tools(project, users["admin"], [WEATHER])
    newer = {"type": "function", "function": {**WEATHER["function"], "description": "Weather now"}}
    with_tools(project, users["admin"], [newer, TIME], city="Nara")
    with_tools(project, users["admin"], [{**TIME, "function": {"name": "draft_only"}}], status=Example.Status.DRAFT)
    assert project_tools(project) == [newer, TIME]


def test_augmentation_offers_the_source_tools_and_the_draft_keeps_them(project, users, backend):
    source = with_tools(project, users["admin"], [WEATHER])
    plain = example_create(
        project=project,
        user=users["admin"],
        messages=[{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi."}],
    )
    job = augment_start(project=project, user=users["reviewer"], example_ids=[source.pk, plain.pk])
    augment_execute(job=job, backend=backend)
    assert backend.tools_seen == [[[WEATHER], None]]
    drafted = {d.example.metadata["augmented_from"]: d.example for d in Draft.objects.filter(job=job)}
    assert drafted[source.pk].tools == [WEATHER] and drafted[plain.pk].tools == []
    assert drafted[source.pk].messages[1:] == source.messages[1:]
    assert drafted[source.pk].content_hash == content_hash(drafted[source.pk].messages, [WEATHER])


def test_a_rewrite_that_calls_a_tool_is_an_error_not_a_draft(project, users, backend):
    source = with_tools(project, users["admin"], [WEATHER])
    backend.tool_calls = {"Weather in Kyoto?": [call("get_weather", '{"city": "Kyoto"}')]}
    job = augment_start(project=project, user=users["reviewer"], example_ids=[source.pk])
    job = augment_execute(job=job, backend=backend)
    assert not Draft.objects.filter(job=job).exists()
    assert [error["error"] for error in job.errors] == ["the model called a tool instead of rewriting the message"]
