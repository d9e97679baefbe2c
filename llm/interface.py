"""Text generation backends: something that answers chat conversations.

Plain Python: conversations in OpenAI chat shape in, reply texts out. Weak-supervision rules,
evaluation and (later) OpenAI-compatible servers all talk to a `GenerationBackend`, so the
callers never know whether the model runs in this process or elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    """One reply and whether it was cut off at the token limit (None: the backend cannot tell)."""

    text: str
    truncated: bool | None = None


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
        """Return the assistant's reply to each conversation, in order."""
        ...


class DetailedBackend:
    """A backend that says whether each reply was cut off; its plain `generate` is the texts."""

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        replies = self.generate_detailed(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
        return [g.text for g in replies]

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[Generation]:
        raise NotImplementedError
