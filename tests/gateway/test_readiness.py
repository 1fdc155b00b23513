"""/readyz re-checks a failed audit store or gateway store by itself (at most once a second), so a
worker with nothing to write does not stay unready once the store is back."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

from phiwarden.audit import AuditError
from phiwarden.gateway.auditing import PROBE_INTERVAL_SECONDS
from tests.gateway.conftest import Gateway

MESSAGE = {"model": "claude-test-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _post(gw: Gateway) -> httpx.Response:
    return httpx.post(gw.url + "/v1/messages", json=MESSAGE, headers={"x-api-key": gw.key}, timeout=20)


def _ready(gw: Gateway) -> httpx.Response:
    return httpx.get(gw.url + "/readyz", timeout=10)


def test_the_audit_store_is_probed_by_a_write_at_most_once_a_second(
    make_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw: Gateway = make_gateway()
    writes: list[int] = []

    def full_disk(events: Any) -> Any:
        writes.append(len(events))
        raise AuditError("disk full")

    monkeypatch.setattr(gw.runtime.writer.log, "append_batch", full_disk)
    assert _post(gw).status_code == 503
    assert gw.provider.received == []
    time.sleep(PROBE_INTERVAL_SECONDS)
    answer = _ready(gw)
    assert answer.status_code == 503 and answer.json()["problems"] == ["audit store failing"]
    tried, since = len(writes), time.monotonic()
    assert _ready(gw).status_code == 503
    if time.monotonic() - since < PROBE_INTERVAL_SECONDS:
        assert len(writes) == tried  # within the second: no second probe
    monkeypatch.undo()
    time.sleep(PROBE_INTERVAL_SECONDS)
    assert _ready(gw).json() == {"status": "ready"}  # no request in between
    [probe] = [e for e in gw.events() if e.operation == "phiwarden.gateway.readiness"]
    assert probe.decision.rule == "audit-store-probe" and probe.status == "success"
    assert _ready(gw).status_code == 200
    assert [e.operation for e in gw.events()].count("phiwarden.gateway.readiness") == 1  # healthy: no probe


def test_a_store_whose_events_table_is_gone_and_back(make_gateway: Any) -> None:
    """The reviewer's PostgreSQL case (the events table renamed, then renamed back), on SQLite."""
    gw: Gateway = make_gateway()
    assert _post(gw).status_code == 200
    database = sqlite3.connect(gw.root / "data" / "audit.db", isolation_level=None)
    database.execute("ALTER TABLE audit_events RENAME TO audit_events_away")
    try:
        assert _post(gw).status_code == 503
        assert _ready(gw).status_code == 503
    finally:
        database.execute("ALTER TABLE audit_events_away RENAME TO audit_events")
        database.close()
    time.sleep(PROBE_INTERVAL_SECONDS)
    assert _ready(gw).status_code == 200
    assert _post(gw).status_code == 200


def test_the_gateway_store_is_rechecked(make_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gw: Gateway = make_gateway()
    store = gw.runtime.store
    read = store.vault_load
    calls: list[bool] = []
    down = [True]

    def flaky(*args: Any) -> Any:
        calls.append(down[0])
        if down[0]:
            raise OSError("store unreachable")
        return read(*args)

    monkeypatch.setattr(store, "vault_load", flaky)
    answer = _ready(gw)
    since = time.monotonic()
    assert answer.status_code == 503 and answer.json()["problems"] == ["gateway store: OSError"]
    down[0] = False
    answer = _ready(gw)
    if time.monotonic() - since < PROBE_INTERVAL_SECONDS:
        assert answer.status_code == 503 and calls == [True]  # the last check's answer, within the second
    time.sleep(PROBE_INTERVAL_SECONDS)
    assert _ready(gw).status_code == 200 and calls[-1] is False
