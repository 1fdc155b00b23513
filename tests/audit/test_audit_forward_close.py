"""Receivers that close connections on their own: what TCP says they read counts as delivered.

A receiver that closes with bytes unread makes its kernel reset the connection; one that closes
cleanly (FIN, no reset) read everything it acknowledged. The review's receiver closed after 150
messages per connection with batches of 50: the cursor stayed at 0 while it got the first 150 events
again and again. Every test checks at-least-once by uid, as test_audit_forward_delivery does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog
from phiwarden.audit.forward import forward, open_transport
from phiwarden.audit.sinks import ConnectionLost, SyslogTransport
from phiwarden.policy.audit import AuditSettings, SinkSettings

from .conftest import fill
from .test_audit_forward_delivery import Receiver, _no_wait, _receiver, assert_at_least_once


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(
        AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    ) as opened:
        yield opened


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_a_receiver_closing_after_three_batches_per_connection_gets_everything(
    log: AuditLog, tmp_path: Path, scheme: str
) -> None:
    fill(log, 60)
    receiver, ca_file = _receiver(tmp_path, scheme, [("close_after", 9, 0.0)])
    sink = SinkSettings(name="siem", url=receiver.url(scheme), ca_file=ca_file, batch_size=3)
    try:
        stats = forward(log.store, sink, open_transport(sink), once=True, max_failures=5, sleep=_no_wait)
    finally:
        receiver.close()
    assert stats.cursor == 60 and log.store.cursor("siem") == 60
    assert_at_least_once(log.store, "siem", receiver.uids, complete=True)
    # Each connection after the first burst (cut off with bytes unread) starts with one batch in
    # flight; the two batches after it are read before the clean close and count as delivered.
    assert receiver.connections <= 20 and len(receiver.uids) < 3 * 60  # 8 and 69 on a quiet machine


def _messages(log: AuditLog, first: int, last: int) -> list[bytes]:
    return [r.record for r in log.store.records(first, last)]


def _wait_for(receiver: Receiver, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(receiver.messages) < count:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_batches_read_before_a_clean_close_are_delivered_and_the_next_is_not_written(log: AuditLog) -> None:
    fill(log, LAST := 9)
    receiver = Receiver([("close_after", 6, 0.0), ("read",)])
    transport = SyslogTransport(receiver.url())
    try:
        transport.write(_messages(log, 1, 3))
        transport.write(_messages(log, 4, 6))
        _wait_for(receiver, 6)
        time.sleep(0.1)  # the receiver has closed: its FIN is in
        with pytest.raises(ConnectionLost, match="the receiver closed the connection") as info:
            transport.write(_messages(log, 7, 9))
        assert (info.value.delivered, info.value.lost) == (2, 0)
        transport.send(_messages(log, 7, 9))  # a new connection
    finally:
        transport.close()
        receiver.close()
    assert receiver.messages == _messages(log, 1, LAST)


def test_a_close_with_bytes_unread_is_a_reset_that_delivers_nothing(log: AuditLog) -> None:
    fill(log, 6)
    receiver = Receiver([("close_after", 3, 0.0)])
    transport = SyslogTransport(receiver.url())
    try:
        transport.write(_messages(log, 1, 6))
        with pytest.raises(ConnectionLost, match="reset") as info:
            transport.delivered(wait=True)
    finally:
        transport.close()
        receiver.close()
    assert (info.value.delivered, info.value.lost) == (0, 1) and len(receiver.messages) == 3


def test_a_clean_close_within_a_send_is_a_delivery(log: AuditLog) -> None:
    fill(log, LAST := 3)
    receiver = Receiver([("close_after", 3, 0.0)])
    transport = SyslogTransport(receiver.url())
    try:
        transport.send(_messages(log, 1, 3))
    finally:
        transport.close()
        receiver.close()
    assert receiver.messages == _messages(log, 1, LAST)
