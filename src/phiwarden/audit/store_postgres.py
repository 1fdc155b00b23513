"""The shared store: PostgreSQL, for several gateway replicas writing one log.

Every append locks the single row of `audit_head` (`SELECT … FOR UPDATE`) in the transaction that
inserts the events and moves the head: replicas take turns, numbering stays dense and there is one
chain. The append returns after COMMIT with `synchronous_commit = on`. A lost connection fails the
operation in progress (an interrupted COMMIT says its outcome is unknown) and the next one
reconnects. The schema is the first one on the connection's search_path (set it per log with
`?options=-csearch_path%3Dmy_schema`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from phiwarden.audit.errors import AuditStoreError
from phiwarden.audit.ledger import EVENT_COLUMNS, VALUE_EPOCH_BITS
from phiwarden.audit.redact import redact_url, scrub
from phiwarden.audit.store import SCAN_COLUMNS, AuditStore, StoredRecord

CONNECT_TIMEOUT_S = 10
PAGE = 20_000
# Serializes schema creation between replicas starting at the same time.
_INIT_LOCK = 0x70686977  # "phiw"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id integer PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL,
    last_hash bytea NOT NULL,
    frontier bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq bigint PRIMARY KEY,
    time_ms bigint NOT NULL,
    uid text NOT NULL UNIQUE,
    actor text NOT NULL,
    tool text,
    destination text,
    action text NOT NULL,
    tier text NOT NULL,
    categories text NOT NULL,
    status text NOT NULL,
    operation text NOT NULL,
    record bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time_ms);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor);
CREATE INDEX IF NOT EXISTS audit_events_tool ON audit_events (tool);
CREATE INDEX IF NOT EXISTS audit_events_destination ON audit_events (destination);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (action);
CREATE TABLE IF NOT EXISTS audit_value_hashes (
    epoch bigint NOT NULL, hmac_key bigint NOT NULL, seq bigint NOT NULL, PRIMARY KEY (epoch, hmac_key, seq)
);
CREATE TABLE IF NOT EXISTS audit_nodes (
    level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size bigint PRIMARY KEY, statement text NOT NULL, published integer NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_prunes (last_seq bigint PRIMARY KEY, statement text NOT NULL);
CREATE TABLE IF NOT EXISTS audit_cursors (name text PRIMARY KEY, seq bigint NOT NULL)
"""


class PostgresStore(AuditStore):
    """Without `create` the log's tables must exist already; with `read_only` the session cannot
    write either, and a role with USAGE on the schema and SELECT on its tables is enough."""

    marker = "%s"

    def __init__(self, url: str, *, create: bool = True, read_only: bool = False) -> None:
        self.url = url
        self._display = redact_url(url)
        self._read_only = read_only
        self._conn = self._connect()
        try:
            if create and not read_only:
                with self._write() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_INIT_LOCK,))
                    schema = _target_schema(cur)
                    if schema:
                        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                    for statement in _SCHEMA.split(";"):
                        cur.execute(statement)
                    self._init_meta(cur)
            else:
                with self._read() as cur:
                    cur.execute("SELECT to_regclass('audit_meta')")
                    if cur.fetchone()[0] is None:
                        raise AuditStoreError(
                            f"no audit store at {self._display} (no audit tables on its search_path, or "
                            "none this role may use); check --store / [audit] store"
                        )
        except AuditStoreError:
            self._conn.close()
            raise
        self.check_schema()

    def _locked_head_sql(self) -> str:
        # The head row is re-read once the lock is granted; the checkpoint size in the same statement
        # may predate a checkpoint the previous holder stored, which at worst seals one extra.
        return super()._locked_head_sql() + " FOR UPDATE"

    def _connect(self) -> psycopg.Connection[Any]:
        """A new session, committing durably."""
        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=False)
        except psycopg.Error as exc:
            # The driver quotes parts of a URL it cannot parse, password included.
            raise AuditStoreError(
                f"cannot reach the audit store {self._display}: {scrub(_first_line(exc), self.url)}"
            ) from None
        try:
            with conn.transaction():
                conn.execute("SET synchronous_commit = on")
                if self._read_only:
                    conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            conn.close()
            raise AuditStoreError(f"{self._display}: cannot set up the session: {_first_line(exc)}") from None
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        """The session, opened anew once the last one was lost (backend terminated, server restart,
        failover): the operation that met the loss failed, and the next one runs."""
        if self._conn.broken:
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        conn = self._connection()
        committing = False
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
                committing = True
        except psycopg.Error as exc:
            if committing and conn.broken:
                # COMMIT was sent and no answer came back: it may have been applied. The caller
                # fails closed; retrying could record the batch twice.
                raise AuditStoreError(
                    f"{self._display}: the connection was lost while committing; the write may or may "
                    f"not have been applied: {_first_line(exc)}"
                ) from None
            raise AuditStoreError(
                f"{self._display}: write failed, nothing was written: {_first_line(exc)}"
            ) from None

    @contextmanager
    def _read(self) -> Iterator[Any]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise AuditStoreError(f"{self._display}: read failed: {_first_line(exc)}") from None

    def _insert_events(self, cur: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        with cur.copy(f"COPY audit_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def value_index_in_order(self, first: int, last: int, low: int, high: int) -> tuple[str, str]:
        order = "ORDER BY seq, hmac_key < 0, hmac_key"
        with self._read() as cur:
            cur.execute(
                f"SELECT string_agg(hmac_key::text, ',' {order}), string_agg(seq::text, ',' {order}) "
                "FROM audit_value_hashes WHERE epoch >= %s AND epoch <= %s "
                "AND ((seq >= %s AND seq <= %s) OR seq < %s OR seq > %s "
                f"OR epoch <> (seq >> {VALUE_EPOCH_BITS}))",
                (first >> VALUE_EPOCH_BITS, last >> VALUE_EPOCH_BITS, first, last, low, high),
            )
            keys, sequences = cur.fetchone()
        return keys or "", sequences or ""

    def records(
        self, start: int = 1, end: int | None = None, *, limit: int | None = None
    ) -> Iterator[StoredRecord]:
        last = end if end is not None else 2**63 - 1
        position = start
        remaining = limit if limit is not None else 2**63 - 1
        while position <= last and remaining > 0:
            page = min(PAGE, remaining)
            with self._read() as cur:
                cur.execute(
                    "SELECT seq, record, hash FROM audit_events "
                    "WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT %s",
                    (position, last, page),
                )
                rows = cur.fetchall()
            for seq, record, digest in rows:
                yield StoredRecord(seq, bytes(record), bytes(digest))
            if len(rows) < page:
                return
            remaining -= len(rows)
            position = rows[-1][0] + 1

    def rows(self, start: int, end: int) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor in binary format streams the records without hex-decoding bytea.
        conn = self._connection()
        try:
            with (
                conn.transaction(),
                conn.cursor(name=f"phiwarden_scan_{uuid.uuid4().hex}", binary=True) as cur,
            ):
                cur.itersize = PAGE
                cur.execute(
                    f"SELECT {', '.join(SCAN_COLUMNS)} FROM audit_events "
                    "WHERE seq >= %s AND seq <= %s ORDER BY seq",
                    (start, end),
                )
                yield from cur
        except psycopg.Error as exc:
            raise AuditStoreError(f"{self._display}: read failed: {_first_line(exc)}") from None

    def close(self) -> None:
        self._conn.close()


def _target_schema(cur: Any) -> str | None:
    """The first schema on the search_path, which CREATE TABLE uses (it must exist first)."""
    cur.execute("SHOW search_path")
    for part in str(cur.fetchone()[0]).split(","):
        name = part.strip().strip('"')
        if name and name != "$user":
            return name
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
