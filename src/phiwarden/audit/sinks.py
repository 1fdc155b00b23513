"""Transports to SIEMs and witnesses: files, syslog over UDP/TCP/TLS, Splunk HEC.

`send` returns only once the destination has taken the batch as far as its protocol can tell:
- file: written and fsynced;
- syslog UDP: handed to the network (UDP has no acknowledgement; prefer TCP or TLS);
- syslog TCP/TLS: written with RFC 6587 octet counting, and the peer has not closed the connection;
- Splunk HEC: HTTP 200 with code 0, and with `ack` the indexer acknowledgement for the batch.
Anything else raises `SinkError`, and the caller keeps the batch to send again.
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from phiwarden.audit.errors import AuditConfigError, SinkError

ACK_POLL_SECONDS = 0.2


class Transport(Protocol):
    def send(self, messages: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class FileTransport:
    """Appends one message per line; `-` is standard output."""

    def __init__(self, target: str) -> None:
        self.path = None if target == "-" else Path(target)

    def send(self, messages: Sequence[bytes]) -> None:
        data = b"".join(m + b"\n" for m in messages)
        if self.path is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        return None


class SyslogTransport:
    def __init__(self, url: str, *, ca_file: str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("syslog+udp", "syslog+tcp", "syslog+tls") or not parts.hostname:
            raise AuditConfigError(f"not a syslog URL: {url!r} (syslog+udp|tcp|tls://host:port)")
        self.protocol = parts.scheme.removeprefix("syslog+")
        self.host = parts.hostname
        self.port = parts.port or {"udp": 514, "tcp": 514, "tls": 6514}[self.protocol]
        self.ca_file = ca_file
        self.timeout = timeout
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            if self.protocol == "udp":
                sock = socket.socket(
                    socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
                )
                sock.connect((self.host, self.port))
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                if self.protocol == "tls":
                    context = ssl.create_default_context(cafile=self.ca_file)
                    sock = context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.timeout)
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(
                f"syslog {self.protocol}://{self.host}:{self.port}: cannot connect: {exc}"
            ) from None
        self._sock = sock
        return sock

    def send(self, messages: Sequence[bytes]) -> None:
        sock = self._connect()
        try:
            if self.protocol == "udp":
                for message in messages:
                    sock.send(message)
                return
            sock.sendall(b"".join(str(len(m)).encode() + b" " + m for m in messages))
            if _peer_closed(sock):
                raise OSError("the receiver closed the connection")
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise SinkError(f"syslog {self.protocol}://{self.host}:{self.port}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _peer_closed(sock: socket.socket) -> bool:
    """True if the receiver has closed its side: what we just wrote may never be read."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        sock.setblocking(False)
        try:
            data = sock.recv(1) if isinstance(sock, ssl.SSLSocket) else sock.recv(1, socket.MSG_PEEK)
        finally:
            sock.setblocking(True)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    return data == b""


class HecTransport:
    """Splunk HTTP Event Collector: one POST per batch (events concatenated), token from the environment."""

    def __init__(
        self, url: str, *, token: str, ack: bool = False, ca_file: str | None = None, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AuditConfigError(f"not an HEC URL: {url!r}")
        path = parts.path.rstrip("/") or "/services/collector/event"
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.url = self.base + path
        self.token = token
        self.ack = ack
        self.timeout = timeout
        self.channel = str(uuid.uuid4())
        self._context = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None

    def send(self, messages: Sequence[bytes]) -> None:
        reply = self._post(self.url, b"\n".join(messages))
        if reply.get("code") != 0:
            raise SinkError(f"HEC {self.url}: {reply.get('text', 'rejected')} (code {reply.get('code')})")
        if self.ack:
            ack_id = reply.get("ackId")
            if not isinstance(ack_id, int):
                raise SinkError(f"HEC {self.url}: indexer acknowledgement is not enabled on this token")
            self._wait_for_ack(ack_id)

    def _wait_for_ack(self, ack_id: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._post(
                f"{self.base}/services/collector/ack?channel={self.channel}",
                json.dumps({"acks": [ack_id]}).encode(),
            )
            if reply.get("acks", {}).get(str(ack_id)) is True:
                return
            if time.monotonic() > deadline:
                raise SinkError(f"HEC {self.url}: batch {ack_id} not acknowledged within {self.timeout:g}s")
            time.sleep(ACK_POLL_SECONDS)

    def _post(self, url: str, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Splunk {self.token}",
                "Content-Type": "application/json",
                "X-Splunk-Request-Channel": self.channel,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            raise SinkError(f"HEC {url}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SinkError(f"HEC {url}: {getattr(exc, 'reason', exc)}") from None
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            raise SinkError(f"HEC {url}: the reply is not JSON") from None
        if not isinstance(parsed, dict):
            raise SinkError(f"HEC {url}: unexpected reply")
        return parsed

    def close(self) -> None:
        return None
