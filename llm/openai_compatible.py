"""A `GenerationBackend` that asks an OpenAI-compatible chat-completions server.

vLLM, llama.cpp's server, Ollama and the hosted APIs all answer
`POST {base_url}/chat/completions`. The official `openai` SDK sends the request, waits, tries
again and raises typed errors; its `httpx` client comes from llm/outbound_http.py, so every
connection goes only to an address the outbound guard checked (llm/outbound.py: no link-local
or cloud metadata address ever, no loopback or private one unless the operator allowed it, no
environment proxy, no redirect followed). This module is the adapter: it puts Shikomi's policy
into the SDK's hooks and turns the SDK's errors into messages a user can act on (what failed,
where, what to do); llm/openai_answers.py reads what the server answered.

The policy:

- `retries` is the number of attempts in all, not the number of repeats: `retries=3` sends a
  conversation at most three times (the SDK's `max_retries` is one less).
- Timeouts, broken or refused connections and answers 408, 429 and 5xx are worth another
  attempt; the wait is `backoff * 2**attempt`, or the server's numeric `Retry-After` (at most
  30 s). Other 4xx answers are the caller's mistake and fail at once; so do a refused address,
  a secure connection that cannot be set up, and an answer that is not a chat completion (a
  server that sends garbage usually sends it again).
- A redirect is reported with the address it points to (without its query), not followed: a
  POST would come back as a GET and could carry the key to another host.
- Tools go in the request as OpenAI's definitions (as the example holds them); canonical
  messages are sent in OpenAI's shape, without Shikomi's `weight` and `reasoning`.
- The API key is given by the caller (resolved from the operator's list of secrets, never from
  a name a user typed). The SDK reads OPENAI_* variables when it starts, but none of them
  reaches a request: the headers are only this module's and the key it was given.
- `timeout` bounds each socket operation (connecting, each read), not the whole answer.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import openai

from llm import outbound
from llm.interface import Conversation, DetailedBackend, Generation, GenerationError, Tools, tools_for
from llm.openai_answers import NotACompletion, excerpt, location, read_completion, retry_after, status_line
from llm.outbound_http import checked_client
from text import i18n
from text.i18n import gettext as _
from text.i18n import ngettext

log = logging.getLogger(__name__)

# Keys of a canonical message that are Shikomi's own, not OpenAI's: not sent.
_NOT_SENT = frozenset({"weight", "reasoning"})

_E = TypeVar("_E", bound=BaseException)


class _SecureConnectionFailed(openai.OpenAIError):
    """The TLS handshake failed. The SDK passes an OpenAIError on without another attempt."""

    def __init__(self, reason: ssl.SSLError) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Client(openai.OpenAI):
    """The SDK's client, with this backend's policy in the methods its request loop calls (the
    SDK's own extension points, underscored: the loopback tests in
    tests/curation/test_openai_backend.py fail if a new SDK version stops calling one)."""

    url = ""
    backoff = 1.0

    @property
    def default_headers(self) -> dict[str, str | openai.Omit]:
        # Only these (the SDK's Authorization comes from the key it was given). The SDK would add
        # OPENAI_ORG_ID, OPENAI_PROJECT_ID and OPENAI_CUSTOM_HEADERS from the environment, and
        # the machine's platform, to a request for a server the operator may not run.
        return {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "shikomi"}

    def _should_retry(self, response: Any) -> bool:
        # Not 409, nor what a server says in x-should-retry: the statuses the module docstring names.
        return bool(response.status_code in (408, 429) or response.status_code >= 500)

    def _sleep_for_retry(self, *, retries_taken: int, max_retries: int, options: Any, response: Any) -> None:
        delay = None if response is None else retry_after(response.headers)
        if delay is None:
            delay = self.backoff * 2**retries_taken
        failure = "no answer" if response is None else f"answered {status_line(response, self.api_key)}"
        log.warning(
            "%s: %s (attempt %d of %d); trying again in %g s",
            self.url,
            failure,
            retries_taken + 1,
            max_retries + 1,
            delay,
        )
        time.sleep(delay)

    def _send_request(self, request: Any, *, stream: bool, **kwargs: Any) -> Any:
        try:
            return super()._send_request(request, stream=stream, **kwargs)
        except httpx.ConnectError as error:
            if (reason := _cause(error, ssl.SSLError)) is not None:
                raise _SecureConnectionFailed(reason) from error
            raise


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
        if self.key_name and not self.api_key:
            # The connection names a secret that the operator left unset: fail before sending
            # anything rather than ask the server without its key.
            raise GenerationError(
                _(
                    "The API key for %(url)s is the secret %(name)s, which is not set or empty. Ask the "
                    "operator to set it for the web server and the worker."
                )
                % {"url": self.url, "name": self.key_name}
            )
        # The active language belongs to this thread; the workers format their errors in it.
        language = i18n.get_language()
        client = self._client()

        def complete(conversation: Conversation, given: Tools | None) -> Generation:
            with i18n.override(language):
                return self._complete(client, conversation, given, max_new_tokens, temperature)

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations)))
        futures = [
            pool.submit(complete, conversation, given)
            for conversation, given in zip(conversations, offered, strict=True)
        ]
        _close_after(client, futures)
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and (error := future.exception()) is not None:
                    raise error
            return [future.result() for future in futures]
        finally:
            # After a failure, conversations not yet sent are dropped, and the caller does not
            # wait for those in flight (the client closes when the last of them ends).
            pool.shutdown(wait=False, cancel_futures=True)

    def _client(self) -> _Client:
        client = _Client(
            base_url=self.base_url.rstrip("/"),
            api_key=self.api_key,
            max_retries=self.retries - 1,
            timeout=self.timeout,
            http_client=checked_client(self.allowed, timeout=self.timeout, max_connections=self.concurrency),
            # A server that wants no key is asked without one (see _complete).
            _enforce_credentials=False,
        )
        client.url = self.url
        client.backoff = self.backoff
        return client

    def _complete(
        self, client: _Client, conversation: Conversation, tools: Tools | None, max_new_tokens: int, temperature: float
    ) -> Generation:
        # Plain dicts as the example holds them; the SDK's TypedDicts describe the same JSON.
        messages: Any = [{k: v for k, v in message.items() if k not in _NOT_SENT} for message in conversation]
        offered: Any = tools or openai.omit
        try:
            answer = client.chat.completions.with_raw_response.create(
                model=self.model,
                messages=messages,
                max_tokens=max_new_tokens,
                temperature=temperature,
                tools=offered,
                # The SDK wants it said that no Authorization header is meant.
                extra_headers=None if self.api_key else {"Authorization": openai.omit},
            )
        except outbound.OutboundRefused as refusal:
            message = _("The request to %(url)s was not sent.") % {"url": self.url}
            raise GenerationError(f"{message} {refusal}") from None
        except openai.APIStatusError as error:
            raise self._refusal(error.response) from None
        except openai.APITimeoutError:
            seconds = f"{self.timeout:g}"
            raise self._failed(_("the server did not answer within %(seconds)s s") % {"seconds": seconds}) from None
        except openai.APIConnectionError as error:
            raise self._failed(_connection_problem(error)) from None
        except _SecureConnectionFailed as error:
            raise GenerationError(
                _("The request to %(url)s failed: the secure connection could not be set up (%(error)s).")
                % {"url": self.url, "error": error.reason}
            ) from None
        raw = answer.http_response.content
        try:
            return read_completion(raw)
        except NotACompletion as what:
            raise self._garbage(what, raw) from None

    def _failed(self, problem: str) -> GenerationError:
        """A failure the SDK tried again until the last attempt."""
        return GenerationError(
            _sentence(
                ngettext(
                    "The request to %(url)s failed after %(count)d attempt: %(problem)s",
                    "The request to %(url)s failed after %(count)d attempts: %(problem)s",
                    self.retries,
                )
                % {"url": self.url, "count": self.retries, "problem": problem}
            )
        )

    def _refusal(self, response: Any) -> GenerationError:
        """What an answer with an error status means."""
        status = response.status_code
        # The body is the server's, and the server may be a page the user could not read
        # otherwise: only a short status line reaches the user, the body only the debug log.
        log.debug("%s answered %d: %s", self.url, status, excerpt(response.content, self.api_key))
        problem = _("the server answered %(status)s") % {"status": status_line(response, self.api_key)}
        if status in (408, 429) or status >= 500:
            return self._failed(problem)
        hint = ""
        if 300 <= status < 400:
            target = location(response.headers, self.api_key) or _("nowhere")
            hint = _("It redirects to %(location)s; give that address (without /chat/completions) as base_url.") % {
                "location": target
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

    def _garbage(self, what: NotACompletion, raw: bytes) -> GenerationError:
        # Not quoted to the user (see _refusal); operators find the start of it in the debug log.
        log.debug("%s answered something that is not a chat completion: %s", self.url, excerpt(raw, self.api_key))
        return GenerationError(
            _(
                "The request to %(url)s failed: the server answered with something that is not a chat "
                "completion (%(what)s). Check that base_url points at an OpenAI-compatible API "
                "(it usually ends in /v1)."
            )
            % {"url": self.url, "what": what}
        )


def _sentence(text: str) -> str:
    """`text` ending in a full stop, unless it ends in one already (or in a question)."""
    return text if text.endswith((".", "?", "!", "。", "？", "！")) else f"{text}."


def _close_after(client: _Client, futures: list[Future[Generation]]) -> None:
    """Close `client` once every future has ended or been cancelled."""
    left = len(futures)
    lock = threading.Lock()

    def one_ended(_future: Future[Generation]) -> None:
        nonlocal left
        with lock:
            left -= 1
            last = left == 0
        if last:
            client.close()

    for future in futures:
        future.add_done_callback(one_ended)


def _cause(error: BaseException | None, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in the chain that raised `error`, or None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _connection_problem(error: openai.APIConnectionError) -> str:
    """What went wrong with a connection, in the words of the socket error below httpx's."""
    if _cause(error, ConnectionRefusedError) is not None:
        return _("connection refused: is the server running?")
    # Resets, a server that closed the connection without answering, unreachable networks.
    reason: BaseException = _cause(error, OSError) or error.__cause__ or error
    return _("the connection failed: %(error)s") % {"error": str(reason) or type(reason).__name__}
