"""The gateway's shared state: pseudonymization vaults, API keys, conversation pins and which
conversation an upstream response belongs to.

SQLite by default, in `gateway.db` beside the audit database; PostgreSQL (the audit store's database,
tables prefixed `gateway_`) when several replicas run behind a load balancer. Only sealed vault rows,
key hashes, pins (keyed and anchored by digests) and sealed conversation names (keyed by a digest of
identity and response id) are stored: no raw value, no key, no vendor credential.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phiwarden.audit.paths import create_private_database
from phiwarden.audit.redact import redact_url, scrub
from phiwarden.identity.keys import KeyRecord, with_scopes
from phiwarden.transform.vault import SealedRow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_vault (
    row_id TEXT PRIMARY KEY, identity_id TEXT NOT NULL, version INTEGER NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, nonce BYTEA NOT NULL, ciphertext BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_vault_expiry ON gateway_vault (expires_at);
CREATE TABLE IF NOT EXISTS gateway_keys (
    key_id TEXT PRIMARY KEY, identity TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    digest TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION, scopes TEXT NOT NULL, rotated_from TEXT
);
CREATE TABLE IF NOT EXISTS gateway_conversation_pins (
    row_id TEXT NOT NULL, anchor TEXT NOT NULL, anchor_items INTEGER NOT NULL, destination TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (row_id, anchor)
);
CREATE INDEX IF NOT EXISTS gateway_conversation_pins_expiry ON gateway_conversation_pins (expires_at);
CREATE TABLE IF NOT EXISTS gateway_responses (
    row_id TEXT PRIMARY KEY, identity_id TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    nonce BYTEA NOT NULL, ciphertext BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_responses_expiry ON gateway_responses (expires_at);
"""
# Pins before anchors (one per conversation row) keep applying to their whole conversation until they
# expire; the old table is emptied, not dropped, so that replicas not yet upgraded keep working.
_LEGACY_PINS = (
    "INSERT INTO gateway_conversation_pins (row_id, anchor, anchor_items, destination, expires_at) "
    "SELECT row_id, '', 0, destination, expires_at FROM gateway_pins WHERE true ON CONFLICT DO NOTHING",
    "DELETE FROM gateway_pins",
)


@dataclass(frozen=True, slots=True)
class Pin:
    """A conversation routed to `destination`. A conversation named by its opening is pinned only
    for requests that repeat the routed request's first `anchor_items` items (digest `anchor`)."""

    destination: str
    anchor: str = ""
    anchor_items: int = 0


class StoreError(Exception):
    """The gateway store cannot be read or written: requests that need it fail closed."""


class GatewayStore:
    """One connection guarded by a lock; statements are short, so contention is brief."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        try:
            if self.postgres:
                import psycopg

                self._conn: Any = psycopg.connect(url, autocommit=True, connect_timeout=10)
                schema = _SCHEMA
            else:
                path = Path(url.removeprefix("sqlite:///"))
                create_private_database(path)
                self._conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA busy_timeout = 30000")
                # Vault rows are derived data (surrogates are re-derived from the values), keys and pins
                # are small: a commit lost to power failure costs nothing, so no fsync per commit.
                self._conn.execute("PRAGMA synchronous = NORMAL")
                schema = _SCHEMA.replace("BYTEA", "BLOB").replace("DOUBLE PRECISION", "REAL")
            with self._lock:
                for statement in schema.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                if self._has_table("gateway_pins"):
                    for statement in _LEGACY_PINS:
                        self._conn.execute(statement)
        except Exception as exc:
            # psycopg quotes a malformed password back: the message loses the URL's secrets too.
            raise StoreError(
                f"cannot open the gateway store {redact_url(url)}: {scrub(str(exc), url)}"
            ) from None

    def _has_table(self, name: str) -> bool:
        if self.postgres:
            return self._conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        found = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._conn
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"gateway store: {exc}") from None
            except Exception as exc:
                if type(exc).__module__.startswith("psycopg"):
                    raise StoreError(f"gateway store: {exc}") from None
                raise

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        with self._cursor() as conn:
            return conn.execute(self._sql(statement), params)

    def _fetchone(self, statement: str, params: Sequence[Any] = ()) -> Any:
        with self._cursor() as conn:
            return conn.execute(self._sql(statement), params).fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- vault --------------------------------------------------------------------------------------

    def vault_load(self, row_id: str, now: float) -> SealedRow | None:
        row = self._fetchone(
            "SELECT version, nonce, ciphertext, expires_at FROM gateway_vault "
            "WHERE row_id = ? AND expires_at > ?",
            (row_id, now),
        )
        return None if row is None else SealedRow(int(row[0]), bytes(row[1]), bytes(row[2]), float(row[3]))

    def vault_save(self, row_id: str, identity_id: str, expected_version: int, row: SealedRow) -> bool:
        with self._cursor() as conn:
            if expected_version == 0:
                # A new row, or one that expired (its entries are gone with it).
                conn.execute(
                    self._sql("DELETE FROM gateway_vault WHERE row_id = ? AND expires_at <= ?"),
                    (row_id, time.time()),
                )
                cursor = conn.execute(
                    self._sql(
                        "INSERT INTO gateway_vault (row_id, identity_id, version, expires_at, nonce, "
                        "ciphertext) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (row_id) DO NOTHING"
                    ),
                    (row_id, identity_id, row.version, row.expires_at, row.nonce, row.ciphertext),
                )
            else:
                cursor = conn.execute(
                    self._sql(
                        "UPDATE gateway_vault SET version = ?, expires_at = ?, nonce = ?, ciphertext = ? "
                        "WHERE row_id = ? AND version = ? AND identity_id = ?"
                    ),
                    (
                        row.version,
                        row.expires_at,
                        row.nonce,
                        row.ciphertext,
                        row_id,
                        expected_version,
                        identity_id,
                    ),
                )
            return bool(cursor.rowcount == 1)

    def vault_purge(self, now: float) -> int:
        cursor = self._execute("DELETE FROM gateway_vault WHERE expires_at <= ?", (now,))
        self._execute("DELETE FROM gateway_conversation_pins WHERE expires_at <= ?", (now,))
        self._execute("DELETE FROM gateway_responses WHERE expires_at <= ?", (now,))
        return int(cursor.rowcount or 0)

    # --- pins ---------------------------------------------------------------------------------------

    def pin_get(self, row_id: str, now: float) -> list[Pin]:
        with self._cursor() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT destination, anchor, anchor_items FROM gateway_conversation_pins "
                    "WHERE row_id = ? AND expires_at > ? ORDER BY anchor_items"
                ),
                (row_id, now),
            ).fetchall()
        return [Pin(str(row[0]), str(row[1]), int(row[2])) for row in rows]

    def pin_set(
        self, row_id: str, destination: str, expires_at: float, *, anchor: str = "", anchor_items: int = 0
    ) -> None:
        self._execute(
            "INSERT INTO gateway_conversation_pins (row_id, anchor, anchor_items, destination, expires_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (row_id, anchor) DO UPDATE SET "
            "destination = excluded.destination, expires_at = excluded.expires_at",
            (row_id, anchor, anchor_items, destination, expires_at),
        )

    # --- responses ----------------------------------------------------------------------------------

    def response_load(self, row_id: str, now: float) -> SealedRow | None:
        row = self._fetchone(
            "SELECT nonce, ciphertext, expires_at FROM gateway_responses WHERE row_id = ? AND expires_at > ?",
            (row_id, now),
        )
        return None if row is None else SealedRow(0, bytes(row[0]), bytes(row[1]), float(row[2]))

    def response_save(self, row_id: str, identity_id: str, row: SealedRow) -> None:
        """Kept (or replaced: a response id is given once, so only a retried record rewrites it)."""
        self._execute(
            "INSERT INTO gateway_responses (row_id, identity_id, expires_at, nonce, ciphertext) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (row_id) DO UPDATE SET expires_at = excluded.expires_at, "
            "nonce = excluded.nonce, ciphertext = excluded.ciphertext",
            (row_id, identity_id, row.expires_at, row.nonce, row.ciphertext),
        )

    # --- keys ---------------------------------------------------------------------------------------

    def key_insert(self, record: KeyRecord) -> None:
        self._execute(
            "INSERT INTO gateway_keys (key_id, identity, kind, label, digest, created_at, expires_at, "
            "revoked_at, scopes, rotated_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.key_id, record.identity, record.kind, record.label, record.digest, record.created_at,
                record.expires_at, record.revoked_at, record.scopes_json(), record.rotated_from,
            ),
        )  # fmt: skip

    def key_get(self, key_id: str) -> KeyRecord | None:
        row = self._fetchone(f"SELECT {_KEY_COLUMNS} FROM gateway_keys WHERE key_id = ?", (key_id,))
        return None if row is None else _key(row)

    def key_list(self) -> list[KeyRecord]:
        with self._cursor() as conn:
            rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM gateway_keys ORDER BY created_at").fetchall()
        return [_key(row) for row in rows]

    def key_revoke(self, key_id: str, when: float) -> bool:
        cursor = self._execute(
            "UPDATE gateway_keys SET revoked_at = ? "
            "WHERE key_id = ? AND (revoked_at IS NULL OR revoked_at > ?)",
            (when, key_id, when),
        )
        if cursor.rowcount == 1:
            return True
        return self.key_get(key_id) is not None


_KEY_COLUMNS = (
    "key_id, identity, kind, label, digest, created_at, expires_at, revoked_at, scopes, rotated_from"
)


def _key(row: Sequence[Any]) -> KeyRecord:
    record = KeyRecord(
        key_id=row[0],
        identity=row[1],
        kind=row[2],
        label=row[3],
        digest=row[4],
        created_at=float(row[5]),
        expires_at=None if row[6] is None else float(row[6]),
        revoked_at=None if row[7] is None else float(row[7]),
        rotated_from=row[9],
    )
    return with_scopes(record, row[8])


def default_store_url(audit_url: str) -> str:
    """Beside the audit store: the same PostgreSQL database, or gateway.db next to audit.db."""
    if audit_url.startswith(("postgresql://", "postgres://")):
        return audit_url
    path = Path(audit_url.removeprefix("sqlite:///"))
    return f"sqlite:///{(path.parent / 'gateway.db').as_posix()}"
