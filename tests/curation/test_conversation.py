"""The conversation helpers the readers and writers share (curation/formats/conversation.py)."""

from __future__ import annotations

import json

import pytest

from curation.formats.conversation import (
    assign_call_ids,
    bare_schemas,
    call_ids_are_made,
    message_from,
    split_think,
    take_shikomi_fields,
    tools_from,
    with_think,
)
from curation.formats.rows import Row

WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_TOOL = {"type": "function", "function": WEATHER}


def call(name: str, arguments: str = "{}", id: str | None = None) -> dict:
    made = {"type": "function", "function": {"name": name, "arguments": arguments}}
    return {"id": id, **made} if id is not None else made


# --- tools_from -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        [WEATHER_TOOL],
        [WEATHER],
        json.dumps([WEATHER]),
        json.dumps([WEATHER_TOOL], ensure_ascii=False),
    ],
)
def test_tools_are_read_from_openai_definitions_bare_schemas_or_json_text(value):
    assert tools_from(value) == ([WEATHER_TOOL], None)


@pytest.mark.parametrize("value", [None, "", "  ", [], "[]"])
def test_no_tools(value):
    assert tools_from(value) == ([], None)


def test_an_openai_definition_keeps_its_other_keys():
    tool = {"type": "function", "function": {**WEATHER, "strict": True}}
    assert tools_from([tool]) == ([tool], None)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("[{", "not valid JSON"),
        ({"name": "x"}, "list of function schemas"),
        ([WEATHER, "get_time"], "tool 2"),
        ([{"description": "no name"}], '"name"'),
        ([{"type": "code_interpreter"}], "only function tools"),
        ([{"name": "f", "parameters": "city"}], '"parameters" of f'),
    ],
)
def test_what_is_not_a_list_of_schemas_is_an_error(value, says):
    tools, error = tools_from(value)
    assert tools == [] and says in error


def test_bare_schemas_are_the_functions_of_the_tools():
    assert bare_schemas([WEATHER_TOOL]) == [WEATHER]


# --- message_from -----------------------------------------------------------------------


def test_a_plain_message_is_unchanged():
    message = {"role": "user", "content": "hi", "name": "aki"}
    assert message_from(message) == message
    assert message_from("not a message") == "not a message"


def test_the_old_function_role_and_function_call_become_tool_and_tool_calls():
    assert message_from({"role": "function", "name": "get_weather", "content": "18C"}) == {
        "role": "tool",
        "name": "get_weather",
        "content": "18C",
    }
    legacy = {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "{}"}}
    assert message_from(legacy) == {"role": "assistant", "content": "", "tool_calls": [call("get_weather")]}


def test_arguments_given_as_an_object_become_json_text_and_text_stays_as_given():
    given = {
        "role": "assistant",
        "tool_calls": [
            {"id": "a", "function": {"name": "f", "arguments": {"city": "京都"}}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": '{"city":"Kyoto"}'}},
        ],
    }
    message = message_from(given)
    assert message["content"] == ""
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == ['{"city": "京都"}', '{"city":"Kyoto"}']
    assert message["tool_calls"][0]["type"] == "function"
    assert given["tool_calls"][0]["function"]["arguments"] == {"city": "京都"}  # the record is not changed


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_fields_become_reasoning(key):
    message = message_from({"role": "assistant", "content": "4", key: "2+2 is 4."})
    assert message == {"role": "assistant", "content": "4", "reasoning": "2+2 is 4."}


def test_a_leading_think_block_becomes_reasoning():
    message = message_from({"role": "assistant", "content": "<think>\n考えます。\n</think>\n\n答えは4です。"})
    assert message == {"role": "assistant", "content": "答えは4です。", "reasoning": "考えます。"}
    assert message_from({"role": "assistant", "content": "<think>short</think>4"})["reasoning"] == "short"


def test_an_empty_think_block_is_dropped_and_only_assistants_think():
    assert message_from({"role": "assistant", "content": "<think>\n\n</think>\n\n4"}) == {
        "role": "assistant",
        "content": "4",
    }
    user = {"role": "user", "content": "<think>x</think>y"}
    assert message_from(user) == user
    unclosed = {"role": "assistant", "content": "<think>never closed"}
    assert message_from(unclosed) == unclosed


def test_a_reasoning_field_wins_over_a_think_block_in_the_content():
    message = message_from({"role": "assistant", "content": "<think>a</think>b", "reasoning_content": "r"})
    assert message == {"role": "assistant", "content": "<think>a</think>b", "reasoning": "r"}


# --- with_think -------------------------------------------------------------------------


def test_with_think_puts_the_reasoning_back_and_split_think_reads_it():
    message = {"role": "assistant", "content": "答えは4です。", "reasoning": "2+2\nは4。"}
    text = with_think(message)
    assert text == "<think>\n2+2\nは4。\n</think>\n\n答えは4です。"
    assert split_think(text) == ("2+2\nは4。", "答えは4です。")
    assert message_from({"role": "assistant", "content": text}) == message
    assert with_think({"role": "assistant", "content": "plain"}) == "plain"
    assert split_think("plain") == (None, "plain")


# --- call ids ---------------------------------------------------------------------------


def test_calls_without_ids_are_numbered_and_results_take_the_oldest_unanswered():
    messages = [
        {"role": "user", "content": "Weather in Kyoto and Osaka, then the time?"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather"), call("get_weather")]},
        {"role": "tool", "content": "18C"},
        {"role": "tool", "content": "20C"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_time")]},
        {"role": "tool", "content": "noon"},
        {"role": "assistant", "content": "18C, 20C, noon."},
    ]
    assert assign_call_ids(messages) == []
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_0", "call_1"]
    assert list(messages[1]["tool_calls"][0]) == ["id", "type", "function"]
    assert messages[4]["tool_calls"][0]["id"] == "call_2"
    assert [m.get("tool_call_id") for m in messages if m["role"] == "tool"] == ["call_0", "call_1", "call_2"]
    assert call_ids_are_made(messages)


def test_given_ids_are_kept_and_answered_results_are_skipped():
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [call("f", id="call_1"), call("g"), call("h")]},
        {"role": "tool", "content": "h", "tool_call_id": "call_2"},
        {"role": "tool", "content": "f"},
        {"role": "tool", "content": "g"},
    ]
    assert assign_call_ids(messages) == []
    # call_1 is taken, so the second call's own number gets a suffix.
    assert [c["id"] for c in messages[0]["tool_calls"]] == ["call_1", "call_1_1", "call_2"]
    assert [m["tool_call_id"] for m in messages[1:]] == ["call_2", "call_1", "call_1_1"]
    assert not call_ids_are_made(messages)


def test_a_result_with_no_call_left_is_reported_only_where_there_are_calls():
    with_calls = [
        {"role": "assistant", "content": "", "tool_calls": [call("f")]},
        {"role": "tool", "content": "1"},
        {"role": "tool", "content": "2"},
    ]
    assert assign_call_ids(with_calls) == [2]
    no_calls = [{"role": "user", "content": "x"}, {"role": "tool", "content": "1"}]
    assert assign_call_ids(no_calls) == [] and "tool_call_id" not in no_calls[1]


def test_ids_of_the_file_are_not_the_made_ones():
    messages = [
        {"role": "assistant", "content": "", "tool_calls": [call("f", id="abc")]},
        {"role": "tool", "content": "1", "tool_call_id": "abc"},
    ]
    assert not call_ids_are_made(messages)
    messages[0]["tool_calls"][0]["id"] = messages[1]["tool_call_id"] = "call_0"
    assert call_ids_are_made(messages)


# --- Shikomi fields ---------------------------------------------------------------------


def test_id_a_shikomi_status_and_the_label_source_are_shikomis_own_fields():
    own = {"id", "status", "label_source"}
    assert take_shikomi_fields({"id": 3, "status": "approved"}, Row(1)) == own
    assert take_shikomi_fields({"id": 3, "status": None}, Row(1)) == own
    record = {"id": 3, "status": "approved", "label_source": {"source": "rules", "rule_set": 2}}
    assert take_shikomi_fields(record, row := Row(1)) == own
    assert row.status == "approved"


def test_someone_elses_label_source_is_kept_in_metadata():
    from curation.formats import openai
    from curation.formats.rows import ReadOptions

    record = {"messages": [{"role": "user", "content": "hi"}], "label_source": "crowd"}
    row = openai.row_from_record(1, record, ReadOptions())
    assert row.metadata == {"label_source": "crowd"}


@pytest.mark.parametrize("record", [{"id": "t-1"}, {"status": "approved"}, {"id": 1, "status": "shipped"}])
def test_someone_elses_id_or_status_is_theirs(record):
    assert take_shikomi_fields(record, Row(1)) == frozenset()
