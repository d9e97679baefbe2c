"""The canonical conversation as a model's chat template receives it: for training (what the
trainer renders and masks, training/engine/data.py), for counting lengths (curation/quality/
lengths.py) and for asking a local model (llm/local.py), so all three see the same text.

Plain Python (no Django).

The template gets the example's `tools` (`apply_chat_template(..., tools=...)`), the assistant
turns' `tool_calls` (arguments as a JSON object, as templates expect) and the tool results
with their `tool_call_id`. What the template cannot render is written in a documented
fallback (docs/training.md), found by rendering a small probe conversation once per tokenizer:

- tools and calls (the template ignores `tools` or `tool_calls`): the tools are listed as JSON
  in the system message (a system message is added when there is none), and each call is
  written in the assistant's content as `<tool_call>{"name": …, "arguments": {…}}</tool_call>`;
- tool results (the template cannot render a `tool` turn): a user turn holding
  `<tool_response>\n…\n</tool_response>`, consecutive results in one turn;
- reasoning (the template ignores `reasoning_content`): a leading `<think>\n…\n</think>\n\n`
  in the content, as `curation/formats/conversation.py` `with_think` writes it.

A run's reasoning setting (`TrainConfig.reasoning`) decides what the reasoning of each
assistant turn becomes: "train" (rendered, trained), "mask" (rendered, no loss),
"drop_earlier" (removed from every assistant turn but the last, which trains).
"""

from __future__ import annotations

import contextlib
import json
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
FALLBACK_TOOLS_HEADER = "You can call these functions (JSON schemas):"
FALLBACK_TOOLS_FOOTER = (
    'To call a function, write <tool_call>{"name": <function name>, "arguments": <arguments as a JSON object>}'
    "</tool_call>."
)
_PROBE_TOOL = "shikomi_probe_tool"
_PROBE_VALUE = "shikomi_probe_value"
_PROBE_RESULT = "shikomi_probe_result"
_PROBE_REASONING = "shikomi_probe_reasoning"
# The template each tokenizer was probed with, and what the probe found.
_RENDERINGS: weakref.WeakKeyDictionary[Any, tuple[Any, Rendering]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Rendering:
    """What the tokenizer's chat template renders itself; the rest takes the fallback."""

    tools: bool  # `tools` listed and `tool_calls` written
    tool_results: bool  # a `tool` turn rendered
    reasoning: bool  # `reasoning_content` of an assistant turn rendered

    def describe(self, parts: dict[str, bool] | None = None) -> dict[str, str]:
        """The record kept on a run: "template" or "fallback" for each part (those in use, when `parts` is given)."""
        record = {
            "tools": "template" if self.tools else "fallback",
            "tool_results": "template" if self.tool_results else "fallback",
            "reasoning": "template" if self.reasoning else "fallback",
        }
        if parts is not None:
            used = {"tools": parts["tools"] or parts["tool_calls"], "tool_results": parts["tool_results"]}
            used["reasoning"] = parts["reasoning"]
            record = {key: value for key, value in record.items() if used[key]}
        return record


NO_TEMPLATE = Rendering(tools=False, tool_results=True, reasoning=False)


@dataclass
class Conversation:
    """The messages as the template receives them, and per message what the loss sees."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    trained: list[bool] = field(default_factory=list)  # an assistant turn with loss (weight not 0)
    masked: list[str] = field(default_factory=list)  # reasoning rendered without loss ("" for none)


def render(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    generation_prompt: bool = False,
) -> str:
    extra = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt, **extra)


def rendering(tokenizer: PreTrainedTokenizerBase) -> Rendering:
    """What the tokenizer's template supports, probed once per tokenizer."""
    if getattr(tokenizer, "chat_template", None) is None:
        return NO_TEMPLATE
    template = tokenizer.chat_template
    with contextlib.suppress(KeyError, TypeError):
        probed, found = _RENDERINGS[tokenizer]
        if probed == template:  # a template set since is probed again
            return found
    tools = _probe_tools(tokenizer)
    found = Rendering(
        tools=tools, tool_results=tools or _probe_results(tokenizer), reasoning=_probe_reasoning(tokenizer)
    )
    with contextlib.suppress(TypeError):
        _RENDERINGS[tokenizer] = (template, found)
    return found


def _shows(tokenizer: PreTrainedTokenizerBase, needle: str, messages: list[dict[str, Any]], **kwargs: Any) -> bool:
    try:
        return needle in render(tokenizer, messages, **kwargs)
    except Exception:  # noqa: BLE001 - a template that refuses the probe does not support it
        return False


def _probe_tools(tokenizer: PreTrainedTokenizerBase) -> bool:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools = [{"type": "function", "function": {"name": _PROBE_TOOL, "description": "Probe.", "parameters": schema}}]
    call = {"id": "call_0", "type": "function", "function": {"name": _PROBE_TOOL, "arguments": {"city": _PROBE_VALUE}}}
    user = {"role": "user", "content": "Weather?"}
    listed = _shows(tokenizer, _PROBE_TOOL, [user], tools=tools, generation_prompt=True)
    conversation = [
        user,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": "Sunny."},
        {"role": "assistant", "content": "Sunny."},
    ]
    return listed and _shows(tokenizer, _PROBE_VALUE, conversation, tools=tools)


def _probe_results(tokenizer: PreTrainedTokenizerBase) -> bool:
    conversation = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Looking."},
        {"role": "tool", "content": _PROBE_RESULT},
        {"role": "assistant", "content": "Sunny."},
    ]
    return _shows(tokenizer, _PROBE_RESULT, conversation)


def _probe_reasoning(tokenizer: PreTrainedTokenizerBase) -> bool:
    conversation = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Sunny.", "reasoning_content": _PROBE_REASONING},
    ]
    return _shows(tokenizer, _PROBE_REASONING, conversation)


def arguments_object(arguments: Any) -> Any:
    """A call's arguments as a JSON object when its text is one (templates expect a dict), else as given."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            parsed = json.loads(arguments)
            if isinstance(parsed, dict):
                return parsed
    return arguments


def fallback_calls(calls: list[dict[str, Any]]) -> str:
    """`<tool_call>{"name": …, "arguments": {…}}</tool_call>` per call, one a line."""
    lines = []
    for call in calls:
        function = call.get("function") or {}
        body = {"name": function.get("name", ""), "arguments": arguments_object(function.get("arguments", {}))}
        lines.append(f"<tool_call>{json.dumps(body, ensure_ascii=False)}</tool_call>")
    return "\n".join(lines)


def fallback_tools(tools: list[dict[str, Any]]) -> str:
    """The tools listed for a system message: one JSON definition a line between <tools> tags."""
    listed = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return f"{FALLBACK_TOOLS_HEADER}\n<tools>\n{listed}\n</tools>\n{FALLBACK_TOOLS_FOOTER}"


def _trained(message: dict[str, Any]) -> bool:
    weight = message.get("weight")
    return message.get("role") == "assistant" and (weight is None or weight != 0)


def _assistant(message: dict[str, Any], reasoning: str, how: Rendering) -> dict[str, Any]:
    """An assistant turn for the template: reasoning and calls rendered as the template can."""
    turn = {key: value for key, value in message.items() if key not in ("weight", "reasoning", "tool_calls")}
    content = turn.get("content") or ""
    calls = message.get("tool_calls") or []
    if calls and how.tools:
        turn["tool_calls"] = [_call(call) for call in calls]
    elif calls:
        written = fallback_calls(calls)
        content = f"{content}\n{written}" if content else written
    if reasoning and how.reasoning:
        turn["reasoning_content"] = reasoning
    elif reasoning:
        content = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{content}"
    turn["content"] = content
    return turn


def _call(call: dict[str, Any]) -> dict[str, Any]:
    call = dict(call)
    function = dict(call.get("function") or {})
    function["arguments"] = arguments_object(function.get("arguments", {}))
    call["function"] = function
    return call


def prepare(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, how: Rendering, reasoning_setting: str = "train"
) -> Conversation:
    """The conversation the template renders, with the trained turns and the reasoning to mask."""
    assistants = [index for index, message in enumerate(messages) if message.get("role") == "assistant"]
    last = assistants[-1] if assistants else -1
    out = Conversation(messages=[], tools=list(tools) if tools and how.tools else None)
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "assistant":
            reasoning = (message.get("reasoning") or "").strip("\n")
            if reasoning_setting == "drop_earlier" and index != last:
                reasoning = ""
            out.messages.append(_assistant(message, reasoning, how))
            out.trained.append(_trained(message))
            out.masked.append(reasoning if reasoning_setting == "mask" else "")
            continue
        if role == "tool" and not how.tool_results:
            text = f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"
            if out.messages and out.messages[-1].get("shikomi_results"):
                out.messages[-1]["content"] += "\n" + text
                continue
            turn: dict[str, Any] = {"role": "user", "content": text, "shikomi_results": True}
        else:
            turn = {key: value for key, value in message.items() if key not in ("weight", "reasoning")}
        out.messages.append(turn)
        out.trained.append(False)
        out.masked.append("")
    for turn in out.messages:
        turn.pop("shikomi_results", None)
    if tools and not how.tools:
        _list_tools(out, tools)
    return out


def _list_tools(out: Conversation, tools: list[dict[str, Any]]) -> None:
    """The fallback tools listing, at the end of the system message (a new one first when there is none)."""
    listing = fallback_tools(tools)
    if out.messages and out.messages[0].get("role") == "system":
        system = out.messages[0]
        system["content"] = f"{system.get('content') or ''}\n\n{listing}" if system.get("content") else listing
        return
    out.messages.insert(0, {"role": "system", "content": listing})
    out.trained.insert(0, False)
    out.masked.insert(0, "")


def prompt_text(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> str:
    """The prompt that asks the model for the next assistant turn, rendered as training renders
    its conversations (the tools and calls given to the template, or the fallback above); a
    tokenizer without a chat template gets "role: content" lines."""
    conversation = prepare([dict(message) for message in messages], tools, rendering(tokenizer))
    if getattr(tokenizer, "chat_template", None):
        return render(tokenizer, conversation.messages, conversation.tools, generation_prompt=True)
    lines = [f"{message.get('role', '')}: {message.get('content') or ''}\n" for message in conversation.messages]
    return "".join(lines) + "assistant: "


def full_text(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> str:
    """The whole conversation as training renders it (no generation prompt; the answer is there);
    a tokenizer without a chat template gets "role: content" lines."""
    conversation = prepare([dict(message) for message in messages], tools, rendering(tokenizer))
    if getattr(tokenizer, "chat_template", None):
        return render(tokenizer, conversation.messages, conversation.tools)
    return "\n".join(f"{message.get('role', '')}: {message.get('content') or ''}" for message in conversation.messages)
