"""Lengths count what training renders beside the text: the tools' schemas, the calls' names and
arguments, and reasoning (llm/chat.py, the template or its documented fallback)."""

from __future__ import annotations

import json

import pytest

from curation.quality.lengths import count_tokens, load_tokenizer
from llm.chat import full_text

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city, with the temperature in degrees Celsius",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def calling(arguments: dict) -> list[dict]:
    call = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(arguments)}}
    return [
        {"role": "user", "content": "Weather in Kyoto?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "Sunny, 21 degrees."},
        {"role": "assistant", "content": "Sunny and 21 degrees."},
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_the_tools_schemas_count(tokenizer) -> None:
    conversation = calling({"city": "Kyoto"})
    without, with_tools = count_tokens(tokenizer, [conversation, conversation], tools=[None, TOOLS])
    assert with_tools > without + 20
    # exactly the text training renders
    rendered = full_text(tokenizer, conversation, TOOLS)
    assert "get_weather" in rendered and "degrees Celsius" in rendered
    assert with_tools == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def test_call_names_and_arguments_count(tokenizer) -> None:
    short, long = count_tokens(
        tokenizer, [calling({"city": "Kyoto"}), calling({"city": "Kyoto", "note": "a long note " * 20})]
    )
    assert long > short + 40
    no_call = [message for message in calling({"city": "Kyoto"}) if "tool_calls" not in message]
    assert short > count_tokens(tokenizer, [no_call])[0]


def test_reasoning_counts(tokenizer) -> None:
    plain = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    thinking = [plain[0], {**plain[1], "reasoning": "The user greets me; I greet back politely and briefly."}]
    assert count_tokens(tokenizer, [thinking])[0] > count_tokens(tokenizer, [plain])[0] + 8


def test_tools_need_one_entry_per_conversation(tokenizer) -> None:
    with pytest.raises(ValueError, match="one list of tools per conversation"):
        count_tokens(tokenizer, [calling({})], tools=[TOOLS, TOOLS])
