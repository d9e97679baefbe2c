"""OpenAICompatibleBackend against a small chat-completions server run inside the test.

Each test sets how the server answers (`server.respond`); the server records every request it
sees. Backoff waits are recorded instead of slept (the `sleeps` fixture), so retries cost no time.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from curation.connections.outbound import allow_list
from llm import openai_compatible as openai_backend
from llm.interface import GenerationBackend, GenerationError
from llm.openai_compatible import OpenAICompatibleBackend

KEY_NAME = "SHIKOMI_SECRET_TEST_CHAT"
KEY = "sk-test-0123456789abcdef"

Answer = tuple[int, dict[str, str], bytes]


def completion(content: Any) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
    ).encode()


def echo(number: int, body: dict[str, Any]) -> Answer:
    return 200, {}, completion(f"  echo: {body['messages'][-1]['content']}\n")


def conversation(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]


@dataclass
class Seen:
    path: str
    # As the request's own header block: names are case-insensitive, as in HTTP.
    headers: Message
    body: dict[str, Any]


@dataclass
class FakeServer:
    url: str = ""
    respond: Callable[[int, dict[str, Any]], Answer] = echo
    # The reason phrase on the status line; None sends the standard one.
    reason: str | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set at teardown, so handlers that hold an answer back (the timeout test) end promptly.
    release: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up before the answer (the timeout test) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with fake.lock:
            fake.seen.append(Seen(self.path, self.headers, body))
            number = len(fake.seen)
        status, headers, payload = fake.respond(number, body)
        self.send_response(status, fake.reason)
        headers = {"Content-Type": "application/json", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.fake = fake
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_port}/v1"
    yield fake
    fake.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits the backend asked for, in order; nothing actually sleeps."""
    waits: list[float] = []
    monkeypatch.setattr(openai_backend, "time", SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment (the backend ignores them now, see test_outbound.py;
    tests/generation/conftest.py imports this fixture too)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def backend_for(url: str, **options: Any) -> OpenAICompatibleBackend:
    settings: dict[str, Any] = {"model": "tiny-chat", "timeout": 2.0, "retries": 3, "backoff": 0.01}
    return OpenAICompatibleBackend(base_url=url, allowed=allow_list(), **(settings | options))


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_it_answers_each_conversation_in_order_while_sending_them_concurrently(server: FakeServer) -> None:
    # The server answers only when three requests are in flight, later ones first; a backend
    # that sent one at a time would break the barrier and get 500s.
    barrier = threading.Barrier(3, timeout=2)
    in_flight = most = 0

    def respond(number: int, body: dict[str, Any]) -> Answer:
        nonlocal in_flight, most
        with server.lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            barrier.wait()
            server.release.wait(0.02 * (3 - number % 3))
            return echo(number, body)
        except threading.BrokenBarrierError:
            return 500, {}, b"not three at a time"
        finally:
            with server.lock:
                in_flight -= 1

    server.respond = respond
    backend = backend_for(server.url, concurrency=3, retries=1)

    replies = backend.generate([conversation(f"question {i}") for i in range(6)])

    assert replies == [f"echo: question {i}" for i in range(6)]
    assert most == 3


def test_the_request_carries_model_messages_max_tokens_and_temperature(server: FakeServer) -> None:
    backend = backend_for(server.url + "/")

    backend.generate([conversation("Hi")], max_new_tokens=17, temperature=0.5)

    [seen] = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == {"model": "tiny-chat", "messages": conversation("Hi"), "max_tokens": 17, "temperature": 0.5}
    assert "Authorization" not in seen.headers


def test_the_key_it_is_given_is_sent_and_the_environment_is_never_read(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A variable named like the secret holds something else: the backend must send what it was given.
    monkeypatch.setenv(KEY_NAME, "sk-from-the-environment")
    backend = backend_for(server.url, api_key=KEY, key_name=KEY_NAME)

    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"


def test_an_empty_secret_is_refused_before_any_request(server: FakeServer) -> None:
    backend = backend_for(server.url, api_key="", key_name=KEY_NAME)

    with pytest.raises(GenerationError, match=f"the secret {KEY_NAME}, which is not set or empty"):
        backend.generate([conversation("Hi")])
    assert server.seen == []


def test_a_refused_key_is_not_retried_and_never_shown(server: FakeServer, sleeps: list[float]) -> None:
    server.respond = lambda number, body: (401, {}, json.dumps({"error": f"Incorrect API key: {KEY}"}).encode())
    backend = backend_for(server.url, api_key=KEY, key_name=KEY_NAME)

    with pytest.raises(GenerationError) as raised:
        backend.generate([conversation("Hi")])

    message = str(raised.value)
    assert "answered 401 Unauthorized." in message
    assert f"Check the API key in the secret {KEY_NAME}." in message
    assert KEY not in message
    assert "Incorrect" not in message
    assert len(server.seen) == 1
    assert sleeps == []


def test_a_server_that_does_not_answer_in_time_fails_after_every_attempt(server: FakeServer) -> None:
    def respond(number: int, body: dict[str, Any]) -> Answer:
        server.release.wait(3)
        return echo(number, body)

    server.respond = respond
    backend = backend_for(server.url, timeout=0.3, retries=2)

    with pytest.raises(GenerationError, match=r"failed after 2 attempts: the server did not answer within 0\.3 s"):
        backend.generate([conversation("Hi")])
    assert len(server.seen) == 2


def test_a_server_error_followed_by_an_answer_is_retried(server: FakeServer, sleeps: list[float]) -> None:
    server.respond = lambda number, body: (500, {}, b"warming up") if number == 1 else echo(number, body)
    backend = backend_for(server.url)

    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]
    assert len(server.seen) == 2
    assert sleeps == [0.01]


def test_a_server_that_always_fails_is_tried_retries_times_with_growing_waits(
    server: FakeServer, sleeps: list[float]
) -> None:
    server.respond = lambda number, body: (500, {}, b"E" * 150 + b"F" * 150)
    backend = backend_for(server.url, retries=3)

    with pytest.raises(
        GenerationError, match=r"failed after 3 attempts: the server answered 500 Internal Server Error\.$"
    ) as raised:
        backend.generate([conversation("Hi")])

    assert "EEE" not in str(raised.value)
    assert server.url + "/chat/completions" in str(raised.value)
    assert len(server.seen) == 3
    assert sleeps == [0.01, 0.02]


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("0", 0.0), ("2.5", 2.5), ("120", 30.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.01)],
    ids=["zero", "seconds", "capped", "date-ignored"],
)
def test_retry_after_is_honoured_up_to_thirty_seconds(
    server: FakeServer, sleeps: list[float], retry_after: str, wait: float
) -> None:
    server.respond = lambda number, body: (
        (429, {"Retry-After": retry_after}, b"slow down") if number == 1 else echo(number, body)
    )
    backend = backend_for(server.url)

    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]
    assert sleeps == [wait]


def test_retry_after_of_zero_really_retries_at_once(server: FakeServer) -> None:
    server.respond = lambda number, body: (
        (429, {"Retry-After": "0"}, b"slow down") if number == 1 else echo(number, body)
    )
    backend = backend_for(server.url, backoff=5.0)
    started = time.monotonic()

    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]
    assert time.monotonic() - started < 2
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"<html><body>Bad gateway</body></html>", "not JSON"),
        (b'{"object": "list", "data": []}', "no choices"),
        (b'{"choices": []}', "no choices"),
        (b"[1, 2]", "no choices"),
        (completion(None), "is not text"),
    ],
    ids=["html", "not-a-completion", "no-choices", "a-list", "null-content"],
)
def test_an_answer_that_is_not_a_chat_completion_fails_at_once(
    server: FakeServer, sleeps: list[float], payload: bytes, what: str
) -> None:
    server.respond = lambda number, body: (200, {}, payload)
    backend = backend_for(server.url, retries=3)

    with pytest.raises(GenerationError, match=f"not a chat completion \\([^)]*{what}") as raised:
        backend.generate([conversation("Hi")])

    # The answer itself is not quoted (an internal page must not be readable through the worker).
    assert payload.decode()[:12] not in str(raised.value)
    assert len(server.seen) == 1
    assert sleeps == []


def test_a_redirect_is_not_followed(server: FakeServer) -> None:
    # urllib would follow a 302 as a GET, carrying the Authorization header along.
    moved = server.url + "/moved"
    server.respond = lambda number, body: (302, {"Location": moved + "?token=abc"}, b"")
    backend = backend_for(server.url, api_key=KEY, key_name=KEY_NAME)

    with pytest.raises(GenerationError, match=f"answered 302 Found. It redirects to {moved};") as raised:
        backend.generate([conversation("Hi")])
    assert "token=abc" not in str(raised.value)
    assert len(server.seen) == 1


INTERNAL_PAGE = (
    b"<html><title>Grafana</title><body>DATABASE_URL=postgres://shikomi:hunter2@db/shikomi "
    b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG</body></html>"
)


@pytest.mark.parametrize("status", [200, 400, 404, 500])
def test_the_remote_body_is_never_echoed_in_the_error(server: FakeServer, status: int) -> None:
    server.respond = lambda number, body: (status, {"Content-Type": "text/html"}, INTERNAL_PAGE)
    backend = backend_for(server.url, retries=1)

    with pytest.raises(GenerationError) as raised:
        backend.generate([conversation("Hi")])

    message = str(raised.value)
    assert server.url + "/chat/completions" in message
    for leaked in ("Grafana", "hunter2", "wJalrXUtnFEMI", "DATABASE_URL", "<html"):
        assert leaked not in message


def test_an_openai_error_shows_its_code_but_not_its_message(server: FakeServer) -> None:
    error = {"message": "The model `secret-internal-model` does not exist", "type": "invalid_request_error"}
    server.respond = lambda number, body: (404, {}, json.dumps({"error": error | {"code": "model_not_found"}}).encode())
    backend = backend_for(server.url)

    with pytest.raises(GenerationError) as raised:
        backend.generate([conversation("Hi")])

    message = str(raised.value)
    assert "the server answered 404 Not Found (model_not_found)." in message
    assert "Check that base_url ends where the API starts" in message
    assert "secret-internal-model" not in message


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("Bad Request: token=" + "x" * 60, "400 Bad Request: token=" + "x" * 21 + "."),
        ("Erreur \u00e9trange", "400."),
    ],
    ids=["long", "not-ascii"],
)
def test_the_reason_phrase_is_short_and_printable(server: FakeServer, reason: str, shown: str) -> None:
    server.reason = reason
    server.respond = lambda number, body: (400, {}, json.dumps({"error": {"code": "has spaces, not a code"}}).encode())
    backend = backend_for(server.url)

    with pytest.raises(GenerationError) as raised:
        backend.generate([conversation("Hi")])

    assert f"the server answered {shown}" in str(raised.value)
    assert "has spaces" not in str(raised.value)


def test_a_closed_port_asks_whether_the_server_is_running(sleeps: list[float]) -> None:
    backend = backend_for(closed_port_url(), retries=2)

    with pytest.raises(GenerationError, match=r"failed after 2 attempts: connection refused: is the server running\?"):
        backend.generate([conversation("Hi")])
    assert sleeps == [0.01]


def test_it_is_a_generation_backend_named_for_its_model_and_host() -> None:
    backend = OpenAICompatibleBackend(base_url="http://gpu-box:8000/v1/", model="qwen2.5-7b")

    assert isinstance(backend, GenerationBackend)
    assert backend.name == "openai:qwen2.5-7b@gpu-box:8000"
    assert backend.url == "http://gpu-box:8000/v1/chat/completions"
    # Nothing to send, so nothing is sent to a server that does not exist.
    assert backend.generate([]) == []


@pytest.mark.parametrize(
    ("base_url", "complaint"),
    [
        ("localhost:8000/v1", "not an http:// or https:// address"),
        ("ftp://gpu-box/v1", "not an http:// or https:// address"),
        ("http:///v1", "not an http:// or https:// address"),
        ("http://gpu-box:eighty/v1", "port that is not a number"),
        ("https://user:secret@gpu-box/v1", "must not hold a user name or password"),
        ("https://gpu-box/v1?api-version=1", "must not have a query"),
    ],
)
def test_a_bad_base_url_is_refused(base_url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        OpenAICompatibleBackend(base_url=base_url, model="qwen")


@pytest.mark.parametrize("option", [{"retries": 0}, {"concurrency": 0}, {"timeout": 0}, {"backoff": -1}])
def test_settings_out_of_range_are_refused(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(option))):
        OpenAICompatibleBackend(base_url="http://gpu-box:8000/v1", model="qwen", **option)
