"""Forwarding throughput to a local syslog receiver over TCP and TLS.

A SQLite store of `--events` events is forwarded in full (`forward --once`) to a receiver in another
process that reads and counts RFC 6587 frames; each round uses a new sink name, so it starts from
cursor 0. Events per second run from the first read of the store to the last delivery confirmed
(TCP acknowledgement of every byte plus the close grace). `--in-flight 1` waits for each batch
before rendering the next (what the forward loop would cost without overlapping the two).

    python -m benchmarks.audit_forward [--events 20000] [--rounds 3]   # last line: JSON figures
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import socket
import ssl
import statistics
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmarks.audit_common import event, isolated_home
from benchmarks.common import emit
from phiwarden.audit import AuditLog
from phiwarden.audit.forward import forward, open_transport
from phiwarden.policy.audit import AuditSettings, SinkSettings


def _certificate(home: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost (the receiver's and the client's CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = home / "cert.pem", home / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _receive(server: socket.socket, tls: tuple[Path, Path] | None, counts: Any) -> None:
    """Accept connections one after another; report the frames read on each."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    while True:
        conn, _ = server.accept()
        if context is not None:
            conn = context.wrap_socket(conn, server_side=True)
        frames, buffer = 0, b""
        while chunk := conn.recv(1 << 20):
            buffer += chunk
            while (space := buffer.find(b" ")) > 0 and len(buffer) >= space + 1 + int(buffer[:space]):
                buffer = buffer[space + 1 + int(buffer[:space]) :]
                frames += 1
        conn.close()
        counts.put(frames)


def run(store_url: str, scheme: str, tls: tuple[Path, Path] | None, *, rounds: int, events: int) -> list[int]:
    """Events per second of each round (every event counted by the receiver)."""
    context = multiprocessing.get_context("fork")
    server = socket.create_server(("127.0.0.1", 0))
    counts = context.Queue()
    receiver = context.Process(target=_receive, args=(server, tls, counts), daemon=True)
    receiver.start()
    host = "localhost" if tls else "127.0.0.1"
    rates = []
    try:
        for n in range(rounds):
            sink = SinkSettings(
                name=f"{scheme}-{n}",
                url=f"syslog+{scheme}://{host}:{server.getsockname()[1]}",
                ca_file=str(tls[0]) if tls else None,
            )
            with AuditLog.open(AuditSettings(store=store_url, witnesses=())) as log:
                transport = open_transport(sink)
                began = time.perf_counter()
                forward(log.store, sink, transport, once=True)
                elapsed = time.perf_counter() - began
                transport.close()
            received = counts.get(timeout=60)
            if received != events:
                raise SystemExit(f"{scheme}: the receiver counted {received} of {events} events")
            rates.append(round(events / elapsed))
    finally:
        receiver.kill()
        server.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--in-flight", type=int, help="batches undelivered at a time (default: the product's)"
    )
    args = parser.parse_args()
    if args.in_flight is not None:
        import phiwarden.audit.forward as forwarding

        forwarding.MAX_IN_FLIGHT = args.in_flight
    figures: dict[str, Any] = {"events": args.events}
    with isolated_home() as home:
        url = f"sqlite:///{home / 'audit.db'}"
        with AuditLog.open(AuditSettings(store=url, witnesses=())) as log:
            for start in range(0, args.events, 1000):
                log.append_batch([event(i) for i in range(start, min(start + 1000, args.events))])
        for scheme, tls in (("tcp", None), ("tls", _certificate(home))):
            rates = run(url, scheme, tls, rounds=args.rounds, events=args.events)
            print(f"{scheme}: {rates} events/s")
            figures[f"{scheme}_events_per_s"] = round(statistics.median(rates))
            figures[f"{scheme}_rounds"] = rates
    emit(figures)


if __name__ == "__main__":
    main()
