"""Forwarding is at least once per sink, against real receivers that misbehave.

Every test checks the two promises by event uid: each event reaches the receiver's application at
least once, and a sink's cursor never passes an event the receiver did not read — except the one
case the README states: a receiver whose kernel acknowledged the bytes and that died before reading
them (`test_receiver_dying_after_its_kernel_acknowledged_loses_the_batch`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import phiwarden.audit.forward as forwarding
from phiwarden.audit import AuditLog
from phiwarden.audit.errors import AuditError, SinkError
from phiwarden.audit.forward import SinkForwarder, forward, forward_all, open_transport
from phiwarden.audit.log import open_store, store_url
from phiwarden.audit.sinks import CLOSE_GRACE, SyslogTransport
from phiwarden.audit.store import AuditStore
from phiwarden.audit.witness import open_witness
from phiwarden.policy.audit import AuditSettings, SinkSettings

from .conftest import fill, make_event

# A plan step for one connection: ("read",) until EOF; ("close_after", n, delay) closes after reading
# n messages and waiting `delay`; ("hang", seconds) never reads and closes after `seconds`.
Step = tuple[Any, ...]


class Receiver:
    """A syslog TCP/TLS receiver recording the uid of every message its application read: it reads
    exactly the messages it keeps (over TLS, whole records: it keeps every message in them)."""

    def __init__(
        self, plan: Sequence[Step], *, context: ssl.SSLContext | None = None, rcvbuf: int | None = None
    ) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        if rcvbuf is not None:
            # Accepted sockets inherit it: a small buffer that fills makes the kernel stop acknowledging.
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.plan, self.context = list(plan), context
        self.messages: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            step = self.plan[min(self.connections, len(self.plan) - 1)]
            self.connections += 1
            if self.context is not None:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            # Short reads: the receiver notices `close` while the client keeps the connection open.
            conn.settimeout(0.1)
            with conn:
                self._handle(conn, step)

    def _handle(self, conn: socket.socket, step: Step) -> None:
        if step[0] == "hang":
            self._stop.wait(step[1])
            return
        limit = step[1] if step[0] == "close_after" else None
        read = 0
        while (limit is None or read < limit) and (message := self._message(conn)) is not None:
            self.messages.append(message)
            read += 1
        if isinstance(conn, ssl.SSLSocket) and conn.pending():
            # TLS reads whole records off the connection: what it decrypted was read, and is kept.
            buffer = conn.recv(conn.pending())
            while (space := buffer.find(b" ")) > 0 and len(buffer) >= space + 1 + int(buffer[:space]):
                length = int(buffer[:space])
                self.messages.append(buffer[space + 1 : space + 1 + length])
                buffer = buffer[space + 1 + length :]
        if limit is not None:
            self._stop.wait(step[2])

    def _message(self, conn: socket.socket) -> bytes | None:
        """The next message, read off the connection exactly (no byte of the next one): a receiver
        that stops after some messages leaves the rest unread, and its close is then a reset."""
        prefix = b""
        while not prefix.endswith(b" "):
            byte = self._read(conn, 1)
            if byte is None:
                return None
            prefix += byte
        return self._read(conn, int(prefix[:-1]))

    def _read(self, conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(size - len(data))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    @property
    def uids(self) -> list[str]:
        return [_uid(m) for m in self.messages]

    def url(self, scheme: str = "tcp") -> str:
        host = "localhost" if scheme == "tls" else "127.0.0.1"
        return f"syslog+{scheme}://{host}:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.server.close()


def _uid(message: bytes) -> str:
    """metadata.uid of an RFC 5424 message carrying an OCSF event (full or truncated)."""
    uid: str = json.loads(message.partition(b"\xef\xbb\xbf")[2])["metadata"]["uid"]
    return uid


def _uids(store: AuditStore) -> list[str]:
    """The uid of every stored event, by sequence number (index 0 is sequence 1)."""
    return [json.loads(r.record)["event"]["metadata"]["uid"] for r in store.records()]


def assert_at_least_once(store: AuditStore, sink: str, received: Sequence[str], *, complete: bool) -> None:
    """Nothing under the cursor is missing at the receiver; with `complete`, nothing at all is."""
    uids, got = _uids(store), set(received)
    cursor = store.cursor(sink)
    assert [seq for seq in range(1, cursor + 1) if uids[seq - 1] not in got] == []
    if complete:
        assert cursor == len(uids)
        assert set(uids) <= got


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    opened = AuditLog.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarding, "INITIAL_BACKOFF", 0.01)


def _no_wait(_: float) -> None:
    return None


def _tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A throwaway CA and a localhost certificate it signed: (the receiver's context, the CA file)."""
    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("phiwarden test CA", ca_key, "phiwarden test CA", ca_key, ca=True)
    server = certificate("localhost", server_key, "phiwarden test CA", ca_key, ca=False)
    tmp_path.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file


def _receiver(
    tmp_path: Path, scheme: str, plan: Sequence[Step], **options: Any
) -> tuple[Receiver, str | None]:
    context, ca_file = _tls(tmp_path) if scheme == "tls" else (None, None)
    return Receiver(plan, context=context, **options), str(ca_file) if ca_file else None


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_receiver_closing_after_some_messages_gets_the_rest_on_the_next_connection(
    log: AuditLog, tmp_path: Path, scheme: str
) -> None:
    fill(log, 40)
    receiver, ca_file = _receiver(tmp_path, scheme, [("close_after", 10, 0.0), ("read",)])
    sink = SinkSettings(name="siem", url=receiver.url(scheme), ca_file=ca_file, batch_size=3)
    try:
        stats = forward(log.store, sink, open_transport(sink), once=True, sleep=_no_wait)
    finally:
        receiver.close()
    assert stats.failures >= 1 and receiver.connections == 2
    assert_at_least_once(log.store, "siem", receiver.uids, complete=True)


def test_cursor_stays_put_while_every_connection_closes_early(log: AuditLog) -> None:
    """The review's listener: every connection closes after 10 messages; a batch is 40."""
    fill(log, 40)
    closing = Receiver([("close_after", 10, 0.0)])
    sink = SinkSettings(name="siem", url=closing.url(), batch_size=50)
    try:
        with pytest.raises(SinkError, match=r"closed the connection|reset"):
            forward(log.store, sink, open_transport(sink), once=True, max_failures=3, sleep=_no_wait)
    finally:
        closing.close()
    assert log.store.cursor("siem") == 0 and len(closing.uids) == 30
    assert_at_least_once(log.store, "siem", closing.uids, complete=False)
    healthy = Receiver([("read",)])
    sink = SinkSettings(name="siem", url=healthy.url(), batch_size=50)
    try:
        forward(log.store, sink, open_transport(sink), once=True)
    finally:
        healthy.close()
    assert_at_least_once(log.store, "siem", closing.uids + healthy.uids, complete=True)


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_receiver_that_never_reads_then_dies_loses_nothing(
    log: AuditLog, tmp_path: Path, scheme: str
) -> None:
    fill(log, 60)
    # 50 events (~70 KB) cannot fit a 4 KB receive buffer: the kernel never acknowledges the batch.
    receiver, ca_file = _receiver(tmp_path, scheme, [("hang", 1.0), ("read",)], rcvbuf=4096)
    sink = SinkSettings(name="siem", url=receiver.url(scheme), ca_file=ca_file, batch_size=50)
    try:
        stats = forward(log.store, sink, open_transport(sink), once=True, sleep=_no_wait)
    finally:
        receiver.close()
    assert stats.failures >= 1 and receiver.connections == 2
    assert_at_least_once(log.store, "siem", receiver.uids, complete=True)


def test_receiver_dying_after_its_kernel_acknowledged_loses_the_batch(log: AuditLog) -> None:
    """The limit of syslog over TCP the README states: acknowledged by the kernel, never read."""
    fill(log, 5)
    receiver = Receiver([("hang", 1.0)])
    sink = SinkSettings(name="siem", url=receiver.url())
    stats = forward(log.store, sink, open_transport(sink), once=True)
    receiver.close()
    assert stats.delivered == 5 and log.store.cursor("siem") == 5 and receiver.uids == []


def test_receiver_that_stops_acknowledging_times_out(log: AuditLog) -> None:
    fill(log, 50)
    receiver = Receiver([("hang", 5.0)], rcvbuf=4096)
    transport = SyslogTransport(receiver.url(), timeout=0.5)
    messages = [r.record for r in log.store.records()]
    began = time.monotonic()
    try:
        with pytest.raises(SinkError, match=r"did not acknowledge what was sent within 0.5s|timed out"):
            transport.send(messages)
    finally:
        transport.close()
        receiver.close()
    assert time.monotonic() - began < 3


def test_an_idle_connection_the_receiver_dropped_is_reopened_without_a_failure(log: AuditLog) -> None:
    fill(log, 10)
    receiver = Receiver([("close_after", 5, 0.3), ("read",)])
    sink = SinkSettings(name="siem", url=receiver.url(), batch_size=5)
    forwarder = SinkForwarder(log.store, sink, open_transport(sink))
    try:
        forwarder.transport.send([forwarder.render(r) for r in log.store.records(1, 5)])
        time.sleep(0.6)  # the receiver closed the idle connection
        forwarder.transport.send([forwarder.render(r) for r in log.store.records(6, 10)])
    finally:
        forwarder.transport.close()
        receiver.close()
    assert receiver.connections == 2 and receiver.uids == _uids(log.store)


def test_without_sioutq_the_close_grace_still_applies(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the OS cannot count unacknowledged bytes, a batch is delivered once the connection
    stayed open CLOSE_GRACE after it was written."""
    monkeypatch.setattr(sys, "platform", "darwin")
    fill(log, 12)
    receiver = Receiver([("read",)])
    sink = SinkSettings(name="siem", url=receiver.url(), batch_size=5)
    began = time.monotonic()
    try:
        stats = forward(log.store, sink, open_transport(sink), once=True)
    finally:
        receiver.close()
    assert stats.delivered == 12 and time.monotonic() - began >= CLOSE_GRACE
    assert_at_least_once(log.store, "siem", receiver.uids, complete=True)


def test_syslog_witness_over_tcp_still_publishes(tmp_path: Path) -> None:
    receiver = Receiver([("read",)])
    settings = AuditSettings(
        store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=(receiver.url(),), checkpoint_every=5
    )
    try:
        with AuditLog.open(settings) as opened:
            fill(opened, 5)
        deadline = time.monotonic() + 5
        while not receiver.messages and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        receiver.close()
    assert open_witness(receiver.url()).readable is False
    assert b' CHECKPOINT [phiwarden@32473 tree_size="5"' in receiver.messages[0]


def _big_event(log: AuditLog) -> None:
    """Three events, one of ~70 KB in every format (a long message), three more."""
    fill(log, 3)
    log.append_batch([make_event(3, message="generated test suite run, one line per module; " * 1500)])
    fill(log, 3, start=4)


def test_udp_carries_an_oversized_event_truncated_and_keeps_going(
    log: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    _big_event(log)
    big = log.store.record(4)
    assert big is not None and len(big.record) > 65_507
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    sink = SinkSettings(name="udp", url=f"syslog+udp://127.0.0.1:{receiver.getsockname()[1]}")
    with caplog.at_level(logging.WARNING, logger="phiwarden.audit.forward"):
        stats = forward(log.store, sink, open_transport(sink), once=True, max_failures=1)
    datagrams = [receiver.recv(65_535) for _ in range(7)]
    receiver.close()
    assert stats.delivered == 7 and stats.truncated == 1 and log.store.cursor("udp") == 7
    assert [_uid(d) for d in datagrams] == _uids(log.store)
    stub = datagrams[3]
    body = json.loads(stub.partition(b"\xef\xbb\xbf")[2])
    marker = body["unmapped"]["phiwarden"]["truncated"]
    assert len(stub) <= 65_507 and f'seq="4" hash="{big.hash.hex()}"'.encode() in stub
    assert body["class_uid"] == 6003 and body["metadata"]["sequence"] == 4
    assert marker["reason"] == "the UDP datagram limit" and marker["bytes"] > 65_507
    assert body["unmapped"]["phiwarden"]["tier"] == "restricted" and "truncated" in body["message"]
    assert "event 4 is" in caplog.text and "sent in truncated form" in caplog.text


@pytest.mark.parametrize("fmt", ["jsonl", "ocsf", "cef"])
def test_max_message_bytes_of_a_file_sink(log: AuditLog, tmp_path: Path, fmt: str) -> None:
    _big_event(log)
    out = tmp_path / "siem.log"
    sink = SinkSettings(name="f", url=f"file://{out}", format=fmt, max_message_bytes=4096)
    stats = forward(log.store, sink, open_transport(sink), once=True, max_failures=1)
    lines = out.read_bytes().splitlines()
    big = log.store.record(4)
    assert big is not None and stats.truncated == 1 and len(lines) == 7
    assert all(len(line) <= 4096 for line in lines) and b"truncated by phiwarden" in lines[3]
    if fmt == "jsonl":
        stub = json.loads(lines[3])
        assert stub["hash"] == big.hash.hex() and stub["sequence"] == 4
        assert (
            stub["event"]["unmapped"]["phiwarden"]["truncated"]["reason"] == "max_message_bytes of sink 'f'"
        )
    elif fmt == "cef":
        assert b"externalId=4 " in lines[3] and _uids(log.store)[3].encode() in lines[3]


def test_a_limit_too_small_for_the_truncated_form_is_an_error_not_a_drop(
    log: AuditLog, tmp_path: Path
) -> None:
    _big_event(log)
    sink = SinkSettings(name="f", url=f"file://{tmp_path / 'siem.log'}", max_message_bytes=300)
    with pytest.raises(SinkError, match=r"even the truncated form of event 1 .* raise max_message_bytes"):
        forward(log.store, sink, open_transport(sink), once=True, max_failures=1)
    assert log.store.cursor("f") == 0


class _Hec(BaseHTTPRequestHandler):
    """Splunk HEC with indexer acknowledgement; `statuses` are the replies to the next event POSTs."""

    statuses: ClassVar[list[int]] = []
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.startswith("/services/collector/ack"):
            return self._reply(200, {"acks": {str(a): True for a in json.loads(body)["acks"]}})
        status = _Hec.statuses.pop(0) if _Hec.statuses else 200
        if status != 200:
            return self._reply(status, {"text": "Server is busy", "code": 9})
        for line in body.splitlines():
            _Hec.received.append(json.loads(line)["event"]["metadata"]["uid"])
        return self._reply(200, {"text": "Success", "code": 0, "ackId": len(_Hec.received)})

    def _reply(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def hec(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HEC_TOKEN", "t0k3n")
    _Hec.statuses, _Hec.received = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hec)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hec_503_then_200_delivers_everything(log: AuditLog, hec: str) -> None:
    fill(log, 9)
    _Hec.statuses = [503, 503]
    sink = SinkSettings(name="splunk", url=hec, format="hec", token_env="HEC_TOKEN", ack=True, batch_size=4)
    stats = forward(log.store, sink, open_transport(sink), once=True, sleep=_no_wait)
    assert stats.failures == 2 and stats.delivered == 9
    assert_at_least_once(log.store, "splunk", _Hec.received, complete=True)


def _dead_port() -> int:
    closed = socket.create_server(("127.0.0.1", 0))
    port: int = closed.getsockname()[1]
    closed.close()
    return port


@pytest.mark.usefixtures("fast_backoff")
def test_failing_sinks_never_hold_up_a_healthy_one_once(tmp_path: Path, hec: str) -> None:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    with AuditLog.open(settings) as opened:
        fill(opened, 25)
    _Hec.statuses = [500] * 100
    _, foreign_ca = _tls(tmp_path / "other")  # the receiver's certificate is not signed by this CA
    untrusted = Receiver([("read",)], context=_tls(tmp_path)[0])
    sinks = [
        SinkSettings(name="dead", url=f"syslog+tcp://127.0.0.1:{_dead_port()}"),
        SinkSettings(name="http500", url=hec, format="hec", token_env="HEC_TOKEN"),
        SinkSettings(name="badtls", url=untrusted.url("tls"), ca_file=str(foreign_ca)),
        SinkSettings(name="file", url=f"file://{tmp_path / 'siem.jsonl'}", format="jsonl", batch_size=10),
    ]
    stores = [open_store(store_url(settings)) for _ in sinks]
    try:
        outcomes = forward_all(
            [(store, sink, open_transport(sink)) for store, sink in zip(stores, sinks, strict=True)],
            once=True,
            max_failures=3,
        )
        failed = {o.forwarder.sink.name: o.error for o in outcomes if o.error}
        assert set(failed) == {"dead", "http500", "badtls"}
        assert "Connection refused" in str(failed["dead"]) and "HTTP 500" in str(failed["http500"])
        assert "CERTIFICATE_VERIFY_FAILED" in str(failed["badtls"])
        delivered = [
            json.loads(line)["event"]["metadata"]["uid"] for line in (tmp_path / "siem.jsonl").open()
        ]
        assert_at_least_once(stores[0], "file", delivered, complete=True)
        assert all(stores[0].cursor(name) == 0 for name in failed)
    finally:
        untrusted.close()
        for store in stores:
            store.close()


def test_a_dead_sink_never_holds_up_a_healthy_one_continuously(tmp_path: Path) -> None:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    out = tmp_path / "siem.jsonl"
    sinks = [
        SinkSettings(name="dead", url=f"syslog+tcp://127.0.0.1:{_dead_port()}"),
        SinkSettings(name="file", url=f"file://{out}", format="jsonl"),
    ]
    stores = [open_store(store_url(settings), create=True) for _ in sinks]
    stop = threading.Event()
    outcomes: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcomes.extend(
            forward_all(
                [(s, sink, open_transport(sink)) for s, sink in zip(stores, sinks, strict=True)],
                stop=stop,
                poll_seconds=0.05,
            )
        )
    )
    runner.start()
    try:
        with AuditLog.open(settings) as opened:
            for start in range(0, 20, 5):
                fill(opened, 5, start=start)
                time.sleep(0.1)
            deadline = time.monotonic() + 5
            while len(out.read_bytes().splitlines() if out.exists() else []) < 20:
                assert time.monotonic() < deadline, "the file sink waited for the dead one"
                time.sleep(0.02)
    finally:
        stop.set()
        runner.join(10)
        for store in stores:
            store.close()
    assert not runner.is_alive()
    dead, healthy = (o.forwarder.stats for o in outcomes)
    assert dead.failures >= 1 and dead.cursor == 0 and healthy.cursor == 20 and healthy.failures == 0
    assert all(o.error is None for o in outcomes)


def test_a_failing_store_stops_every_sink_and_is_raised(tmp_path: Path) -> None:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    with AuditLog.open(settings) as opened:
        fill(opened, 3)
    healthy, broken = open_store(store_url(settings)), open_store(store_url(settings))
    sinks = [
        SinkSettings(name="a", url=f"file://{tmp_path / 'a.log'}"),
        SinkSettings(name="b", url=f"file://{tmp_path / 'b.log'}"),
    ]
    jobs = [(healthy, sinks[0], open_transport(sinks[0])), (broken, sinks[1], open_transport(sinks[1]))]
    broken.close()
    try:
        with pytest.raises(AuditError):
            forward_all(jobs, poll_seconds=0.05)
    finally:
        healthy.close()


def _policy(tmp_path: Path, sinks: str) -> Path:
    policy = tmp_path / "phiwarden.toml"
    policy.write_text(f'[audit]\nstore = "db/audit.db"\nwitnesses = []\n{sinks}', encoding="utf-8")
    return policy


@pytest.mark.usefixtures("fast_backoff")
def test_cli_forward_once_delivers_to_healthy_sinks_and_names_the_failed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.cli import main
    from phiwarden.policy import load_policy

    policy = _policy(
        tmp_path,
        f'[[audit.sink]]\nname = "dead"\nurl = "syslog+tcp://127.0.0.1:{_dead_port()}"\n'
        '[[audit.sink]]\nname = "file"\nurl = "file://siem/events.jsonl"\nformat = "jsonl"\n',
    )
    with AuditLog.open(load_policy(policy).audit) as opened:
        fill(opened, 12)
    assert main(["audit", "forward", "--policy", str(policy), "--once"]) == 2
    err = capsys.readouterr().err
    assert "file: delivered 12, cursor 12" in err and "dead: FAILED: syslog tcp://" in err
    assert "not everything was delivered to dead (the other sinks got everything)" in err
    assert len((tmp_path / "siem" / "events.jsonl").read_text().splitlines()) == 12


def test_cli_export_to_a_udp_sink_truncates_an_oversized_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.cli import main
    from phiwarden.policy import load_policy

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    policy = _policy(
        tmp_path,
        f'[[audit.sink]]\nname = "udp"\nurl = "syslog+udp://127.0.0.1:{receiver.getsockname()[1]}"\n',
    )
    with AuditLog.open(load_policy(policy).audit) as opened:
        _big_event(opened)
    assert main(["audit", "export", "--policy", str(policy), "--sink", "udp"]) == 0
    datagrams = [receiver.recv(65_535) for _ in range(7)]
    receiver.close()
    assert b"truncated by phiwarden" in datagrams[3]
    assert "exported 7 event(s) (1 too large for the sink, sent truncated)" in capsys.readouterr().err


def test_max_message_bytes_in_the_policy() -> None:
    from phiwarden.policy import PolicyError, parse_policy

    sink = '[audit]\n[[audit.sink]]\nname = "s"\nurl = "syslog+tcp://siem:514"\nmax_message_bytes = {}\n'
    assert parse_policy(sink.format(8192)).audit.sinks[0].max_message_bytes == 8192
    assert (
        parse_policy(sink.format(8192).replace("max_message_bytes = 8192\n", ""))
        .audit.sinks[0]
        .max_message_bytes
        is None
    )
    with pytest.raises(PolicyError, match="between 2048 and") as info:
        parse_policy(sink.format(100))
    assert info.value.line == 5
