"""Continuous forwarding to SIEM sinks, at least once.

Each sink has a cursor in the store: the last sequence number it acknowledged. A batch is read after
the cursor, rendered, sent, and only when the transport reports success is the cursor moved. A failed
send is retried with exponential backoff (0.5 s doubling to 60 s): a SIEM outage delays events and
never drops them; after an interruption the last batch may be delivered twice (receivers can
deduplicate on `metadata.uid` or the sequence number).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from phiwarden.audit.errors import AuditConfigError, SinkError
from phiwarden.audit.export import Envelope, render
from phiwarden.audit.sinks import FileTransport, HecTransport, SyslogTransport, Transport
from phiwarden.audit.store import AuditStore
from phiwarden.policy.audit import SinkSettings

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 60.0
logger = logging.getLogger("phiwarden.audit.forward")


@dataclass(slots=True)
class ForwardStats:
    sent: int = 0
    batches: int = 0
    failures: int = 0
    cursor: int = 0
    last_error: str | None = None


def envelope(sink: SinkSettings) -> Envelope:
    return Envelope(
        facility=sink.facility,
        app_name=sink.app_name,
        hostname=sink.hostname,
        index=sink.index,
        sourcetype=sink.sourcetype,
        body="cef" if sink.format == "cef" else "ocsf",
    )


def wire_format(sink: SinkSettings) -> str:
    """What one message is on this sink: syslog transports always carry RFC 5424 messages."""
    return "syslog" if sink.url.startswith("syslog+") else sink.format


def open_transport(sink: SinkSettings, base_dir: Path | None = None) -> Transport:
    url = sink.url
    if url.startswith("file://"):
        path = Path(url.removeprefix("file://"))
        return FileTransport(str(path if path.is_absolute() or base_dir is None else base_dir / path))
    if url.startswith("syslog+"):
        return SyslogTransport(url, ca_file=sink.ca_file, timeout=sink.timeout_seconds)
    if url.startswith(("http://", "https://")):
        token = os.environ.get(sink.token_env or "", "")
        if not token:
            raise AuditConfigError(f"sink {sink.name!r}: set the HEC token in ${sink.token_env}")
        return HecTransport(
            url, token=token, ack=sink.ack, ca_file=sink.ca_file, timeout=sink.timeout_seconds
        )
    raise AuditConfigError(f"sink {sink.name!r}: unsupported URL {url!r}")


def forward(
    store: AuditStore,
    sink: SinkSettings,
    transport: Transport,
    *,
    once: bool = False,
    max_failures: int | None = None,
    stop: threading.Event | None = None,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], object] | None = None,
) -> ForwardStats:
    """Send everything after the sink's cursor; with `once`, return when caught up.

    Raises `SinkError` after `max_failures` consecutive failures (None: retry forever).
    """
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    fmt, env = wire_format(sink), envelope(sink)
    stats = ForwardStats(cursor=store.cursor(sink.name))
    backoff = INITIAL_BACKOFF
    consecutive = 0
    while not stop.is_set():
        batch = list(store.records(stats.cursor + 1, limit=sink.batch_size))
        if not batch:
            if once:
                break
            wait(poll_seconds)
            continue
        try:
            transport.send([render(record, fmt, env) for record in batch])
        except SinkError as exc:
            stats.failures += 1
            consecutive += 1
            stats.last_error = str(exc)
            if max_failures is not None and consecutive >= max_failures:
                raise
            logger.warning("sink %s: %s; retrying in %.1fs", sink.name, exc, backoff)
            wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        store.set_cursor(sink.name, batch[-1].seq)
        stats.cursor = batch[-1].seq
        stats.sent += len(batch)
        stats.batches += 1
        backoff, consecutive = INITIAL_BACKOFF, 0
    return stats
