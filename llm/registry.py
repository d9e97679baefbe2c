"""Which backend serves each kind of connection: "embedded", "folder", "openai".

The caller (curation's connections) resolves what only it may know (the folder inside the
operator's models directory, the secret's value, the allow-list) and passes it in as options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm.interface import GenerationBackend


def _embedded() -> GenerationBackend:
    from llm.local import LocalBackend

    return LocalBackend()


def _folder(*, folder: str, name: str) -> GenerationBackend:
    from llm.local import LocalBackend

    backend = LocalBackend(folder)
    backend.name = name
    return backend


def _openai(**options: Any) -> GenerationBackend:
    from llm.openai_compatible import OpenAICompatibleBackend

    return OpenAICompatibleBackend(**options)


BACKENDS: dict[str, Callable[..., GenerationBackend]] = {
    "embedded": _embedded,
    "folder": _folder,
    "openai": _openai,
}


def backend_for(kind: str, **options: Any) -> GenerationBackend:
    """The backend of a connection of `kind` (KeyError for another kind), made with `options`;
    ValueError for options that cannot work (an OpenAI-compatible server's address)."""
    return BACKENDS[kind](**options)
