"""Export formats and real transports: UDP, TCP (octet counting), TLS syslog listeners and a HEC server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phiwarden.audit import AuditLog
from phiwarden.audit.errors import SinkError
from phiwarden.audit.export import Envelope, render
from phiwarden.audit.forward import forward, open_transport
from phiwarden.audit.log import open_store, store_url
from phiwarden.audit.sinks import HecTransport, SyslogTransport
from phiwarden.policy.audit import AuditSettings, SinkSettings

from .conftest import fill


@pytest.fixture
def sqlite_log(tmp_path: Path) -> Iterator[AuditLog]:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    log = AuditLog.open(settings)
    fill(log, 12)
    yield log
    log.close()


def _octet_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)])
        data = rest[int(length) :]
    return frames


class _Listener:
    """A TCP (optionally TLS) server that records everything it receives."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.context = context
        self.data = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        if self.context is not None:
            try:
                conn = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused our certificate: what that test expects
                return
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk

    def close(self) -> bytes:
        self.thread.join(5)
        self.server.close()
        return self.data


def _tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def test_formats_carry_no_raw_values_and_round_trip(sqlite_log: AuditLog) -> None:
    stored = sqlite_log.store.record(2)
    assert stored is not None
    line = json.loads(render(stored, "jsonl"))
    digest = line.pop("hash")
    from phiwarden.audit.canonical import canonical_json, record_hash

    assert record_hash(canonical_json(line)) == bytes.fromhex(digest) == stored.hash
    ocsf = json.loads(render(stored, "ocsf"))
    assert ocsf["class_name"] == "API Activity" and ocsf["activity_name"] == "Create"
    assert ocsf["metadata"]["product"]["name"] == "phiwarden" and ocsf["disposition"] == "Corrected"
    cef = render(stored, "cef").decode()
    assert cef.startswith("CEF:0|phiwarden|phiwarden|") and "act=mask" in cef and "externalId=2" in cef
    hec = json.loads(render(stored, "hec", Envelope(index="audit")))
    assert hec["index"] == "audit" and hec["event"]["class_uid"] == 6003 and "." in hec["time"]


def test_cef_escaping() -> None:
    from phiwarden.audit.export import _cef_header, _cef_value

    assert _cef_header("a|b\\c") == "a\\|b\\\\c"
    assert _cef_value("x=y\\z\nw") == "x\\=y\\\\z\\nw"


def test_rfc5424_message_shape(sqlite_log: AuditLog) -> None:
    stored = sqlite_log.store.record(3)
    assert stored is not None
    message = render(stored, "syslog", Envelope(facility="local0", hostname="gw-1"))
    header, _, body = message.partition(b" \xef\xbb\xbf")
    pri_version, stamp, host, app, _procid, msgid, sd = header.split(b" ", 6)
    assert pri_version == b"<132>1" and host == b"gw-1" and app == b"phiwarden" and msgid == b"AUDIT"
    assert stamp.endswith(b"Z") and b"T" in stamp
    assert sd.startswith(b'[phiwarden@32473 seq="3" hash="') and sd.endswith(b'action="block"]')
    assert json.loads(body)["metadata"]["sequence"] == 3


def test_syslog_udp(sqlite_log: AuditLog) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    transport = SyslogTransport(f"syslog+udp://127.0.0.1:{receiver.getsockname()[1]}")
    stored = sqlite_log.store.record(1)
    assert stored is not None
    transport.send([render(stored, "syslog")])
    assert receiver.recv(65536).startswith(b"<")
    transport.close()
    receiver.close()


@pytest.mark.parametrize("tls", [False, True])
def test_forward_over_tcp_and_tls_with_octet_counting(
    sqlite_log: AuditLog, tmp_path: Path, tls: bool
) -> None:
    context, cert = _tls_pair(tmp_path) if tls else (None, None)
    listener = _Listener(context)
    sink = SinkSettings(
        name="siem",
        url=f"syslog+{'tls' if tls else 'tcp'}://127.0.0.1:{listener.port}",
        format="cef",
        ca_file=str(cert) if cert else None,
        batch_size=5,
    )
    transport = open_transport(sink)
    stats = forward(sqlite_log.store, sink, transport, once=True)
    transport.close()
    frames = _octet_frames(listener.close())
    assert stats.delivered == 12 and stats.batches == 3 and sqlite_log.store.cursor("siem") == 12
    assert len(frames) == 12 and all(b"CEF:0|phiwarden" in f for f in frames)


def test_tls_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    context, _ = _tls_pair(tmp_path)
    listener = _Listener(context)
    transport = SyslogTransport(f"syslog+tls://127.0.0.1:{listener.port}")
    with pytest.raises(SinkError):
        transport.send([b"x"])
    listener.server.close()


class _Hec(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    failures_left: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers["Authorization"] != "Splunk t0k3n":
            return self._reply(403, {"text": "Invalid token", "code": 4})
        if self.path.startswith("/services/collector/ack"):
            acks = json.loads(body)["acks"]
            return self._reply(200, {"acks": {str(a): True for a in acks}})
        if _Hec.failures_left:
            _Hec.failures_left -= 1
            return self._reply(503, {"text": "Server is busy", "code": 9})
        decoder, text, items = json.JSONDecoder(), body.decode(), []
        position = 0
        while position < len(text):
            item, position = decoder.raw_decode(text, position)
            items.append(item)
            while position < len(text) and text[position].isspace():
                position += 1
        _Hec.received.extend(items)
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
def hec_server() -> Iterator[int]:
    _Hec.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hec)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_forward_to_hec_survives_an_outage_without_losing_events(
    sqlite_log: AuditLog, hec_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEC_TOKEN", "t0k3n")
    sink = SinkSettings(
        name="splunk",
        url=f"http://127.0.0.1:{hec_server}",
        format="hec",
        token_env="HEC_TOKEN",
        ack=True,
        batch_size=4,
    )
    _Hec.failures_left = 2
    waits: list[float] = []
    stats = forward(sqlite_log.store, sink, open_transport(sink), once=True, sleep=waits.append)
    assert stats.failures == 2 and waits == [0.5, 1.0]
    assert [e["event"]["metadata"]["sequence"] for e in _Hec.received] == list(range(1, 13))
    assert sqlite_log.store.cursor("splunk") == 12


def test_cursor_does_not_move_while_the_sink_is_down(sqlite_log: AuditLog, hec_server: int) -> None:
    transport = HecTransport(f"http://127.0.0.1:{hec_server}", token="wrong")
    sink = SinkSettings(name="splunk", url=f"http://127.0.0.1:{hec_server}", format="hec", token_env="X")
    with pytest.raises(SinkError, match="403"):
        forward(sqlite_log.store, sink, transport, once=True, max_failures=2, sleep=lambda _: None)
    assert sqlite_log.store.cursor("splunk") == 0


def test_unreachable_syslog_is_retried_not_skipped(sqlite_log: AuditLog) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    sink = SinkSettings(name="siem", url=f"syslog+tcp://127.0.0.1:{port}")
    with pytest.raises(SinkError):
        forward(sqlite_log.store, sink, open_transport(sink), once=True, max_failures=3, sleep=lambda _: None)
    assert sqlite_log.store.cursor("siem") == 0


def test_http_witness_receives_and_serves_checkpoints(tmp_path: Path) -> None:
    posted: list[bytes] = []

    class Witness(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = b"\n".join(posted)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/witness"
    settings = AuditSettings(
        store=f"sqlite:///{tmp_path / 'db' / 'a.db'}", witnesses=(url,), checkpoint_every=5
    )
    try:
        with AuditLog.open(settings) as log:
            fill(log, 12)
        from phiwarden.audit.log import public_key, witnesses
        from phiwarden.audit.verify import verify_log

        store = open_store(store_url(settings))
        try:
            report = verify_log(store, public_key(settings), witnesses=witnesses(settings))
            assert report.ok and report.witness_checkpoints == len(posted) >= 1
            with store._write() as cur:
                cur.execute("DELETE FROM audit_events WHERE seq > 6")
                cur.execute("DELETE FROM audit_checkpoints")
                cur.execute("UPDATE audit_head SET size = 6")
            # The witness's only checkpoint (12) covers events the log no longer has: none is proven.
            truncated = verify_log(store, public_key(settings), witnesses=witnesses(settings))
            assert truncated.first_bad_range == (1, 12) and truncated.problems[0].kind == "truncated"
        finally:
            store.close()
    finally:
        server.shutdown()
        server.server_close()


def test_syslog_witness_and_an_auditor_held_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.cli import main

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    url = f"syslog+udp://127.0.0.1:{receiver.getsockname()[1]}"
    db = tmp_path / "db" / "audit.db"
    policy = tmp_path / "phiwarden.toml"
    policy.write_text(f'[audit]\nstore = "{db}"\nwitnesses = ["{url}"]\ncheckpoint_every = 100\n')
    from phiwarden.policy import load_policy

    with AuditLog.open(load_policy(policy).audit) as log:
        fill(log, 30)
    message = receiver.recv(65536)
    receiver.close()
    assert b' CHECKPOINT [phiwarden@32473 tree_size="30"' in message
    held = tmp_path / "from-siem.json"
    held.write_bytes(message.partition(b"\xef\xbb\xbf")[2])
    args = ["audit", "verify", "--policy", str(policy), "--checkpoint", str(held)]
    assert main(args) == 0
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM audit_events WHERE seq > 25")
    conn.execute("DELETE FROM audit_checkpoints")
    conn.execute("UPDATE audit_head SET size = 25")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(args) == 1
    # The auditor's only checkpoint (30) covers events the log no longer has: none is proven.
    assert "first bad sequence in 1..30" in capsys.readouterr().out
