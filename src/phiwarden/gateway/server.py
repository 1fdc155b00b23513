"""Running the gateway: uvicorn with graceful shutdown (in-flight streams finish first)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from phiwarden.gateway.app import POLICY_ENV


def serve(
    policy_path: Path | None,
    *,
    host: str,
    port: int,
    workers: int,
    graceful_timeout: float,
    log_level: str = "info",
    max_body: int | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let in-flight requests and streams finish
    (up to `graceful_timeout` seconds) and close the audit trail."""
    if policy_path is not None:
        os.environ[POLICY_ENV] = str(policy_path.resolve())
    uvicorn.run(
        "phiwarden.gateway.app:app_from_environment",
        factory=True,
        http=http_protocol(),
        loop=event_loop(),
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        timeout_graceful_shutdown=int(graceful_timeout) if graceful_timeout else None,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        h11_max_incomplete_event_size=max_body,
    )


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """HTTP/1.1 (h11) with TCP_NODELAY on every connection.

    asyncio sets TCP_NODELAY only on sockets created with IPPROTO_TCP, which uvicorn's listening
    sockets are not; without it, a response written as headers then body waits for the client's
    delayed ACK (40 ms on Linux) on every request after the first few of a keep-alive connection.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _nodelay(transport)
        super().connection_made(transport)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional: h11 (pure Python) serves instead
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """HTTP/1.1 (httptools, C) with TCP_NODELAY on every connection."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _nodelay(transport)
            super().connection_made(transport)


def http_protocol() -> type[asyncio.Protocol]:
    """The fastest HTTP/1.1 parser installed (httptools, else h11), with TCP_NODELAY. Module-level
    classes: worker processes receive the configuration pickled."""
    return NoDelayHttpToolsProtocol if HttpToolsProtocol is not None else NoDelayH11Protocol


def event_loop() -> str:
    """uvloop where it is installed (Linux, macOS), else asyncio."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
