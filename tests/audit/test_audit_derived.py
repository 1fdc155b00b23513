"""The derived data verify recomputes from a record is exactly what `prepare` writes, and verification
in chunks locates edits, insertions and moves across chunk boundaries as one pass does."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification, Endpoint
from phiwarden.audit.derived import (
    SEARCH_COLUMNS,
    CategoryDetails,
    NotAnEvent,
    matches,
    search_columns,
    value_keys,
)
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.ledger import VALUE_EPOCH_BITS, prepare
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import make_event

HMAC_A = hashlib.sha256(b"518-42-7731").hexdigest()
HMAC_B = "f" * 64  # the top bit set: a negative key

VARIANTS = [
    make_event(0),
    make_event(1, dst_endpoint=None),
    make_event(2, dst_endpoint=Endpoint(hostname="api.openai.com")),
    make_event(3, dst_endpoint=Endpoint(name="", hostname="", ip="10.9.8.7")),
    make_event(4, dst_endpoint=Endpoint()),
    make_event(5, actor=replace(make_event(5).actor, client_tool=None)),
    make_event(6, actor=replace(make_event(6).actor, client_tool="")),
    make_event(7, status="failure"),
    make_event(8, status="unknown", message='quoted "text" \\ and\nlines, ünïcode'),
    make_event(
        9,
        classification=Classification(
            "internal", {"ssn": 2, "mrn": 1, "name": 3}, {"ssn": (HMAC_A, HMAC_B), "mrn": (HMAC_A,)}
        ),
    ),
    make_event(10, classification=Classification("public", {}, {"ssn": ()})),
    make_event(11, time=datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), uid="custom-uid"),
]


def _scanned(event: AuditEvent) -> tuple[dict[str, object], tuple[object, ...]]:
    """The OCSF object as stored, and a scanned row (seq, record, hash, columns) prepare writes."""
    prepared = prepare(event)
    ocsf = event.to_ocsf(sequence=1, logged_time_ms=1)
    return ocsf, (1, b"", b"", *prepared.columns)


@pytest.mark.parametrize("event", VARIANTS, ids=lambda e: e.correlation_id)
def test_search_columns_and_keys_are_what_prepare_writes(event: AuditEvent) -> None:
    ocsf, row = _scanned(event)
    assert search_columns(ocsf) == row[3:] == prepare(event).columns
    assert value_keys(ocsf) == set(prepare(event).value_keys)
    assert matches(ocsf, row, CategoryDetails())


@pytest.mark.parametrize("index", range(len(SEARCH_COLUMNS)))
def test_matches_sees_every_column(index: int) -> None:
    ocsf, row = _scanned(VARIANTS[9])
    changed = list(row)
    changed[3 + index] = 0 if isinstance(row[3 + index], str) else "x"
    assert not matches(ocsf, tuple(changed), CategoryDetails())


@pytest.mark.parametrize(
    "column", [",", ",ssn=2,", ",mrn=01,name=3,ssn=2,", ",ssn=2,mrn=1,name=3,", "mrn=1", 7]
)
def test_categories_that_prepare_would_not_write_never_match(column: object) -> None:
    ocsf, row = _scanned(VARIANTS[9])
    changed = (*row[:10], column, *row[11:])
    assert not matches(ocsf, changed, CategoryDetails())


def test_a_malformed_event_is_refused() -> None:
    ocsf, row = _scanned(VARIANTS[0])
    del ocsf["actor"]
    assert not matches(ocsf, row, CategoryDetails())
    with pytest.raises(NotAnEvent):
        search_columns(ocsf)


def test_the_category_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from phiwarden.audit import derived

    monkeypatch.setattr(derived, "_CATEGORIES_CACHED", 3)
    details = CategoryDetails()
    for count in range(10):
        assert details[f",ssn={count + 1},"] == [{"count": count + 1, "type": "ssn"}]
    assert len(details) <= 3


# Verification in chunks of 16 records, in one process and in two.


@pytest.fixture
def chunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditSettings:
    from phiwarden.audit import verify_scan

    monkeypatch.setattr(verify_scan, "CHUNK", 16)
    settings = AuditSettings(
        store=f"sqlite:///{tmp_path / 'audit.db'}",
        witnesses=(f"file://{tmp_path / 'witness.jsonl'}",),
        checkpoint_every=7,
    )
    with AuditLog.open(settings) as log:
        for start in range(0, 70, 7):
            log.append_batch(
                [
                    make_event(i, classification=Classification("restricted", {"ssn": 1}, {"ssn": (HMAC_A,)}))
                    for i in range(start, start + 7)
                ]
            )
    return settings


def _verify(settings: AuditSettings, workers: int) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=workers)
    finally:
        store.close()


def _db(settings: AuditSettings) -> sqlite3.Connection:
    return sqlite3.connect(str(settings.store).removeprefix("sqlite:///"), isolation_level=None)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seq", [15, 16, 17, 32, 70])
def test_an_edit_with_its_hash_recomputed_at_a_chunk_boundary(
    chunked: AuditSettings, workers: int, seq: int
) -> None:
    conn = _db(chunked)
    (record,) = conn.execute("SELECT record FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    record = record.replace(b'"tier":"restricted"', b'"tier":"public"')
    digest = hashlib.sha256(b"\x00" + record).digest()
    conn.execute(
        "UPDATE audit_events SET record = ?, hash = ?, tier = 'public' WHERE seq = ?", (record, digest, seq)
    )
    conn.close()
    report = _verify(chunked, workers)
    assert report.first_bad == seq and report.first_bad_range is None, report.problems


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seq", [16, 17, 33])
def test_a_move_at_a_chunk_boundary(chunked: AuditSettings, workers: int, seq: int) -> None:
    conn = _db(chunked)
    conn.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", (seq,))
    conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (seq, seq + 1))
    conn.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", (seq + 1,))
    conn.close()
    report = _verify(chunked, workers)
    assert report.first_bad == seq and report.first_bad_range is None


@pytest.mark.parametrize("workers", [1, 2])
def test_index_rows_of_another_chunk_are_not_reported(chunked: AuditSettings, workers: int) -> None:
    """Epoch boundaries and chunk boundaries differ: each row is compared once, by its own chunk."""
    report = _verify(chunked, workers)
    assert report.ok, report.problems
    conn = _db(chunked)
    conn.execute("DELETE FROM audit_value_hashes WHERE seq = 40")
    conn.execute(
        "INSERT INTO audit_value_hashes VALUES (?, 1, 50)", ((50 >> VALUE_EPOCH_BITS) + 1,)
    )  # misfiled
    conn.close()
    report = _verify(chunked, workers)
    assert [(p.seq, p.kind) for p in report.problems] == [(40, "value-index"), (50, "value-index")]


def _forge_without_actor(settings: AuditSettings, *, legacy: bool) -> None:
    """Event 70 loses its actor, its hash recomputed; `legacy` drops its committed columns too."""
    conn = _db(settings)
    (record,) = conn.execute("SELECT record FROM audit_events WHERE seq = 70").fetchone()
    body = json.loads(record)
    if legacy:
        del body["columns"]
    del body["event"]["actor"]
    forged = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    conn.execute(
        "UPDATE audit_events SET record = ?, hash = ? WHERE seq = 70",
        (forged, hashlib.sha256(b"\x00" + forged).digest()),
    )
    conn.close()


def test_a_record_that_is_not_an_event_is_malformed(chunked: AuditSettings) -> None:
    # A record without committed columns (as written before them) is read as an event, so an event
    # phiwarden could not have written is named as such.
    _forge_without_actor(chunked, legacy=True)
    report = _verify(chunked, 1)
    assert report.first_bad == 70 and "malformed" in {p.kind for p in report.problems}


def test_a_forged_record_with_committed_columns_is_located(chunked: AuditSettings) -> None:
    # With committed columns the event is not read: the forgery is located by its chain link.
    _forge_without_actor(chunked, legacy=False)
    report = _verify(chunked, 1)
    assert report.first_bad == 70 and not report.ok
