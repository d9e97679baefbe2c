"""llm/toolcalls.py: calls read out of a model's text into the canonical shape, and checked
against the tools the model was given."""

from __future__ import annotations

import json

from llm import toolcalls
from llm.toolcalls import check_calls, split_text

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                "required": ["city"],
            },
        },
    }
]


def call(name: str, arguments: str, call_id: str = "call_0") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tagged_calls_become_canonical_calls_and_leave_the_text_beside_them():
    text = 'Let me look.\n<tool_call>{"name": "get_weather", "arguments": {"city": "京都"}}</tool_call>'
    content, calls = split_text(text)
    assert content == "Let me look."
    assert calls == [call("get_weather", json.dumps({"city": "京都"}, ensure_ascii=False))]


def test_parallel_and_bare_calls_are_numbered_in_order():
    text = '[{"name": "get_weather", "arguments": {"city": "Kyoto"}}, {"name": "get_weather", "parameters": {}}]'
    content, calls = split_text(text)
    assert content == ""
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("call_0", "get_weather", '{"city": "Kyoto"}'),
        ("call_1", "get_weather", "{}"),
    ]
    fenced = '```json\n{"name": "get_weather", "arguments": {"city": "Nara"}}\n```'
    assert split_text(fenced) == ("", [call("get_weather", '{"city": "Nara"}')])


def test_text_without_calls_is_kept_as_it_is():
    assert split_text("The weather is fine.") == ("The weather is fine.", [])
    # JSON that is not a call stays text
    assert split_text('{"name": "Kyoto", "population": 1400000}') == ('{"name": "Kyoto", "population": 1400000}', [])


def test_arguments_that_are_not_json_are_kept_as_written():
    text = '<tool_call>{"name": "get_weather", "arguments": {city: Kyoto}}</tool_call>'
    _content, calls = split_text(text)
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["function"]["arguments"] == "{city: Kyoto}"
    assert toolcalls.parse_calls(text)[0].valid_json is False


def test_a_valid_call_has_no_problem():
    assert check_calls([call("get_weather", '{"city": "Kyoto", "days": 2}')], TOOLS) == []


def test_a_function_that_is_not_among_the_tools_is_unknown():
    problems = check_calls([call("get_wether", '{"city": "Kyoto"}')], TOOLS)
    assert [(p.code, p.call, p.name) for p in problems] == [("tool_unknown", "call_0", "get_wether")]
    # without tools every name is unknown
    assert [p.code for p in check_calls([call("get_weather", "{}")], None)] == ["tool_unknown"]


def test_arguments_that_are_not_a_json_object_are_invalid():
    problems = check_calls([call("get_weather", "{city: Kyoto}"), call("get_weather", '["Kyoto"]', "call_1")], TOOLS)
    assert [(p.code, p.call, p.detail) for p in problems] == [
        ("tool_arguments_invalid", "call_0", toolcalls.NOT_JSON),
        ("tool_arguments_invalid", "call_1", toolcalls.NOT_OBJECT),
    ]


def test_arguments_that_break_the_schema_say_where_and_how():
    problems = check_calls(
        [call("get_weather", '{"days": 2}'), call("get_weather", '{"city": "Kyoto", "days": 0}', "call_1")], TOOLS
    )
    assert [(p.code, p.call) for p in problems] == [
        ("tool_arguments_schema", "call_0"),
        ("tool_arguments_schema", "call_1"),
    ]
    assert "'city' is a required property" in problems[0].detail
    assert problems[1].detail.startswith("at $.days:")


def test_a_broken_schema_is_reported_not_raised():
    broken = [{"type": "function", "function": {"name": "f", "parameters": {"type": "no such type"}}}]
    problems = check_calls([call("f", "{}")], broken)
    assert [p.code for p in problems] == ["tool_arguments_schema"]
    assert "schema is not valid" in problems[0].detail
