"""Continuous forwarding to SIEM sinks, at least once per sink.

Each sink has a cursor in the store: the last sequence number it has been delivered (as far as its
transport can tell, see `phiwarden.audit.sinks`). Batches are read after the cursor, rendered and
written; the cursor moves when the transport reports them delivered. While one batch settles the
next is rendered and written (at most `MAX_IN_FLIGHT` batches are undelivered at a time), so
waiting for TCP acknowledgements costs no throughput while there is a backlog. A failure makes every
undelivered batch undelivered again (but those the transport says were delivered before it): it is
sent anew after exponential backoff (0.5 s doubling to 60 s), at once if the failure came with
progress. A SIEM outage delays events and never drops them; receivers may see an event twice and
deduplicate on `metadata.uid` (or the sequence number). After a lost connection the next one starts
with one batch in flight, one more for each delivered, as TCP's slow start does: a receiver that
reads a few batches per connection and closes gets them, rather than a burst it cuts off each time.

`forward_all` runs every sink in its own thread with its own store connection, transport, cursor
and backoff: a dead, slow or refusing sink never delays another.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from phiwarden.audit.errors import AuditConfigError, AuditStoreError, SinkError
from phiwarden.audit.export import Envelope
from phiwarden.audit.oversize import Renderer
from phiwarden.audit.sinks import ConnectionLost, FileTransport, HecTransport, SyslogTransport, Transport
from phiwarden.audit.store import AuditStore
from phiwarden.policy.audit import SinkSettings

INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 60.0
# Batches written and not yet delivered, at most. Each settles CLOSE_GRACE (50 ms) after its TCP
# acknowledgement, while rendering a 500-event batch takes ~20 ms: a cap of 2 measured half the
# throughput of not waiting at all, 8 within 10 % of it (benchmarks/audit_forward.py).
MAX_IN_FLIGHT = 8
logger = logging.getLogger("phiwarden.audit.forward")


@dataclass(slots=True)
class ForwardStats:
    delivered: int = 0
    batches: int = 0
    failures: int = 0
    truncated: int = 0
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


def renderer(sink: SinkSettings, transport: Transport) -> Renderer:
    """Renders for this sink, within the transport's own limit and the sink's `max_message_bytes`."""
    limits = []
    if transport.max_message is not None:
        limits.append((transport.max_message, "the UDP datagram limit"))
    if sink.max_message_bytes is not None:
        limits.append((sink.max_message_bytes, f"max_message_bytes of sink {sink.name!r}"))
    limit, why = min(limits) if limits else (None, "")
    return Renderer(sink.name, wire_format(sink), envelope(sink), limit, why)


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


def newest_sequence(store: AuditStore) -> int:
    """The newest event's sequence number (0 for an empty log); a cursor is never past it."""
    return max(store.head_row()[0], store.last_sequence() or 0)


def cursor_past_the_log(name: str, cursor: int, newest: int) -> str:
    # No delivery moves a cursor past the newest event: its row was edited, or the store replaced
    # by an older copy. Forwarding from it would send nothing until the log caught up.
    return (
        f"sink {name!r}: its cursor is at event {cursor}, past the log's newest event {newest}: the "
        "cursor was edited in the store (or the store restored from an older copy); find the last "
        f"event the SIEM holds and run `phiwarden audit forward --sink {name} --reset-cursor SEQ`"
    )


class SinkForwarder:
    """One sink's forwarding: its cursor, batches in flight, retries and backoff."""

    def __init__(
        self,
        store: AuditStore,
        sink: SinkSettings,
        transport: Transport,
        *,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.transport = transport
        self.sleep = sleep
        self.render = renderer(sink, transport)
        cursor = store.cursor(sink.name)
        newest = newest_sequence(store)
        if cursor > newest:
            raise AuditStoreError(cursor_past_the_log(sink.name, cursor, newest))
        self.stats = ForwardStats(cursor=cursor)

    def run(
        self,
        *,
        once: bool = False,
        max_failures: int | None = None,
        stop: threading.Event | None = None,
        poll_seconds: float = 1.0,
        caught_up: Callable[[SinkForwarder], object] | None = None,
    ) -> ForwardStats:
        """Deliver everything after the cursor; with `once`, return when all of it is delivered.

        Raises `SinkError` after `max_failures` consecutive failures (None: retry forever).
        `caught_up` is called whenever a backlog has been delivered in full.
        """
        stop = stop or threading.Event()
        wait = self.sleep or stop.wait
        stats = self.stats
        # (last sequence, events) of each batch written and not yet delivered, oldest first.
        in_flight: deque[tuple[int, int]] = deque()
        position = stats.cursor
        backoff, consecutive, reported = INITIAL_BACKOFF, 0, stats.delivered
        window = MAX_IN_FLIGHT
        while not stop.is_set():
            try:
                full = len(in_flight) >= window
                batch = [] if full else list(self.store.records(position + 1, limit=self.sink.batch_size))
                if batch:
                    messages = [self.render(record) for record in batch]
                    stats.truncated = self.render.truncated
                    self.transport.write(messages)
                    in_flight.append((batch[-1].seq, len(batch)))
                    position = batch[-1].seq
                elif not in_flight:
                    if caught_up is not None and stats.delivered > reported:
                        reported = stats.delivered
                        caught_up(self)
                    if once:
                        break
                    wait(poll_seconds)
                    continue
                settled = self.transport.delivered(wait=full or not batch)
            except SinkError as exc:
                self.transport.close()
                progress = self._settled(in_flight, exc.delivered if isinstance(exc, ConnectionLost) else 0)
                lost = bool(in_flight)
                in_flight.clear()
                position = stats.cursor
                window = 1
                if progress and not lost:
                    continue  # the receiver closed after reading every batch in flight: reconnect
                stats.failures += 1
                consecutive = 0 if progress else consecutive + 1
                stats.last_error = str(exc)
                if max_failures is not None and consecutive >= max_failures:
                    raise
                if progress:
                    backoff = INITIAL_BACKOFF
                    continue
                logger.warning("sink %s: %s; retrying in %.1fs", self.sink.name, exc, backoff)
                wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if self._settled(in_flight, settled):
                window = min(MAX_IN_FLIGHT, window + settled)
                backoff, consecutive = INITIAL_BACKOFF, 0
        return stats

    def _settled(self, in_flight: deque[tuple[int, int]], count: int) -> bool:
        """The oldest `count` batches in flight were delivered: count them, move the cursor past them."""
        if not count:
            return False
        for _ in range(count):
            last, events = in_flight.popleft()
            self.stats.delivered += events
            self.stats.batches += 1
        self.store.set_cursor(self.sink.name, last)
        self.stats.cursor = last
        return True


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
    """Forward to one sink in this thread (see `SinkForwarder.run`)."""
    return SinkForwarder(store, sink, transport, sleep=sleep).run(
        once=once, max_failures=max_failures, stop=stop, poll_seconds=poll_seconds
    )


@dataclass(slots=True)
class SinkOutcome:
    forwarder: SinkForwarder
    # Why this sink gave up (`once` with `max_failures`); None if everything was delivered.
    error: str | None = None


def forward_all(
    jobs: Sequence[tuple[AuditStore, SinkSettings, Transport]],
    *,
    once: bool = False,
    max_failures: int | None = None,
    stop: threading.Event | None = None,
    poll_seconds: float = 1.0,
    caught_up: Callable[[SinkForwarder], object] | None = None,
) -> list[SinkOutcome]:
    """Forward to every sink at once, each in its own thread (each job needs its own store connection).

    Returns when every sink is done (`once`) or `stop` is set. A sink that gives up is an outcome
    with an error; anything else that goes wrong (the store failing) stops every sink and is raised.
    """
    stop = stop or threading.Event()
    outcomes = [SinkOutcome(SinkForwarder(store, sink, transport)) for store, sink, transport in jobs]
    fatal: list[BaseException] = []

    def work(outcome: SinkOutcome) -> None:
        try:
            outcome.forwarder.run(
                once=once,
                max_failures=max_failures,
                stop=stop,
                poll_seconds=poll_seconds,
                caught_up=caught_up,
            )
        except SinkError as exc:
            outcome.error = str(exc)
        except BaseException as exc:
            fatal.append(exc)
            stop.set()
        finally:
            outcome.forwarder.transport.close()

    threads = [
        threading.Thread(target=work, args=(o,), name=f"forward-{o.forwarder.sink.name}") for o in outcomes
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
    if fatal:
        raise fatal[0]
    return outcomes
