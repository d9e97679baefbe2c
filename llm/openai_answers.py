"""What an OpenAI-compatible server answered, read for Shikomi: the reply in a chat completion,
and what may be said to a user about an answer that was not one.

- The reply is read from the raw body, not from the SDK's model of it, so that an answer that
  is not a chat completion (not JSON, no `choices[0].message.content`, content that is not
  text) says what it lacked.
- Tool calls in the answer's `message.tool_calls` come back in the canonical shape (arguments
  as JSON text; an object some servers send is written as text), and the content may then be
  empty or null.
- Nothing here quotes the server's body to a user: a base URL pointing at an internal page
  would otherwise read that page through the worker. A user sees the status code, a short
  printable reason phrase and an OpenAI-style `error.code`/`error.type` identifier; the start
  of the body is for the debug log, without the API key if the server echoed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llm.interface import Generation
from text.i18n import gettext as _

# Longest wait a server may ask for with Retry-After; beyond that, failing is more useful.
MAX_RETRY_AFTER = 30.0
# How much of a server's answer the debug log quotes (users see none of it).
EXCERPT_CHARS = 200
# How much of a reason phrase and of a redirect's address an error message shows.
REASON_CHARS = 40
LOCATION_CHARS = 200
# An OpenAI-style error code or type ("model_not_found", "invalid_request_error").
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


class NotACompletion(ValueError):
    """The answer is not a chat completion; str() says what it lacked (no part of the answer)."""


def read_completion(raw: bytes) -> Generation:
    """The assistant's reply in a chat completion's body; NotACompletion for anything else."""
    try:
        answer = json.loads(raw)
    except ValueError:
        raise NotACompletion(_("not JSON")) from None
    try:
        message = answer["choices"][0]["message"]
        # A turn that only calls may leave the content out.
        content = message.get("content") if message.get("tool_calls") else message["content"]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise NotACompletion(_("no choices[0].message.content")) from None
    calls = _calls(message.get("tool_calls"))
    if calls is None:
        raise NotACompletion(_("choices[0].message.tool_calls is not a list of function calls"))
    if content is None and calls:
        content = ""  # a turn that only calls
    if not isinstance(content, str):
        raise NotACompletion(_("choices[0].message.content is not text"))
    finish = answer["choices"][0].get("finish_reason")
    return Generation(
        content.strip(), truncated=None if finish is None else finish == "length", tool_calls=calls or None
    )


def _calls(value: object) -> list[dict[str, object]] | None:
    """The calls of an answer's message in the canonical shape (none when it has none), or None
    when they are not OpenAI's list of {"id", "type": "function", "function": {"name", "arguments"}}."""
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    calls: list[dict[str, object]] = []
    for index, entry in enumerate(value):
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return None
        arguments = function.get("arguments")
        if arguments is None:
            arguments = "{}"
        elif not isinstance(arguments, str):  # Ollama and others send the object itself
            arguments = json.dumps(arguments, ensure_ascii=False)
        call_id = entry.get("id")
        calls.append(
            {
                "id": call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    return calls


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds a server asks to wait (numeric Retry-After only), at most MAX_RETRY_AFTER."""
    try:
        seconds = float(headers.get("Retry-After") or "")
    except ValueError:
        return None
    if not seconds >= 0:  # also refuses NaN
        return None
    return min(seconds, MAX_RETRY_AFTER)


def excerpt(raw: bytes, api_key: str) -> str:
    """The start of an answer on one line, without the API key if the server echoed it (for logs)."""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return _redact(text, api_key)[:EXCERPT_CHARS]


def status_line(response: Any, api_key: str) -> str:
    """`404 Not Found (model_not_found)` for an httpx response: the code, a short printable reason
    phrase, and the OpenAI-style `error.code` or `error.type` when it is a short identifier;
    nothing else of the body."""
    line = str(response.status_code)
    # The phrase as the server sent it: httpx's own drops the bytes it cannot show.
    sent = response.extensions.get("reason_phrase")
    reason = sent.decode("latin-1") if isinstance(sent, bytes) else response.reason_phrase
    phrase = _redact(" ".join(str(reason or "").split()), api_key)
    if phrase and all(" " <= c <= "~" for c in phrase):
        line += " " + phrase[:REASON_CHARS]
    if (token := _error_token(response.content, api_key)) is not None:
        line += f" ({token})"
    return line


def _error_token(raw: bytes, api_key: str) -> str | None:
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(error, dict):
        return None
    for key in ("code", "type"):
        token = error.get(key)
        if isinstance(token, str) and _TOKEN.fullmatch(token) and not (api_key and api_key in token):
            return token
    return None


def location(headers: Mapping[str, str], api_key: str) -> str:
    """Where a redirect points, without its query (which may carry a token), if it is printable."""
    parts = urlsplit((headers.get("Location") or "").strip())
    shown = _redact(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), api_key)
    if not shown or len(shown) > LOCATION_CHARS or not all(" " < c <= "~" for c in shown):
        return ""
    return shown


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "[API key]") if api_key else text
