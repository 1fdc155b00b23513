"""Which vault key and key secret a gateway store was written with.

Vault rows are sealed with the vault key, API keys are kept as HMACs under the key secret. A replica
holding other ones can neither read the first nor verify the second, and a replica that generated its
own on start (the default when no key file exists) would silently split a shared store in two. So the
first process to open a store records each key's id (a one-way fingerprint) in the store's
`gateway_key_claims` table, as the audit store does for its keys, and every process after it refuses
to start with another key; none generates a key for a store that names one, or that already holds
vault rows or API keys made with a key it does not have.

The claims are read and written over a connection of their own, only when a process starts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from phiwarden.audit.redact import redact_url, scrub
from phiwarden.identity.keys import KEY_SECRET_ENV, KEY_SECRET_FILE_ENV, KeyStore
from phiwarden.transform.vault import VAULT_KEY_ENV, VAULT_KEY_FILE_ENV, VaultKeys

_TABLE = "gateway_key_claims"
# Serializes the first claims of replicas starting together (PostgreSQL).
_LOCK = 0x70687767636C61  # "phwgcla"
T = TypeVar("T")


class KeyClaimError(Exception):
    """The keys of this process are not those the store was written with (the message says what to do)."""


@dataclass(frozen=True, slots=True)
class KeyKind:
    what: str
    claim: str
    # The table holding what the key protects, and what those rows are, for the message.
    table: str
    rows: str
    env: str
    file_env: str
    setting: str


VAULT_KEY = KeyKind(
    "vault key", "vault_key_id", "gateway_vault", "pseudonymization vaults", VAULT_KEY_ENV,
    VAULT_KEY_FILE_ENV, "[gateway] vault_key",
)  # fmt: skip
KEY_SECRET = KeyKind(
    "gateway key secret", "key_secret_id", "gateway_keys", "API keys", KEY_SECRET_ENV,
    KEY_SECRET_FILE_ENV, "[gateway] key_secret",
)  # fmt: skip


def source(kind: KeyKind, configured: Path) -> tuple[str, bool]:
    """(where the key is taken from, whether it is there), as the loaders look it up."""
    if os.environ.get(kind.env):
        return f"${kind.env}", True
    named = os.environ.get(kind.file_env)
    path = Path(named) if named else configured
    return str(path), path.exists()


def vault_key_id(keys: VaultKeys) -> str:
    return hmac.new(keys.row, b"phiwarden vault key id", hashlib.sha256).hexdigest()[:16]


def key_secret_id(secret: bytes) -> str:
    return hmac.new(secret, b"phiwarden gateway key secret id", hashlib.sha256).hexdigest()[:16]


class Claims:
    """The store's key claims, over a connection of its own (`create`: the table is made if missing)."""

    def __init__(self, url: str, *, create: bool) -> None:
        self.url = url
        self.shown = redact_url(url)
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        try:
            if self.postgres:
                import psycopg

                self._conn: Any = psycopg.connect(url, autocommit=True, connect_timeout=10)
            else:
                path = Path(url.removeprefix("sqlite:///"))
                target = str(path) if create else f"file:{path}?mode=ro"
                self._conn = sqlite3.connect(target, uri=not create, timeout=30, isolation_level=None)
            if create:
                with self._transaction():
                    self._conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {_TABLE} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
        except KeyClaimError:
            raise
        except Exception as exc:
            raise KeyClaimError(f"cannot read the gateway store {self.shown}: {self.said(exc)}") from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.postgres:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                yield
        else:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def said(self, exc: BaseException) -> str:
        """A driver's error, first line, without the URL's secrets."""
        return scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.url)

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def has_table(self, name: str) -> bool:
        if self.postgres:
            return self._conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        found = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None

    def get(self, name: str) -> str | None:
        if not self.has_table(_TABLE):
            return None
        row = self._conn.execute(self._sql(f"SELECT value FROM {_TABLE} WHERE name = ?"), (name,)).fetchone()
        return None if row is None else str(row[0])

    def holds(self, table: str) -> bool:
        """Whether `table` exists and has a row."""
        return (
            self.has_table(table)
            and self._conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None
        )

    def claim(self, name: str, value: str) -> str:
        """Record `value` unless a value is recorded; the value in force."""
        with self._transaction():
            self._conn.execute(
                self._sql(f"INSERT INTO {_TABLE} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"),
                (name, value),
            )
            row = self._conn.execute(
                self._sql(f"SELECT value FROM {_TABLE} WHERE name = ?"), (name,)
            ).fetchone()
        return str(row[0])

    def close(self) -> None:
        self._conn.close()


def missing_problem(claims: Claims, kind: KeyKind, where: str) -> str | None:
    """Why a key that is not there may not be generated for this store, or None when it may."""
    recorded = claims.get(kind.claim)
    if recorded is not None:
        return (
            f"{claims.shown} was written with {kind.what} {recorded}, which this host does not have "
            f"({where}); give every replica the same {kind.what} ({kind.setting}, ${kind.env} or "
            f"${kind.file_env})"
        )
    if claims.holds(kind.table):
        return (
            f"{claims.shown} already holds {kind.rows} made with a {kind.what} this host does not have "
            f"({where}); a new one would split the store in two: give every replica the same {kind.what} "
            f"({kind.setting}, ${kind.env} or ${kind.file_env})"
        )
    return None


def mismatch_problem(claims: Claims, kind: KeyKind, where: str, key_id: str, recorded: str) -> str:
    return (
        f"{claims.shown} was written with {kind.what} {recorded}, but the {kind.what} here ({where}) is "
        f"{key_id}; give every replica the same {kind.what} ({kind.setting}, ${kind.env} or ${kind.file_env})"
    )


def vault_keys(url: str, configured: Path) -> VaultKeys:
    """The vault key for the store at `url`, generated only where that cannot split the store; its
    id claimed there. Raises `KeyClaimError`."""
    return _claimed(url, VAULT_KEY, configured, lambda: VaultKeys.load(configured), vault_key_id)


def key_secret(url: str, configured: Path) -> bytes:
    """The key secret for the store at `url`, as `vault_keys` does it."""
    return _claimed(url, KEY_SECRET, configured, lambda: KeyStore.load_secret(configured), key_secret_id)


def _claimed(
    url: str, kind: KeyKind, configured: Path, load: Callable[[], T], fingerprint: Callable[[T], str]
) -> T:
    claims = Claims(url, create=True)
    try:
        where, present = source(kind, configured)
        if not present:
            problem = missing_problem(claims, kind, where)
            if problem is not None:
                raise KeyClaimError(problem)
        key = load()
        key_id = fingerprint(key)
        recorded = claims.claim(kind.claim, key_id)
        if recorded != key_id:
            raise KeyClaimError(mismatch_problem(claims, kind, where, key_id, recorded))
        return key
    except Exception as exc:
        if not isinstance(exc, sqlite3.Error) and not type(exc).__module__.startswith("psycopg"):
            raise
        raise KeyClaimError(
            f"cannot record the {kind.what}'s id in {claims.shown}: {claims.said(exc)}"
        ) from None
    finally:
        claims.close()
