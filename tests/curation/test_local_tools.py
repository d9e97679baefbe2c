"""LocalBackend with tools: the prompt is rendered as training renders it (the tools given to
the template, or its documented fallback) and calls in the reply come back structured."""

from __future__ import annotations

import json

from llm import local
from llm.chat import FALLBACK_TOOLS_HEADER
from llm.local import LocalBackend

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Kyoto"}}</tool_call>'


class Scripted(LocalBackend):
    """The embedded tokenizer, with a reply written for it instead of generated."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply
        self.offered: list = []

    def generate_token_ids(self, conversations, *, max_new_tokens=64, temperature=0.0, tools=None):
        tokenizer, _model = self.load()
        self.offered.append(tools)
        return [tokenizer(self.reply, add_special_tokens=False)["input_ids"] for _ in conversations]


def test_the_prompt_lists_the_tools_as_training_renders_them(monkeypatch) -> None:
    prompts: list[str] = []
    real = local.prompt_text

    def spy(tokenizer, messages, tools=None):
        prompts.append(real(tokenizer, messages, tools))
        return prompts[-1]

    monkeypatch.setattr(local, "prompt_text", spy)
    backend = LocalBackend(batch_size=2)
    conversation = [{"role": "user", "content": "Weather in Kyoto?"}]
    backend.generate_token_ids([conversation, conversation], max_new_tokens=2, tools=[TOOLS, None])
    # SmolLM2's template knows no tools: the documented fallback lists them in a system message
    assert FALLBACK_TOOLS_HEADER in prompts[0] and "get_weather" in prompts[0]
    assert "get_weather" not in prompts[1]


def test_a_call_in_the_reply_comes_back_structured_beside_the_text() -> None:
    backend = Scripted(f"Let me check.\n{CALL}")
    [reply] = backend.generate_detailed([[{"role": "user", "content": "Weather?"}]], tools=[TOOLS])
    assert backend.offered == [[TOOLS]]
    assert reply.text == "Let me check."
    assert reply.tool_calls == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Kyoto"})},
        }
    ]


def test_without_tools_the_reply_is_text_even_when_it_looks_like_a_call() -> None:
    [reply] = Scripted(CALL).generate_detailed([[{"role": "user", "content": "Weather?"}]])
    assert reply.text == CALL and reply.tool_calls is None


def test_a_backend_that_takes_no_tools_is_asked_without_them() -> None:
    class Plain:
        name = "plain"

        def generate(self, conversations, *, max_new_tokens=64, temperature=0.0):
            return ["ok" for _ in conversations]

    replies = local.generate_detailed(Plain(), [[{"role": "user", "content": "Hi"}]], tools=[TOOLS])
    assert [r.text for r in replies] == ["ok"]
    assert [r.text for r in local.generate_detailed(Plain(), [[{"role": "user", "content": "Hi"}]])] == ["ok"]
