"""A `GenerationBackend` that asks an OpenAI-compatible chat-completions server.

vLLM, llama.cpp's server, Ollama and the hosted APIs all answer
`POST {base_url}/chat/completions`, so one small client covers them. It uses only the
standard library (`urllib.request`): `requests` and `httpx2` are installed only as other
packages' dependencies, and nothing here needs more than one POST with a timeout.

How it behaves, and why:

- `retries` is the number of attempts in all, not the number of repeats: `retries=3` sends a
  conversation at most three times.
- Timeouts, broken or refused connections and answers 408, 429 and 5xx are worth another
  attempt; the wait is `backoff * 2**attempt`, or the server's numeric `Retry-After` (at most
  30 s). Other 4xx answers are the caller's mistake and fail at once.
- An answer that is not a chat completion (not JSON, no `choices[0].message.content`, content
  that is not text) fails at once: a server that sends garbage usually sends it again.
- Tools: a conversation offered tools is sent with `"tools"` (OpenAI's definitions, as the
  example holds them); the calls in the answer's `message.tool_calls` come back in the
  canonical shape (arguments as JSON text; an object some servers send is written as text),
  and the content may then be empty or null. Canonical messages are sent in OpenAI's shape:
  without Shikomi's `weight` and `reasoning`.
- Redirects are not followed: urllib would turn the POST into a GET and could carry the key
  to another host, so the error names the new address (without its query) instead.
- Before each attempt the host is resolved and checked, and the request goes to the checked
  addresses only (llm/outbound.py): no link-local or cloud metadata address ever, no
  loopback or private one unless the operator allowed it, no environment proxy.
- Error messages never quote the server's answer: a base URL pointing at an internal page
  would otherwise read that page through the worker. They give the status code, a short
  printable reason phrase and an OpenAI-style `error.code`/`error.type` identifier; the start
  of the body goes to the debug log, for operators.
- The API key is given by the caller (resolved from the operator's list of secrets, never
  from a name a user typed); this module never reads the environment. A key the server echoes
  back is redacted from log lines and messages.
- `timeout` bounds each socket operation (connecting, each read), not the whole answer.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from email.message import Message
from http.client import HTTPException
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from llm import outbound
from llm.interface import Conversation, DetailedBackend, Generation, GenerationError, Tools, tools_for
from text import i18n
from text.i18n import gettext as _
from text.i18n import ngettext

log = logging.getLogger(__name__)

# Longest wait a server may ask for with Retry-After; beyond that, failing is more useful.
MAX_RETRY_AFTER = 30.0
# How much of a server's answer the debug log quotes (users see none of it).
EXCERPT_CHARS = 200
# How much of a reason phrase and of a redirect's address an error message shows.
REASON_CHARS = 40
LOCATION_CHARS = 200
# Keys of a canonical message that are Shikomi's own, not OpenAI's: not sent.
_NOT_SENT = frozenset({"weight", "reasoning"})
# An OpenAI-style error code or type ("model_not_found", "invalid_request_error").
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


class _Transient(Exception):
    """One attempt failed in a way that another attempt may not."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        # None makes urllib raise the 3xx answer as an HTTPError.
        return None


class OpenAICompatibleBackend(DetailedBackend):
    """Sends each conversation to `{base_url}/chat/completions`, up to `concurrency` at a time.

    `api_key` is the key itself, resolved by the caller from the operator's list of secrets
    (this module never reads the environment); `key_name` is that secret's name, used only in
    messages. Leave both empty for a server that wants no key. `allowed` lists the private
    networks and host names it may reach besides public addresses (llm/outbound.py).
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        key_name: str = "",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
        allowed: outbound.AllowList = outbound.NOTHING_ALLOWED,
    ) -> None:
        parts = urlsplit(base_url.strip())
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ValueError(_("base_url %(url)r has a port that is not a number.") % {"url": base_url}) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                _(
                    "base_url %(url)r is not an http:// or https:// address with a host; "
                    "give one such as http://localhost:8000/v1."
                )
                % {"url": base_url}
            )
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                _("base_url must not hold a user name or password; the API key is sent from the connection's secret.")
            )
        if parts.query or parts.fragment:
            raise ValueError(
                _("base_url %(url)r must not have a query (?) or fragment (#); give the address up to /v1.")
                % {"url": base_url}
            )
        if not model.strip():
            raise ValueError(_("model is empty; give the model name the server knows, such as the one it serves."))
        if timeout <= 0:
            raise ValueError(_("timeout is %(value)r; it must be more than 0 seconds.") % {"value": timeout})
        if retries < 1:
            raise ValueError(
                _("retries is %(value)r; it counts attempts, so it must be at least 1.") % {"value": retries}
            )
        if backoff < 0:
            raise ValueError(_("backoff is %(value)r; it must be 0 or more seconds.") % {"value": backoff})
        if concurrency < 1:
            raise ValueError(_("concurrency is %(value)r; it must be at least 1.") % {"value": concurrency})
        self.base_url = base_url.strip()
        self.url = self.base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key.strip()
        self.key_name = key_name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.allowed = allowed
        self.name = f"openai:{model}@{parts.netloc}"

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[Generation]:
        """The replies; `truncated` is the server's finish_reason "length" (None if it gave none);
        `tool_calls` the calls the model made, for a conversation sent with tools."""
        if not conversations:
            return []
        offered = tools_for(conversations, tools)
        headers, api_key = self._headers()
        # The active language belongs to this thread; the workers format their errors in it.
        language = i18n.get_language()

        def complete(conversation: Conversation, given: Tools | None) -> Generation:
            with i18n.override(language):
                body = self._body(conversation, given, max_new_tokens, temperature)
                return self._complete(body, headers, api_key)

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations)))
        try:
            futures = [
                pool.submit(complete, conversation, given)
                for conversation, given in zip(conversations, offered, strict=True)
            ]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and (error := future.exception()) is not None:
                    raise error
            return [future.result() for future in futures]
        finally:
            # After a failure, conversations not yet sent are dropped, and the caller does not
            # wait for those in flight.
            pool.shutdown(wait=False, cancel_futures=True)

    def _headers(self) -> tuple[dict[str, str], str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "shikomi"}
        if not self.api_key:
            if self.key_name:
                # The connection names a secret that the operator left unset: fail before sending
                # anything rather than ask the server without its key.
                raise GenerationError(
                    _(
                        "The API key for %(url)s is the secret %(name)s, which is not set or empty. Ask the "
                        "operator to set it for the web server and the worker."
                    )
                    % {"url": self.url, "name": self.key_name}
                )
            return headers, ""
        headers["Authorization"] = f"Bearer {self.api_key}"
        return headers, self.api_key

    def _body(self, conversation: Conversation, tools: Tools | None, max_new_tokens: int, temperature: float) -> bytes:
        messages = [{k: v for k, v in message.items() if k not in _NOT_SENT} for message in conversation]
        request = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": temperature}
        if tools:
            request["tools"] = tools
        return json.dumps(request).encode()

    def _complete(self, body: bytes, headers: dict[str, str], api_key: str) -> Generation:
        for attempt in range(self.retries):
            try:
                return self._attempt(body, headers, api_key)
            except _Transient as failure:
                if attempt + 1 == self.retries:
                    raise GenerationError(
                        _sentence(
                            ngettext(
                                "The request to %(url)s failed after %(count)d attempt: %(problem)s",
                                "The request to %(url)s failed after %(count)d attempts: %(problem)s",
                                self.retries,
                            )
                            % {"url": self.url, "count": self.retries, "problem": failure.problem}
                        )
                    ) from None
                delay = self.backoff * 2**attempt if failure.retry_after is None else failure.retry_after
                log.warning(
                    "%s: %s (attempt %d of %d); trying again in %g s",
                    self.url,
                    failure.problem,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _attempt(self, body: bytes, headers: dict[str, str], api_key: str) -> Generation:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            # Resolved and checked at each attempt, and the request goes to the checked addresses.
            opener = outbound.pinned_opener(self.url, self.allowed, _NoRedirect())
        except outbound.OutboundRefused as refusal:
            message = _("The request to %(url)s was not sent.") % {"url": self.url}
            raise GenerationError(f"{message} {refusal}") from None
        try:
            with opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise self._refusal(error, api_key) from None
        except urllib.error.URLError as error:
            raise self._connection_failure(error.reason) from None
        except (OSError, HTTPException) as error:
            # While reading the answer: a timeout, or a connection that broke off.
            raise self._connection_failure(error) from None
        return self._reply(raw, api_key)

    def _refusal(self, error: urllib.error.HTTPError, api_key: str) -> _Transient | GenerationError:
        """What an answer with an error status means."""
        try:
            raw = error.read()
        except (OSError, HTTPException):
            raw = b""
        finally:
            error.close()
        status = error.code
        # The body is the server's, and the server may be a page the user could not read
        # otherwise: only a short status line reaches the user, the body only the debug log.
        log.debug("%s answered %d: %s", self.url, status, _excerpt(raw, api_key))
        problem = _("the server answered %(status)s") % {"status": _status_line(status, error.reason, raw, api_key)}
        if status in (408, 429) or status >= 500:
            return _Transient(problem, _retry_after(error.headers))
        hint = ""
        if 300 <= status < 400:
            location = _location(error.headers.get("Location") or "", api_key) or _("nowhere")
            hint = _("It redirects to %(location)s; give that address (without /chat/completions) as base_url.") % {
                "location": location
            }
        elif status in (401, 403):
            if self.key_name:
                hint = _("Check the API key in the secret %(name)s.") % {"name": self.key_name}
            else:
                hint = _("The server wants an API key: choose a connection that sends one.")
        elif status == 404:
            hint = _(
                "Check that base_url ends where the API starts (usually /v1) and that the server serves "
                "the model %(model)s."
            ) % {"model": self.model}
        message = _sentence(_("The request to %(url)s failed: %(problem)s") % {"url": self.url, "problem": problem})
        return GenerationError(f"{message} {hint}".strip())

    def _connection_failure(self, reason: object) -> _Transient | GenerationError:
        """What a failure to connect, or to read the whole answer, means."""
        if isinstance(reason, TimeoutError):
            return _Transient(_("the server did not answer within %(seconds)s s") % {"seconds": f"{self.timeout:g}"})
        if isinstance(reason, ConnectionRefusedError):
            return _Transient(_("connection refused: is the server running?"))
        if isinstance(reason, ssl.SSLError):
            return GenerationError(
                _("The request to %(url)s failed: the secure connection could not be set up (%(error)s).")
                % {"url": self.url, "error": reason}
            )
        if isinstance(reason, (OSError, HTTPException)):
            # Resets, a server that closed the connection without answering, unreachable networks.
            return _Transient(_("the connection failed: %(error)s") % {"error": reason or type(reason).__name__})
        return GenerationError(
            _sentence(_("The request to %(url)s failed: %(error)s") % {"url": self.url, "error": reason})
        )

    def _reply(self, raw: bytes, api_key: str) -> Generation:
        """The assistant's text in a chat completion; GenerationError for anything else."""
        try:
            answer = json.loads(raw)
        except ValueError:
            raise self._garbage(_("not JSON"), raw, api_key) from None
        try:
            message = answer["choices"][0]["message"]
            # A turn that only calls may leave the content out.
            content = message.get("content") if message.get("tool_calls") else message["content"]
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._garbage(_("no choices[0].message.content"), raw, api_key) from None
        calls = _calls(message.get("tool_calls"))
        if calls is None:
            raise self._garbage(_("choices[0].message.tool_calls is not a list of function calls"), raw, api_key)
        if content is None and calls:
            content = ""  # a turn that only calls
        if not isinstance(content, str):
            raise self._garbage(_("choices[0].message.content is not text"), raw, api_key)
        finish = answer["choices"][0].get("finish_reason")
        return Generation(
            content.strip(), truncated=None if finish is None else finish == "length", tool_calls=calls or None
        )

    def _garbage(self, what: str, raw: bytes, api_key: str) -> GenerationError:
        # Not quoted to the user (see _refusal); operators find the start of it in the debug log.
        log.debug("%s answered something that is not a chat completion: %s", self.url, _excerpt(raw, api_key))
        return GenerationError(
            _(
                "The request to %(url)s failed: the server answered with something that is not a chat "
                "completion (%(what)s). Check that base_url points at an OpenAI-compatible API "
                "(it usually ends in /v1)."
            )
            % {"url": self.url, "what": what}
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


def _retry_after(headers: Message) -> float | None:
    """The seconds a server asks to wait (numeric Retry-After only), at most MAX_RETRY_AFTER."""
    try:
        seconds = float(headers.get("Retry-After") or "")
    except ValueError:
        return None
    if not seconds >= 0:  # also refuses NaN
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _excerpt(raw: bytes, api_key: str) -> str:
    """The start of an answer on one line, without the API key if the server echoed it (for logs)."""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return _redact(text, api_key)[:EXCERPT_CHARS]


def _status_line(status: int, reason: object, raw: bytes, api_key: str) -> str:
    """`404 Not Found (model_not_found)`: the code, a short printable reason phrase, and the
    OpenAI-style `error.code` or `error.type` when it is a short identifier; nothing else of the body.
    """
    line = str(status)
    phrase = _redact(" ".join(str(reason or "").split()), api_key)
    if phrase and all(" " <= c <= "~" for c in phrase):
        line += " " + phrase[:REASON_CHARS]
    if (token := _error_token(raw, api_key)) is not None:
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


def _location(location: str, api_key: str) -> str:
    """Where a redirect points, without its query (which may carry a token), if it is printable."""
    parts = urlsplit(location.strip())
    shown = _redact(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), api_key)
    if not shown or len(shown) > LOCATION_CHARS or not all(" " < c <= "~" for c in shown):
        return ""
    return shown


def _sentence(text: str) -> str:
    """`text` ending in a full stop, unless it ends in one already (or in a question)."""
    return text if text.endswith((".", "?", "!", "。", "？", "！")) else f"{text}."


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "[API key]") if api_key else text
