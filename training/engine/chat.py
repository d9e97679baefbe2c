"""How a run's conversations reach the base model's chat template, and what the run records of it.

The rendering itself (tools, calls, results and reasoning given to the template, or its
documented fallback, docs/training.md) is `llm/chat.py`, shared with the length counts and the
local generation backend so that all of them see the text training sees; it is re-exported
here for the trainer. What stays here is the trainer's own: which parts a run's examples use,
and the record and log lines a run keeps about how they were rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm.chat import (
    FALLBACK_TOOLS_FOOTER,
    FALLBACK_TOOLS_HEADER,
    NO_TEMPLATE,
    THINK_CLOSE,
    THINK_OPEN,
    Conversation,
    Rendering,
    arguments_object,
    fallback_calls,
    fallback_tools,
    prepare,
    render,
    rendering,
)
from text.i18n import gettext as _

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "FALLBACK_TOOLS_FOOTER",
    "FALLBACK_TOOLS_HEADER",
    "NO_TEMPLATE",
    "THINK_CLOSE",
    "THINK_OPEN",
    "Conversation",
    "Rendering",
    "arguments_object",
    "fallback_calls",
    "fallback_tools",
    "prepare",
    "render",
    "rendering",
    "rendering_record",
    "uses",
]


def uses(examples: list[Any]) -> dict[str, bool]:
    """Which of tools, tool calls, tool results and reasoning the examples hold."""
    found = {"tools": False, "tool_calls": False, "tool_results": False, "reasoning": False}
    for example in examples:
        found["tools"] = found["tools"] or bool(getattr(example, "tools", None))
        for message in example.messages:
            found["tool_calls"] = found["tool_calls"] or bool(message.get("tool_calls"))
            found["tool_results"] = found["tool_results"] or message.get("role") == "tool"
            found["reasoning"] = found["reasoning"] or bool(message.get("reasoning"))
    return found


def rendering_record(tokenizer: PreTrainedTokenizerBase, examples: list[Any]) -> tuple[dict[str, str], list[str]]:
    """What a run keeps of how its tool calls, tool results and reasoning were rendered
    ("template" or "fallback" for each part its examples hold), and lines for its log."""
    how = rendering(tokenizer)
    record = how.describe(uses(examples))
    lines = []
    if record.get("tools") == "fallback":
        lines.append(
            _(
                "The base model's chat template does not render tools: they are listed in the system message and "
                "calls are written as <tool_call> JSON in the answer (docs/training.md)."
            )
        )
    if record.get("tool_results") == "fallback":
        lines.append(_("The chat template does not render tool results: they are written in a user turn."))
    if record.get("reasoning") == "fallback":
        lines.append(_("The chat template does not render reasoning: it is written as a <think> block in the answer."))
    native = [part for part, value in record.items() if value == "template"]
    if native:
        lines.append(_("Rendered by the chat template itself: %(parts)s.") % {"parts": ", ".join(native)})
    return record, lines
