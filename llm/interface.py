"""Text generation backends: something that answers chat conversations.

Plain Python: conversations in OpenAI chat shape in, reply texts out. Weak-supervision rules,
evaluation, generation jobs and OpenAI-compatible servers all talk to a `GenerationBackend`, so
the callers never know whether the model runs in this process or elsewhere.

Tools: `tools` is one list of OpenAI tool definitions per conversation (None, or None for a
conversation, offers none). A backend that takes tools gives them to the model and returns the
calls it made as `Generation.tool_calls` (canonical, docs/data-model.md), its `text` then being
what the model wrote beside the calls. A backend that does not take tools is asked without them
(`llm.local.generate_detailed` sees to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from text.i18n import gettext as _

Conversation = list[dict[str, Any]]
Tools = list[dict[str, Any]]


@dataclass(frozen=True)
class Generation:
    """One reply and whether it was cut off at the token limit (None: the backend cannot tell);
    with the tool calls it made (canonical) when the model was given tools and called one."""

    text: str
    truncated: bool | None = None
    tool_calls: list[dict[str, Any]] | None = None


class GenerationError(Exception):
    """A model could not be found, loaded or run; the message says which and what to do."""


@runtime_checkable
class GenerationBackend(Protocol):
    name: str

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        """Return the assistant's reply to each conversation, in order. A backend that can offer
        tools also takes `tools=` (one list per conversation, or None)."""
        ...


class DetailedBackend:
    """A backend that says whether each reply was cut off and offers tools; its plain `generate`
    is the texts."""

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[str]:
        replies = self.generate_detailed(
            conversations, max_new_tokens=max_new_tokens, temperature=temperature, tools=tools
        )
        return [g.text for g in replies]

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[Generation]:
        raise NotImplementedError


def tools_for(conversations: list[Conversation], tools: list[Tools | None] | None) -> list[Tools | None]:
    """One entry per conversation (None where it offers no tools); ValueError for a list of
    another length."""
    if tools is None:
        return [None] * len(conversations)
    if len(tools) != len(conversations):
        raise ValueError(
            _("tools has %(tools)d entries for %(conversations)d conversations; give one per conversation.")
            % {"tools": len(tools), "conversations": len(conversations)}
        )
    return [list(entry) if entry else None for entry in tools]
