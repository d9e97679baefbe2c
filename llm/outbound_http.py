"""An httpx client whose every connection goes only where llm/outbound.py allows.

The openai SDK (and anything else built on httpx) takes such a client, so the outbound guard
sits under the library instead of beside it:

- Each new connection resolves its host once, checks every address (`outbound.checked_addresses`)
  and connects to those addresses only; a refused host raises `outbound.OutboundRefused` before
  any packet reaches it. This holds for every attempt the SDK makes and every host a request
  could reach, since httpx opens all its connections through here.
- HTTPS wraps that socket with the host name, so SNI and the certificate check stay on the name
  (trusted as the system trusts: `ssl.create_default_context()`, as urllib did before).
- Redirects are not followed (a POST would come back as a GET, and the key could travel to
  another host), and proxies from the environment are not used (a proxy would resolve the name
  again, on its own side).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

# httpcore's own socket stream (reading, writing, TLS); it exports no public way to wrap a
# socket that was connected elsewhere.
from httpcore._backends.sync import SyncStream

from llm import outbound


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting to checked addresses instead of a fresh lookup."""

    def __init__(self, allowed: outbound.AllowList) -> None:
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = outbound.checked_addresses(host, port, self.allowed)
        source = None if local_address is None else (local_address, 0)
        # Mapped as httpcore maps its own connection failures, so callers see httpx's errors.
        try:
            sock = outbound.connect(addresses, timeout, source)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(str(error)) from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return SyncStream(sock)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections go through `_CheckedBackend`."""

    def __init__(self, allowed: outbound.AllowList, *, max_connections: int) -> None:
        context = ssl.create_default_context()
        super().__init__(verify=context, trust_env=False)
        # httpx takes no network backend, so its pool is replaced by the same pool with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(allowed),
        )


def checked_client(allowed: outbound.AllowList, *, timeout: float, max_connections: int) -> httpx.Client:
    """A client that connects only to addresses `allowed` permits, follows no redirect and uses
    no proxy; `timeout` bounds each socket operation (connecting, each read, each write)."""
    return httpx.Client(
        transport=CheckedTransport(allowed, max_connections=max_connections),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
