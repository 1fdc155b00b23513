"""The gateway's audit writer: decision events are durable before `write` returns; outcome events,
which nobody waits for, ride along with the next commit, and are never lost to a quiet gateway or a
shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest

from phiwarden.audit import AuditError, AuditLog
from phiwarden.gateway.auditing import AuditWriter


class RecordingLog:
    """Stands in for the audit log: records each committed batch (events are plain strings here)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.fail = False
        self.closed = False
        self._lock = threading.Lock()

    def append_batch(self, events: Sequence[Any]) -> list[Any]:
        if self.fail:
            raise AuditError("disk full")
        with self._lock:
            self.batches.append(list(events))
        return []

    def committed(self) -> list[Any]:
        with self._lock:
            return [e for batch in self.batches for e in batch]

    def close(self) -> None:
        self.closed = True


def _writer(log: RecordingLog, linger: float) -> AuditWriter:
    return AuditWriter(cast(AuditLog, log), linger=linger)


def _wait_for(log: RecordingLog, count: int) -> list[Any]:
    deadline = time.monotonic() + 10
    while len(log.committed()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return log.committed()


def test_an_outcome_rides_along_with_the_next_decision_event() -> None:
    log = RecordingLog()
    writer = _writer(log, linger=60.0)  # longer than the test: only the decision can commit it
    writer.submit(cast(Any, "outcome-1"))
    asyncio.run(writer.write(cast(Any, "decision-2")))
    # Durable when write returned, in one commit with the outcome that was waiting.
    assert log.batches == [["outcome-1", "decision-2"]]
    writer.close()


def test_an_outcome_alone_is_committed_within_the_linger_time() -> None:
    log = RecordingLog()
    writer = _writer(log, linger=0.05)
    writer.submit(cast(Any, "outcome-1"))
    assert _wait_for(log, 1) == ["outcome-1"]
    writer.close()


def test_shutdown_commits_the_outcomes_still_lingering() -> None:
    log = RecordingLog()
    writer = _writer(log, linger=60.0)
    writer.submit(cast(Any, "outcome-1"))
    writer.submit(cast(Any, "outcome-2"))
    writer.close()
    assert log.committed() == ["outcome-1", "outcome-2"] and log.closed


def test_a_failing_store_fails_the_waiting_decision_event() -> None:
    log = RecordingLog()
    log.fail = True
    writer = _writer(log, linger=60.0)
    writer.submit(cast(Any, "outcome-1"))
    with pytest.raises(AuditError, match="disk full"):
        asyncio.run(writer.write(cast(Any, "decision-2")))
    assert [writer.healthy] == [False]  # (a list: mypy would keep the narrowing past the next write)
    log.fail = False
    asyncio.run(writer.write(cast(Any, "decision-3")))
    assert writer.healthy and log.committed() == ["decision-3"]
    writer.close()
