"""The canonical conversation's checks (docs/data-model.md): tool calls, tool results,
reasoning, weights and the example's tools, each error with the field path at fault; and the
content hash that covers tools."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from curation.core.services import content_hash
from curation.formats.checks import check_messages, check_row
from curation.formats.rows import ReadOptions, Row

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}


def call(call_id: str = "call_0", name: str = "get_weather", arguments: str = '{"city": "Kyoto"}') -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def conversation() -> list[dict]:
    """A user, a reasoning assistant making two parallel calls, their results, and the answer."""
    return [
        {"role": "system", "content": "You answer with tools."},
        {"role": "user", "content": "京都と東京の天気は？"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "Two cities: two calls.",
            "tool_calls": [call("call_0"), call("call_1", arguments='{"city": "Tokyo"}')],
            "weight": 0,
        },
        {"role": "tool", "content": "晴れ", "tool_call_id": "call_0"},
        {"role": "tool", "content": "雨", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "京都は晴れ、東京は雨です。", "weight": 1},
    ]


def errors(messages, tools=None, needs_reply=True) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in check_messages(messages, needs_reply=needs_reply, tools=tools)]


def test_a_full_conversation_with_tools_passes():
    assert errors(conversation(), [WEATHER, TIME]) == []
    assert errors(conversation()) == []


def test_calls_and_results_without_tools_pass_and_a_conversation_without_calls_keeps_loose_results():
    plain = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "calling"},
        {"role": "tool", "content": "18C"},
        {"role": "function", "content": "18C", "name": "weather"},
        {"role": "assistant", "content": "18 degrees."},
    ]
    assert errors(plain) == []


def test_the_legacy_function_call_key_is_still_accepted():
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}},
        {"role": "function", "name": "get_weather", "content": "18C"},
        {"role": "assistant", "content": "18 degrees."},
    ]
    assert errors(messages) == []


def change(messages: list[dict], path: tuple, value) -> list[dict]:
    """``messages`` with the value at ``path`` replaced (or deleted, for value DELETE)."""
    messages = copy.deepcopy(messages)
    target = messages
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return messages


DELETE = object()
C = (2, "tool_calls", 0)  # the first call of the calling turn


@pytest.mark.parametrize(
    "path, value, field, code",
    [
        ((1, "reasoning"), "thinking", "messages[1].reasoning", "misplaced_key"),
        ((2, "reasoning"), ["a"], "messages[2].reasoning", "invalid_field"),
        ((2, "weight"), 2, "messages[2].weight", "invalid_field"),
        ((2, "weight"), True, "messages[2].weight", "invalid_field"),
        ((1, "weight"), 1, "messages[1].weight", "misplaced_key"),
        ((1, "tool_calls"), [call("call_9")], "messages[1].tool_calls", "misplaced_key"),
        ((2, "tool_calls"), {"id": "call_0"}, "messages[2].tool_calls", "invalid_field"),
        ((2, "tool_calls", 1), "call_1", "messages[2].tool_calls[1]", "invalid_field"),
        ((*C, "id"), DELETE, "messages[2].tool_calls[0].id", "missing_call_id"),
        ((*C, "id"), "", "messages[2].tool_calls[0].id", "invalid_field"),
        ((*C, "id"), 7, "messages[2].tool_calls[0].id", "invalid_field"),
        ((2, "tool_calls", 1, "id"), "call_0", "messages[2].tool_calls[1].id", "duplicate_call_id"),
        ((*C, "type"), "tool", "messages[2].tool_calls[0].type", "invalid_field"),
        ((*C, "type"), DELETE, "messages[2].tool_calls[0].type", "invalid_field"),
        ((*C, "function"), DELETE, "messages[2].tool_calls[0].function", "invalid_field"),
        ((*C, "function", "name"), DELETE, "messages[2].tool_calls[0].function.name", "missing_name"),
        ((*C, "function", "name"), " ", "messages[2].tool_calls[0].function.name", "invalid_field"),
        ((*C, "function", "arguments"), DELETE, "messages[2].tool_calls[0].function.arguments", "missing_arguments"),
        (
            (*C, "function", "arguments"),
            {"city": "Kyoto"},
            "messages[2].tool_calls[0].function.arguments",
            "invalid_field",
        ),
        (
            (*C, "function", "arguments"),
            '{"city": ',
            "messages[2].tool_calls[0].function.arguments",
            "invalid_arguments",
        ),
        (
            (*C, "function", "arguments"),
            '["Kyoto"]',
            "messages[2].tool_calls[0].function.arguments",
            "invalid_arguments",
        ),
        ((2, "tool_call_id"), "call_0", "messages[2].tool_call_id", "misplaced_key"),
        ((3, "tool_call_id"), DELETE, "messages[3].tool_call_id", "missing_tool_call_id"),
        ((3, "tool_call_id"), "call_7", "messages[3].tool_call_id", "unknown_tool_call_id"),
        ((3, "tool_call_id"), "", "messages[3].tool_call_id", "invalid_field"),
        ((5, "content"), "", "messages[5].content", "empty_content"),
        ((1, "tool_calls"), [], "messages[1].tool_calls", "misplaced_key"),
        ((2, "tool_calls"), [], "messages[2].tool_calls", "empty_tool_calls"),
    ],
)
def test_each_error_names_its_field(path, value, field, code):
    found = errors(change(conversation(), path, value))
    assert (field, code) in found, found


def test_a_result_must_follow_the_call_it_answers():
    messages = conversation()
    messages.insert(2, {"role": "tool", "content": "early", "tool_call_id": "call_0"})
    assert errors(messages) == [("messages[2].tool_call_id", "unknown_tool_call_id")]
    [error] = check_messages(messages, needs_reply=True)
    assert "no call comes before this result" in error.message


def test_a_tool_result_with_calls_around_must_name_one():
    messages = change(conversation(), (4, "tool_call_id"), DELETE)
    [error] = check_messages(messages, needs_reply=True)
    assert error.field == "messages[4].tool_call_id"
    assert "call_0, call_1" in error.message


def test_an_empty_content_is_allowed_only_on_an_assistant_turn_with_calls():
    assert errors(conversation()) == []
    assert ("messages[1].content", "empty_content") in errors(change(conversation(), (1, "content"), ""))
    no_calls = change(conversation(), (2, "tool_calls"), DELETE)
    assert ("messages[2].content", "empty_content") in errors(no_calls)


def test_the_messages_say_what_was_expected():
    bad = change(conversation(), (*C, "function", "arguments"), "{oops")
    [error] = check_messages(bad, needs_reply=True)
    assert "expected a JSON object written as text" in error.message
    [error] = check_messages(change(conversation(), (2, "weight"), 5), needs_reply=True)
    assert error.message == "expected 1 (train on this turn) or 0 (do not), found a number (5)"
    [error] = check_messages(change(conversation(), (1, "reasoning"), "x"), needs_reply=True)
    assert error.message == '"reasoning" belongs on assistant messages, not on a "user" message'


def test_an_unrecognised_key_lists_the_canonical_keys():
    [error] = check_messages(change(conversation(), (1, "score"), 5), needs_reply=True)
    assert error.code == "unrecognised_key" and error.field == "messages[1].score"
    assert "role, content, name, weight, reasoning, tool_calls, tool_call_id" in error.message


# --- tools ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tools, field, code",
    [
        ({"get_weather": {}}, "tools", "invalid_field"),
        (["get_weather"], "tools[0]", "invalid_field"),
        ([{**WEATHER, "type": "retrieval"}], "tools[0].type", "invalid_field"),
        ([{"type": "function"}], "tools[0].function", "invalid_field"),
        ([{"type": "function", "function": {"description": "x"}}], "tools[0].function.name", "missing_name"),
        ([{"type": "function", "function": {"name": ""}}], "tools[0].function.name", "invalid_field"),
        ([WEATHER, TIME, WEATHER], "tools[2].function.name", "duplicate_tool"),
        (
            [{"type": "function", "function": {"name": "f", "description": 3}}],
            "tools[0].function.description",
            "invalid_field",
        ),
        (
            [{"type": "function", "function": {"name": "f", "parameters": "city"}}],
            "tools[0].function.parameters",
            "invalid_field",
        ),
        ([{"type": "function", "function": {"name": "f\x00"}}], "tools", "nul_byte"),
    ],
)
def test_each_error_in_the_tools_names_its_field(tools, field, code):
    found = errors([{"role": "user", "content": "hi"}], tools, needs_reply=False)
    assert (field, code) in found, found


def test_with_tools_every_call_must_name_one_of_them():
    found = check_messages(conversation(), needs_reply=True, tools=[TIME])
    assert [(e.field, e.code) for e in found] == [
        ("messages[2].tool_calls[0].function.name", "unknown_function"),
        ("messages[2].tool_calls[1].function.name", "unknown_function"),
    ]
    assert found[0].message == 'unknown function "get_weather"; this example\'s tools are: get_time'


def test_broken_tools_do_not_also_flag_every_call():
    found = errors(conversation(), [{"type": "function", "function": {"name": 5}}])
    assert found == [("tools[0].function.name", "invalid_field")]


def test_check_row_checks_the_rows_tools_and_treats_none_as_no_tools():
    row = check_row(Row(1, messages=conversation(), tools=None), [], ReadOptions())
    assert row.errors == [] and row.tools == []
    row = check_row(Row(3, messages=conversation(), tools=[TIME]), [], ReadOptions())
    assert {(e.line, e.field) for e in row.errors} == {
        (3, "messages[2].tool_calls[0].function.name"),
        (3, "messages[2].tool_calls[1].function.name"),
    }


# --- the content hash -----------------------------------------------------------------------


def test_without_tools_the_hash_is_the_messages_alone_as_before():
    messages = conversation()
    old = hashlib.sha256(
        json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    assert content_hash(messages) == content_hash(messages, []) == content_hash(messages, None) == old


def test_tools_are_part_of_the_hash():
    messages = conversation()
    hashes = {content_hash(messages), content_hash(messages, [WEATHER]), content_hash(messages, [WEATHER, TIME])}
    assert len(hashes) == 3
    assert content_hash(messages, [WEATHER]) == content_hash(copy.deepcopy(messages), [copy.deepcopy(WEATHER)])


def test_every_message_key_is_part_of_the_hash():
    base = content_hash(conversation())
    for path, value in [((2, "reasoning"), "other"), ((2, "weight"), 1), ((*C, "id"), "call_x")]:
        assert content_hash(change(conversation(), path, value)) != base
