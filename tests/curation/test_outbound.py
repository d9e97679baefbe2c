"""Outbound requests: which addresses the worker refuses, and that a refused one gets no packet.

No test sends anything beyond 127.0.0.1: the `connects` fixture records every socket connect
and refuses (raises) any that is not to loopback, so a broken check fails a test instead of
reaching the network. Addresses other than loopback are only ever checked, never contacted.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from curation.connections.outbound import check_url, parse_allow_list
from llm import outbound
from llm.interface import GenerationError
from llm.openai_compatible import OpenAICompatibleBackend
from llm.outbound import OutboundRefused
from tests.curation.test_openai_backend import (  # noqa: F401
    FakeServer,
    _Handler,
    _Server,
    backend_for,
    conversation,
    server,
)


@pytest.fixture
def chat(request: pytest.FixtureRequest) -> FakeServer:
    """The chat-completions server of test_openai_backend.py, on 127.0.0.1."""
    return request.getfixturevalue("server")


NEVER = "link-local and cloud metadata addresses are never allowed"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address a socket tried to connect to; anything but loopback raises instead."""
    attempts: list[str] = []
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        attempts.append(address[0])
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise OSError(f"test guard: no packet to {address[0]}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts


@pytest.fixture
def no_loopback(settings: Any) -> None:
    """The production default on PostgreSQL + Redis: no private address allowed."""
    settings.SHIKOMI_OUTBOUND_ALLOW = []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",  # 169.254.169.254 as one decimal number
        "http://0xa9.0xfe.0xa9.0xfe/",  # ... in hex
        "http://0251.0376.0251.0376/",  # ... in octal
        "http://[::ffff:169.254.169.254]/",  # ... inside IPv6 (IPv4-mapped)
        "http://[64:ff9b::a9fe:a9fe]/",  # ... through NAT64
        "http://[fd00:ec2::254]/",  # AWS over IPv6
        "http://100.100.100.200/",  # Alibaba
        "http://169.254.170.2/v2/credentials",  # AWS ECS task credentials
    ],
)
def test_a_cloud_metadata_address_is_refused_even_when_everything_is_allowed(settings: Any, url: str) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = ["0.0.0.0/0", "::/0"]

    with pytest.raises(OutboundRefused, match="it resolves to a cloud metadata address") as raised:
        check_url(url)
    assert NEVER in str(raised.value)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://0.0.0.0:8000/", "an unspecified address"),
        ("http://[::]:8000/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://255.255.255.255/", "a reserved address"),
    ],
)
def test_link_local_unspecified_multicast_and_reserved_addresses_are_never_allowed(
    settings: Any, url: str, kind: str
) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = ["0.0.0.0/0", "::/0"]

    with pytest.raises(OutboundRefused, match=f"it resolves to {kind}"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8000/v1",
        "http://172.16.5.4/",
        "http://192.168.1.10/",
        "http://100.64.0.1/",  # carrier-grade NAT, shared by the provider's customers
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://167772161/",  # 10.0.0.1 as one number
    ],
)
def test_a_private_address_is_refused_unless_the_operator_allowed_it(settings: Any, url: str) -> None:
    with pytest.raises(OutboundRefused, match="a private or internal address, which the operator has not allowed"):
        check_url(url)

    settings.SHIKOMI_OUTBOUND_ALLOW = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"]
    check_url(url)


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/v1", "http://127.0.0.1/", "http://0x7f.1/", "http://2130706433/", "http://[::1]/"]
)
def test_loopback_in_any_spelling_is_refused_when_not_allowed(no_loopback: None, url: str) -> None:
    with pytest.raises(OutboundRefused, match="a loopback address, which the operator has not allowed"):
        check_url(url)


def test_a_host_name_that_does_not_resolve_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def nowhere(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nowhere)
    backend = OpenAICompatibleBackend(base_url="http://gpu-box.invalid:8000/v1", model="m", retries=3)

    with pytest.raises(GenerationError, match="not sent. The host name gpu-box.invalid could not be resolved"):
        backend.generate([conversation("Hi")])


def test_a_public_address_is_allowed(no_loopback: None) -> None:
    # Numeric, so nothing is looked up or sent.
    check_url("https://8.8.8.8/v1")
    check_url("https://[2606:4700:4700::1111]/v1")


def test_a_request_to_the_metadata_service_is_refused_before_any_connection(settings: Any, connects: list[str]) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = ["0.0.0.0/0"]
    backend = OpenAICompatibleBackend(base_url="http://169.254.169.254/v1", model="m", api_key="sk-x", retries=3)

    with pytest.raises(GenerationError) as raised:
        backend.generate([conversation("Hi")])

    assert str(raised.value).startswith(
        "The request to http://169.254.169.254/v1/chat/completions was not sent. Shikomi does not send requests "
        "to 169.254.169.254: it resolves to a cloud metadata address."
    )
    assert connects == []


def test_a_request_to_a_private_address_is_refused_before_any_connection(connects: list[str]) -> None:
    backend = OpenAICompatibleBackend(base_url="http://10.0.0.1:8000/v1", model="m", retries=3)

    with pytest.raises(GenerationError, match="was not sent. .*a private or internal address"):
        backend.generate([conversation("Hi")])
    assert connects == []


def test_a_host_name_that_resolves_to_loopback_gets_no_request_when_loopback_is_not_allowed(
    no_loopback: None, chat: FakeServer, connects: list[str]
) -> None:
    backend = backend_for(chat.url.replace("127.0.0.1", "localhost"))

    with pytest.raises(GenerationError, match="localhost: it resolves to a loopback address"):
        backend.generate([conversation("Hi")])
    assert chat.seen == []
    assert connects == []


def test_loopback_allowed_by_the_allow_list_is_reached(settings: Any, chat: FakeServer) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = ["127.0.0.1/32"]

    assert backend_for(chat.url).generate([conversation("Hi")]) == ["echo: Hi"]


def test_a_host_name_on_the_allow_list_is_reached(no_loopback: None, settings: Any, chat: FakeServer) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = ["LocalHost"]

    assert backend_for(chat.url.replace("127.0.0.1", "localhost")).generate([conversation("Hi")]) == ["echo: Hi"]
    with pytest.raises(GenerationError, match="127.0.0.1: it resolves to a loopback address"):
        backend_for(chat.url).generate([conversation("Hi")])


def test_the_request_goes_to_the_address_that_was_checked_not_to_a_second_lookup(
    chat: FakeServer, connects: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: the first answer passes the check, a second one would point inside.
    port = int(chat.url.split(":")[2].split("/")[0])
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    lookups: list[str] = []

    def rebinding(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    backend = backend_for(f"http://models.example:{port}/v1", retries=1)

    assert backend.generate([conversation("Hi")]) == ["echo: Hi"]
    assert lookups == ["models.example"]
    assert connects == ["127.0.0.1"]
    assert chat.seen[0].headers["Host"] == f"models.example:{port}"


@pytest.fixture
def https_chat(tmp_path: Path) -> Iterator[tuple[FakeServer, Path, list[str]]]:
    """A chat server over HTTPS on 127.0.0.1 with a self-signed certificate for "localhost";
    yields the server, the certificate and the SNI names clients sent."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,return-value]
    fake = FakeServer()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.fake = fake
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"https://localhost:{httpd.server_port}/v1"
    yield fake, cert, names
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_https_checks_the_certificate_and_sends_sni_for_the_host_name_not_the_address(
    https_chat: tuple[FakeServer, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, cert, names = https_chat

    with pytest.raises(GenerationError, match="secure connection could not be set up.*CERTIFICATE_VERIFY_FAILED"):
        backend_for(fake.url, retries=1).generate([conversation("Hi")])
    assert fake.seen == []
    assert "localhost" in names

    # Trusted, the certificate for "localhost" is accepted for that name and refused for the address.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert backend_for(fake.url).generate([conversation("Hi")]) == ["echo: Hi"]
    with pytest.raises(GenerationError, match="CERTIFICATE_VERIFY_FAILED"):
        backend_for(fake.url.replace("localhost", "127.0.0.1"), retries=1).generate([conversation("Hi")])
    assert len(fake.seen) == 1


def test_a_proxy_named_in_the_environment_is_not_used(
    chat: FakeServer, connects: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would resolve the host again on its own side, past the check.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)

    assert backend_for(chat.url).generate([conversation("Hi")]) == ["echo: Hi"]
    assert len(chat.seen) == 1


def test_an_allow_list_entry_that_is_neither_a_network_nor_a_host_name_is_a_configuration_error() -> None:
    assert parse_allow_list(["10.0.0.0/8", " gpu-box.internal ", "", "::1"]) == outbound.AllowList(
        (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")), frozenset({"gpu-box.internal"})
    )
    with pytest.raises(ImproperlyConfigured, match="'10.0.0.0/33' is neither a network"):
        parse_allow_list(["10.0.0.0/33"])
    with pytest.raises(ImproperlyConfigured, match="neither a network"):
        parse_allow_list(["http://gpu-box/"])


@pytest.mark.parametrize(
    ("environment", "allowed"),
    [
        ({}, ["127.0.0.0/8", "::1"]),
        ({"REDIS_URL": "redis://redis:6379/0"}, []),
        (
            {"REDIS_URL": "redis://redis:6379/0", "SHIKOMI_OUTBOUND_ALLOW": "10.1.0.0/16, gpu-box"},
            ["10.1.0.0/16", "gpu-box"],
        ),
        ({"SHIKOMI_OUTBOUND_ALLOW": ""}, []),
    ],
    ids=["single-machine", "with-redis", "set", "set-empty"],
)
def test_loopback_is_allowed_by_default_only_on_a_single_machine(
    tmp_path: Path, environment: dict[str, str], allowed: list[str]
) -> None:
    result = production_settings(tmp_path, environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(allowed)


def test_a_bad_allow_list_entry_stops_the_start(tmp_path: Path) -> None:
    result = production_settings(tmp_path, {"SHIKOMI_OUTBOUND_ALLOW": "10.0.0.0/8,10.0.0.0/33"})
    assert result.returncode != 0
    assert "SHIKOMI_OUTBOUND_ALLOW: '10.0.0.0/33' is neither a network" in result.stderr


def production_settings(tmp_path: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """config.settings read in a fresh process, as `manage.py` would, printing the allow-list."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SHIKOMI_OUTBOUND_ALLOW")}
    env |= {"SHIKOMI_DATA_DIR": str(tmp_path), "SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "config.settings"}
    code = "from django.conf import settings; print(settings.SHIKOMI_OUTBOUND_ALLOW)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env | environment,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )
