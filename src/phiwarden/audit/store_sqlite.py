"""The embedded store: one SQLite file in WAL mode, no set-up.

Appends run in `BEGIN IMMEDIATE` transactions (one writer at a time across processes) and commit with
`synchronous=FULL`, so a returned append survives a crash or power loss, and a process killed in the
middle of one leaves nothing behind: SQLite rolls the unfinished transaction back on the next open.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

if sys.platform != "win32":
    import fcntl

from phiwarden.audit.errors import AuditStoreError
from phiwarden.audit.ledger import EVENT_COLUMNS
from phiwarden.audit.paths import create_private_database
from phiwarden.audit.store import SCAN_COLUMNS, AuditStore, StoredRecord

BUSY_TIMEOUT_MS = 30_000
SCAN_MMAP_BYTES = 1 << 30
PAGE_SIZE = 8192
# The WAL is folded back into the database at about 40 MB, whatever the page size.
WAL_CHECKPOINT_BYTES = 40 << 20
# Polling of the writers' lock file: the first retry after 50 us, doubling to at most 1 ms.
LOCK_POLL_FIRST_S = 50e-6
LOCK_POLL_MAX_S = 1e-3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    frontier BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    actor TEXT NOT NULL,
    tool TEXT,
    destination TEXT,
    action TEXT NOT NULL,
    tier TEXT NOT NULL,
    categories TEXT NOT NULL,
    status TEXT NOT NULL,
    operation TEXT NOT NULL,
    record BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time_ms);
CREATE INDEX IF NOT EXISTS audit_events_actor ON audit_events (actor);
CREATE INDEX IF NOT EXISTS audit_events_tool ON audit_events (tool);
CREATE INDEX IF NOT EXISTS audit_events_destination ON audit_events (destination);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (action);
CREATE TABLE IF NOT EXISTS audit_value_hashes (
    epoch INTEGER NOT NULL, hmac_key INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (epoch, hmac_key, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY, statement TEXT NOT NULL, published INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_prunes (last_seq INTEGER PRIMARY KEY, statement TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""

_INSERT = (
    f"INSERT INTO audit_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
# The search columns as SQLite writes their JSON list, less its closing bracket: for the columns of
# phiwarden's events, the bytes a record's columns member starts with (canonical.py).
_COLUMNS_JSON = f"CAST(rtrim(json_array({', '.join(SCAN_COLUMNS[3:])}), ']') AS BLOB)"
_SCAN = (
    f"SELECT seq, record, hash, {_COLUMNS_JSON} FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq"
)
# SQLite keeps whatever type is written into a column, and json_array() refuses a BLOB: where a
# column holds one, the scan goes on with this, which gives no JSON text for such a row, so that
# verify compares its columns by value (a BLOB is never equal to the text or number it spells).
_SCAN_ANY_TYPE = (
    f"SELECT seq, record, hash, CASE WHEN 'blob' IN ({', '.join(f'typeof({c})' for c in SCAN_COLUMNS[3:])}) "
    f"THEN NULL ELSE {_COLUMNS_JSON} END FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq"
)


class SQLiteStore(AuditStore):
    columns_as_json = True

    """With `read_only`, the database is opened read-only and must exist: nothing is created or
    written, so read access to the file (a read-only mount, an auditor's account) is enough."""

    def __init__(self, path: Path, *, create: bool = True, read_only: bool = False) -> None:
        self.path = path
        self.url = f"sqlite:///{path.as_posix()}"
        self._writer_lock: int | None = None
        if (read_only or not create) and not path.exists():
            raise AuditStoreError(f"no audit store at {path}; check --store / [audit] store")
        if read_only:
            self._conn = _connect_read_only(path)
            self._check_tables()
            return
        try:
            create_private_database(path)
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Only a new database takes it (before WAL). 8 KB pages hold five ~1.5 KB rows where 4 KB
            # pages hold two and leave a quarter empty: fewer bytes and WAL frames per committed event.
            self._conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AuditStoreError(f"{path}: cannot switch to WAL mode (got {mode})")
            # FULL: the WAL is synced at every commit, so a returned append is on disk.
            self._conn.execute("PRAGMA synchronous = FULL")
            # Index pages stay in memory, and the WAL is folded back in fewer, larger steps.
            self._conn.execute("PRAGMA cache_size = -65536")
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_BYTES // PAGE_SIZE}")
            self._writer_lock = _open_writer_lock(path)
            with self._write() as cur:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                self._init_meta(cur)
        except (sqlite3.Error, OSError) as exc:
            raise AuditStoreError(f"cannot open the audit store {path}: {exc}") from None
        self.check_schema()

    def _check_tables(self) -> None:
        with self._read() as cur:
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'")
            found = cur.fetchone()
        if found is None:
            self._conn.close()
            raise AuditStoreError(f"{self.path} is not an audit store (it has no audit tables)")
        self.check_schema()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._writers_in_turn():
            cur = self._cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise AuditStoreError(f"{self.path}: cannot start a write: {exc}") from None
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                # The transaction may already be gone: SQLite rolls back by itself on some errors.
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise AuditStoreError(f"{self.path}: write failed, nothing was written: {exc}") from None
                raise
            finally:
                cur.close()

    @contextmanager
    def _writers_in_turn(self) -> Iterator[None]:
        """Hold the writers' lock file around a write transaction.

        SQLite's busy handler sleeps 1, 2, 5, … up to 100 ms between tries, so a writer queued behind
        others keeps sleeping long after the store is free. Writers of this store first take an
        exclusive lock on a file beside it, polled at most every millisecond; BEGIN IMMEDIATE then
        rarely waits. The lock only orders writers: SQLite's lock still guards the data, and the OS
        drops the lock of a killed process.
        """
        fd = self._writer_lock
        locked = fd is not None and self._take_writer_lock(fd)
        try:
            yield
        finally:
            if locked and fd is not None and sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _take_writer_lock(self, fd: int) -> bool:
        """True once held; False where the file system has no flock (SQLite's lock alone orders)."""
        if sys.platform == "win32":
            return False
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = LOCK_POLL_FIRST_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AuditStoreError(
                        f"{self.path}: another writer has held the store for {BUSY_TIMEOUT_MS // 1000} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, LOCK_POLL_MAX_S)
            except OSError:
                return False

    @contextmanager
    def _read(self) -> Iterator[Any]:
        cur = self._cursor()
        try:
            yield cur
        except sqlite3.Error as exc:
            raise AuditStoreError(f"{self.path}: read failed: {exc}") from None
        finally:
            cur.close()

    def _cursor(self) -> sqlite3.Cursor:
        try:
            return self._conn.cursor()
        except sqlite3.Error as exc:
            raise AuditStoreError(f"{self.path}: {exc}") from None

    def _insert_events(self, cur: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        cur.executemany(_INSERT, rows)

    def records(
        self, start: int = 1, end: int | None = None, *, limit: int | None = None
    ) -> Iterator[StoredRecord]:
        last = end if end is not None else 2**63 - 1
        with self._read() as cur:
            cur.execute(
                "SELECT seq, record, hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                (start, last, -1 if limit is None else limit),
            )
            cur.arraysize = 4096
            while True:
                try:
                    rows = cur.fetchmany()
                except sqlite3.Error as exc:
                    raise AuditStoreError(f"{self.path}: read failed: {exc}") from None
                if not rows:
                    return
                for seq, record, digest in rows:
                    if type(record) is bytes and type(digest) is bytes:
                        yield StoredRecord(seq, record, digest)
                    else:
                        # Someone wrote text or a number here; verification must see it as a change.
                        yield StoredRecord(seq, _as_bytes(record), _as_bytes(digest))

    def rows(self, start: int, end: int) -> Iterator[tuple[Any, ...]]:
        # Reads through a memory map run twice as fast on a long scan; only this connection uses it.
        self._conn.execute(f"PRAGMA mmap_size = {SCAN_MMAP_BYTES}")
        with self._read() as cur:
            position = start
            try:
                for row in cur.execute(_SCAN, (start, end)):
                    position = row[0] + 1
                    yield row
            except sqlite3.OperationalError:
                # The guard costs ~0.3 us a row, so it is taken only from the row that needs it on.
                yield from cur.execute(_SCAN_ANY_TYPE, (position, end))

    def close(self) -> None:
        self._conn.close()
        if self._writer_lock is not None:
            os.close(self._writer_lock)
            self._writer_lock = None


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the database (mode=ro).

    In WAL mode a reader needs the -shm file beside the database. When no connection has the
    database open there is no -wal or -shm file, and in a read-only directory the reader cannot
    create them; no writer can then be using the database, whose file alone holds every committed
    transaction, so it is read as immutable (no locks, no -shm).
    """
    uri = path.resolve().as_uri()
    try:
        conn = _connect(f"{uri}?mode=ro")
        try:
            # The first read opens the WAL index, which is where a read-only directory fails.
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error:
            conn.close()
            raise
        return conn
    except sqlite3.Error as exc:
        wal = Path(f"{path}-wal")
        if exc.sqlite_errorname != "SQLITE_READONLY_DIRECTORY" or (wal.exists() and wal.stat().st_size):
            raise AuditStoreError(f"cannot open the audit store {path} for reading: {exc}") from None
    try:
        return _connect(f"{uri}?immutable=1")
    except sqlite3.Error as exc:
        raise AuditStoreError(f"cannot open the audit store {path} for reading: {exc}") from None


def _connect(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def _open_writer_lock(path: Path) -> int | None:
    """The descriptor of the writers' lock file beside the database, or None where there is none.

    Without it (Windows, a read-only directory) writers still exclude each other through SQLite.
    """
    if sys.platform == "win32":
        return None
    try:
        return os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
