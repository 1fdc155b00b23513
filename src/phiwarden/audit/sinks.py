"""Transports to SIEMs and witnesses: files, syslog over UDP/TCP/TLS, Splunk HEC.

Forwarding hands a transport batches with `write` and asks `delivered` how many of them, oldest
first, have since been delivered, so the next batch can be rendered while the last one settles;
`send` is both at once for one-off callers (export, witnesses). Delivered means, per transport:
- file: written and fsynced;
- syslog UDP: handed to the network (UDP has no acknowledgement; prefer TCP or TLS);
- syslog TCP/TLS: the receiver's TCP stack acknowledged every byte of the batch (Linux SIOCOUTQ
  down to the batch's end; for TLS, the socket under it) and the connection was still open
  `CLOSE_GRACE` seconds after that; or the receiver closed the connection cleanly (a FIN, no reset)
  after acknowledging it: a receiver that closes with bytes unread makes its kernel reset the
  connection instead, so everything it acknowledged before a clean close, it read. Syslog has no
  application acknowledgement (RFC 6587/5425): a receiver that crashes after its kernel took the
  bytes and before it read them loses them, and so does one that reads them and drops them;
- Splunk HEC: HTTP 200 with code 0, and with `ack` the indexer acknowledgement for the batch.
Anything else raises `SinkError`: every batch written and not yet delivered is then undelivered,
and the caller sends it again (receivers see duplicates, never gaps) — except the oldest
`ConnectionLost.delivered` of them.
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

from phiwarden.audit.errors import AuditConfigError, SinkError

ACK_POLL_SECONDS = 0.2
# How long a TCP receiver must keep the connection open after acknowledging a batch: a receiver that
# reads a few messages and closes, or dies with unread data, resets the connection within this time
# on any network with round trips well below it.
CLOSE_GRACE = 0.05
STREAM_POLL_SECONDS = 0.005
# The largest UDP payload over IPv4 (65,535 minus the 8-byte UDP and 20-byte IP headers).
UDP_MAX_PAYLOAD = 65_507
# Linux TCP states (TCP_INFO): open, and open after the receiver's FIN; a reset leaves TCP_CLOSE.
TCP_ESTABLISHED, TCP_CLOSE_WAIT = 1, 8


class ConnectionLost(SinkError):
    """The connection failed or was closed with batches in flight: the oldest `delivered` of them were
    delivered before that, the other `lost` were not (to be sent again)."""

    def __init__(self, message: str, *, delivered: int, lost: int) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.lost = lost


class Transport(Protocol):
    # The largest message this transport can carry at all (None: no limit of its own).
    max_message: int | None

    def write(self, messages: Sequence[bytes]) -> None:
        """Hand one batch over; it may still be in flight when this returns."""

    def delivered(self, *, wait: bool = False) -> int:
        """How many batches written since the last call are now delivered, oldest first.

        With `wait`, block until at least one is (when any is in flight). Raises `SinkError` when
        the batches in flight are lost; none of them counts as delivered then, but the oldest
        `delivered` of a `ConnectionLost` (`write` may raise it too).
        """

    def send(self, messages: Sequence[bytes]) -> None:
        """Write one batch and return once it is delivered."""

    def close(self) -> None: ...


class _Immediate(ABC):
    """A transport whose `send` returns only once the batch is delivered."""

    max_message: int | None = None
    _done = 0

    @abstractmethod
    def send(self, messages: Sequence[bytes]) -> None: ...

    def write(self, messages: Sequence[bytes]) -> None:
        self.send(messages)
        self._done += 1

    def delivered(self, *, wait: bool = False) -> int:
        done, self._done = self._done, 0
        return done

    def close(self) -> None:
        self._done = 0


class FileTransport(_Immediate):
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


@dataclass(slots=True)
class _InFlight:
    end: int  # offset of the batch's last byte + 1 in the connection's byte stream
    acked_at: float | None = None  # when the receiver's TCP stack was first seen to hold all of it


class SyslogTransport:
    """RFC 5424 messages over UDP (one per datagram), or TCP/TLS with RFC 6587 octet counting."""

    def __init__(self, url: str, *, ca_file: str | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("syslog+udp", "syslog+tcp", "syslog+tls") or not parts.hostname:
            raise AuditConfigError(f"not a syslog URL: {url!r} (syslog+udp|tcp|tls://host:port)")
        self.protocol = parts.scheme.removeprefix("syslog+")
        self.host = parts.hostname
        self.port = parts.port or {"udp": 514, "tcp": 514, "tls": 6514}[self.protocol]
        self.ca_file = ca_file
        self.timeout = timeout
        self.max_message: int | None = UDP_MAX_PAYLOAD if self.protocol == "udp" else None
        self._sock: socket.socket | None = None
        self._written = 0
        self._in_flight: deque[_InFlight] = deque()
        # Batches settled as delivered and not yet reported by `delivered`.
        self._ready = 0

    def _connect(self) -> socket.socket:
        if self._sock is not None and (self._in_flight or not self._idle_connection_closed(self._sock)):
            return self._sock
        self.close()
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
            raise SinkError(f"{self._name()}: cannot connect: {exc}") from None
        self._sock = sock
        return sock

    def _idle_connection_closed(self, sock: socket.socket) -> bool:
        # Receivers drop idle connections; nothing is in flight, so reconnecting loses nothing.
        if self.protocol == "udp":
            return False
        try:
            return _peer_closed(sock)
        except (OSError, ssl.SSLError):
            return True

    def write(self, messages: Sequence[bytes]) -> None:
        if self._in_flight and self.protocol != "udp":
            # Nothing goes to a receiver that has closed: its kernel would answer with a reset, and
            # what it read before closing could not be told from what it never got.
            self._settle(time.monotonic())
        sock = self._connect()
        try:
            if self.protocol == "udp":
                for message in messages:
                    sock.send(message)
            else:
                data = b"".join(str(len(m)).encode() + b" " + m for m in messages)
                sock.sendall(data)
                self._written += len(data)
        except (OSError, ssl.SSLError) as exc:
            self._fail(str(exc))
        self._in_flight.append(_InFlight(self._written))

    def delivered(self, *, wait: bool = False) -> int:
        if self.protocol == "udp":
            count = len(self._in_flight)
            self._in_flight.clear()
            return count
        deadline = time.monotonic() + self.timeout
        while True:
            now = time.monotonic()
            self._settle(now)
            count, self._ready = self._ready, 0
            if count or not wait or not self._in_flight:
                return count
            if now >= deadline:
                self._fail(f"the receiver did not acknowledge what was sent within {self.timeout:g}s")
            time.sleep(STREAM_POLL_SECONDS)

    def _settle(self, now: float) -> None:
        """Settle batches the receiver's TCP stack holds: delivered once unreset CLOSE_GRACE later,
        or at once when the receiver closed cleanly after acknowledging them."""
        if not self._in_flight or self._sock is None:
            return
        sock = self._sock
        try:
            # The state on both sides of the count: open after it, no reset had purged the queue;
            # closed before it, the count has every acknowledgement the receiver made (a FIN that
            # came during the count: count again).
            before, unacked, after = _tcp_state(sock), _unacknowledged(sock), _tcp_state(sock)
            if before != after == TCP_CLOSE_WAIT:
                before, unacked, after = after, _unacknowledged(sock), _tcp_state(sock)
            # Off Linux a FIN is seen by reading (a reset raises there); on Linux by the state.
            closed = after == TCP_CLOSE_WAIT if after is not None else _peer_closed(sock)
        except (OSError, ssl.SSLError) as exc:
            self._fail(str(exc))
        if after not in (None, TCP_ESTABLISHED, TCP_CLOSE_WAIT):
            self._fail("the receiver reset the connection")
        acked = self._written - unacked if unacked is not None else self._written
        for batch in self._in_flight:
            if batch.end > acked:
                break
            if batch.acked_at is None:
                batch.acked_at = now
        if closed:
            # A clean close (Linux): what was acknowledged before it was read.
            while after is not None and self._in_flight and self._in_flight[0].end <= acked:
                self._in_flight.popleft()
                self._ready += 1
            self._fail("the receiver closed the connection")
        # Checked after `now` was taken: the connection was open CLOSE_GRACE after each ack below.
        while self._in_flight and (acked_at := self._in_flight[0].acked_at) is not None:
            if acked_at + CLOSE_GRACE > now:
                break
            self._in_flight.popleft()
            self._ready += 1

    def send(self, messages: Sequence[bytes]) -> None:
        self.write(messages)
        while self._in_flight:
            try:
                self.delivered(wait=True)
            except ConnectionLost as exc:
                if exc.lost:
                    raise
        self._ready = 0

    def _fail(self, reason: str) -> NoReturn:
        delivered, lost = self._ready, len(self._in_flight)
        self.close()
        suffix = f" ({lost} undelivered batch(es) will be sent again)" if lost else ""
        raise ConnectionLost(f"{self._name()}: {reason}{suffix}", delivered=delivered, lost=lost)

    def _name(self) -> str:
        return f"syslog {self.protocol}://{self.host}:{self.port}"

    def close(self) -> None:
        self._in_flight.clear()
        self._written = 0
        self._ready = 0
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes written to a TCP socket that the receiver has not acknowledged; None if the OS cannot say.

    Linux's SIOCOUTQ counts unsent plus sent-but-unacknowledged bytes; on a TLS socket the file
    descriptor is the TCP socket under it, so the count includes the TLS records' own bytes.
    """
    if sys.platform != "linux":
        return None
    import fcntl
    import termios

    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


def _tcp_state(sock: socket.socket) -> int | None:
    """The TCP state of a socket (Linux TCP_INFO's first byte); None if the OS cannot say."""
    if sys.platform != "linux":
        return None
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def _peer_closed(sock: socket.socket) -> bool:
    """True if the receiver closed its side (FIN); a reset raises `ConnectionResetError`."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        try:
            # A TLS socket cannot peek; a syslog receiver sends no application data to consume.
            data = sock.recv(1) if isinstance(sock, ssl.SSLSocket) else sock.recv(1, socket.MSG_PEEK)
        finally:
            sock.settimeout(timeout)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    return data == b""


class HecTransport(_Immediate):
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
