"""OpenAICompatibleBackend with tools, against the loopback chat-completions server of
test_openai_backend.py: the tools go in the request, the calls come back canonical."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm.interface import GenerationError
from tests.curation import test_openai_backend as loopback
from tests.curation import test_outbound
from tests.curation.test_openai_backend import KEY, backend_for, conversation

# The loopback server, the recorded backoff waits and no proxy: test_openai_backend.py's fixtures.
server, sleeps, _no_proxy = loopback.server, loopback.sleeps, loopback._no_proxy
https_chat = test_outbound.https_chat  # the TLS server with a certificate the client does not trust

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def answer(message: dict[str, Any], finish: str = "tool_calls") -> tuple[int, dict[str, str], bytes]:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    return 200, {}, json.dumps(body).encode()


def calling(arguments: Any, content: Any = None) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {"id": "abc123", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        ],
    }


def test_the_tools_are_sent_and_the_calls_come_back_canonical(server, sleeps):
    server.respond = lambda number, body: answer(calling('{"city": "Kyoto"}'))
    [reply] = backend_for(server.url).generate_detailed([conversation("Weather in Kyoto?")], tools=[TOOLS])
    assert server.seen[0].body["tools"] == TOOLS
    assert reply.text == "" and reply.truncated is False
    assert reply.tool_calls == [
        {"id": "abc123", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}}
    ]


def test_a_conversation_without_tools_is_sent_without_them(server, sleeps):
    backend = backend_for(server.url)
    replies = backend.generate_detailed([conversation("Hi"), conversation("Weather?")], tools=[None, TOOLS])
    bodies = sorted((seen.body for seen in server.seen), key=lambda body: body["messages"][-1]["content"])
    assert "tools" not in bodies[0] and bodies[1]["tools"] == TOOLS
    assert [r.text for r in replies] == ["echo: Hi", "echo: Weather?"]
    assert [r.tool_calls for r in replies] == [None, None]
    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]


def test_arguments_sent_as_an_object_become_json_text_and_text_beside_calls_is_kept(server, sleeps):
    server.respond = lambda number, body: answer(calling({"city": "Nara"}, content="Looking it up."))
    [reply] = backend_for(server.url).generate_detailed([conversation("Weather in Nara?")], tools=[TOOLS])
    assert reply.text == "Looking it up."
    assert json.loads(reply.tool_calls[0]["function"]["arguments"]) == {"city": "Nara"}


def test_a_turn_that_only_calls_may_leave_the_content_out(server, sleeps):
    message = calling('{"city": "Kyoto"}')
    del message["content"]
    server.respond = lambda number, body: answer(message)
    [reply] = backend_for(server.url).generate_detailed([conversation("Weather?")], tools=[TOOLS])
    assert reply.text == "" and reply.tool_calls[0]["function"]["name"] == "get_weather"


def test_canonical_messages_are_sent_without_shikomi_keys(server, sleeps):
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "call it",
            "weight": 0,
            "tool_calls": calling("{}")["tool_calls"],
        },
        {"role": "tool", "tool_call_id": "abc123", "content": "Sunny."},
    ]
    backend_for(server.url).generate_detailed([history], tools=[TOOLS])
    sent = server.seen[0].body["messages"]
    assert "weight" not in sent[1] and "reasoning" not in sent[1]
    assert sent[1]["tool_calls"][0]["id"] == "abc123" and sent[2]["tool_call_id"] == "abc123"


def test_tool_calls_that_are_not_calls_fail_clearly(server, sleeps):
    server.respond = lambda number, body: answer({"role": "assistant", "content": "", "tool_calls": "get_weather"})
    with pytest.raises(GenerationError, match="tool_calls is not a list of function calls"):
        backend_for(server.url).generate_detailed([conversation("Weather?")], tools=[TOOLS])
    assert len(server.seen) == 1  # not retried


def test_one_list_of_tools_per_conversation_is_required(server, sleeps):
    with pytest.raises(ValueError, match="one per conversation"):
        backend_for(server.url).generate_detailed([conversation("a"), conversation("b")], tools=[TOOLS])


def test_the_sdks_environment_variables_never_reach_the_request(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-the-environment")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Leak: yes\nAuthorization: Bearer sk-custom")
    assert backend_for(server.url).generate([conversation("Hi")]) == ["echo: Hi"]
    assert backend_for(server.url, api_key=KEY).generate([conversation("Hi")]) == ["echo: Hi"]
    without, with_key = server.seen
    assert "Authorization" not in without.headers
    assert with_key.headers["Authorization"] == f"Bearer {KEY}"
    for seen in server.seen:
        assert "X-Leak" not in seen.headers and "OpenAI-Organization" not in seen.headers


def test_a_conflict_is_not_retried_even_when_the_server_says_to(server, sleeps):
    server.respond = lambda number, body: (409, {"x-should-retry": "true"}, json.dumps({"error": {}}).encode())
    with pytest.raises(GenerationError, match=r"failed: the server answered 409 Conflict\.$"):
        backend_for(server.url, retries=3).generate([conversation("Hi")])
    assert len(server.seen) == 1 and sleeps == []


def test_a_certificate_that_fails_is_not_tried_again(https_chat, sleeps):
    fake, _cert, _names = https_chat
    with pytest.raises(GenerationError, match=r"failed: the secure connection could not be set up"):
        backend_for(fake.url, retries=3).generate([conversation("Hi")])
    assert sleeps == []
