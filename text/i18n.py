"""Translation for the plain-Python packages (`llm`, `text`, `training.engine`), without Django.

They mark their messages as Django code does (`from text.i18n import gettext as _`, `ngettext`,
`gettext_lazy`), so `makemessages` still finds them, but translate through whatever the host
installed: Django's functions once `curation`'s AppConfig.ready() calls `install`, the message
itself (English) before that or outside Django (a script, a test of the engine alone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_gettext: Callable[[str], str] = lambda message: message  # noqa: E731
_ngettext: Callable[[str, str, int], str] = lambda singular, plural, n: singular if n == 1 else plural  # noqa: E731
_get_language: Callable[[], str | None] = lambda: None  # noqa: E731
_override: Callable[[str | None], contextlib.AbstractContextManager[Any]] = lambda _language: contextlib.nullcontext()  # noqa: E731


def install(
    *,
    gettext: Callable[[str], str],
    ngettext: Callable[[str, str, int], str],
    get_language: Callable[[], str | None] | None = None,
    override: Callable[[str | None], contextlib.AbstractContextManager[Any]] | None = None,
) -> None:
    """Translate with these from now on (Django's, from an AppConfig.ready()). `get_language` and
    `override` let a worker thread format its messages in the language of the thread that started it."""
    global _gettext, _ngettext, _get_language, _override
    _gettext, _ngettext = gettext, ngettext
    if get_language is not None:
        _get_language = get_language
    if override is not None:
        _override = override


def gettext(message: str) -> str:
    return _gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _ngettext(singular, plural, n)


def get_language() -> str | None:
    """The active language of this thread (None outside Django)."""
    return _get_language()


@contextlib.contextmanager
def override(language: str | None) -> Iterator[None]:
    """Messages in `language` inside the block (nothing changes outside Django)."""
    with _override(language):
        yield


class LazyText:
    """A message translated each time it is shown, in the language active then: for texts made
    at import time (help texts, choice labels) that pages show in each reader's language.

    Wherever a string is expected, `str()` of it is the translation: Django forms and templates,
    DRF fields and `%` formatting all call it.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return _gettext(self.message)

    def __repr__(self) -> str:
        return f"gettext_lazy({self.message!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyText | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __mod__(self, values: Any) -> str:
        return str(self) % values

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def gettext_lazy(message: str) -> LazyText:
    return LazyText(message)
