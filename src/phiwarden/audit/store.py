"""The store behind the log: the operations both back ends share, on top of a small SQL dialect.

A store keeps the sealed records (`record` is the exact canonical bytes that were hashed), the head
(size, last chain hash, Merkle frontier), cached interior nodes, signed checkpoints and prune records,
forwarding cursors, and columns for search. Everything but the records and signed statements is
derived data that verification recomputes rather than trusts.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from phiwarden.audit.canonical import GENESIS_HASH
from phiwarden.audit.checkpoint import (
    Checkpoint,
    PruneRecord,
    Signed,
    SignedCheckpoint,
    SignedPrune,
    parse_checkpoint,
    parse_signed,
)
from phiwarden.audit.errors import AuditConfigError, AuditStoreError
from phiwarden.audit.ledger import (
    EVENT_COLUMNS,
    VALUE_EPOCH_BITS,
    Head,
    Prepared,
    Receipt,
    seal,
    value_key,
)
from phiwarden.audit.merkle import CompletedNode, Frontier

SCHEMA_VERSION = "2"
# What verification reads of each event: the sealed record and its hash, then the search columns.
SCAN_COLUMNS = ("seq", "record", "hash", *EVENT_COLUMNS[1:-2])


# Offered the head after a batch and the size of the newest stored checkpoint; returns a signed
# checkpoint of that head when one is due.
Sealer = Callable[[Head, int], SignedCheckpoint | None]


class Appended(NamedTuple):
    receipts: list[Receipt]
    # The checkpoint stored with the batch, to publish now that it is committed.
    checkpoint: SignedCheckpoint | None
    # The size of the newest stored checkpoint after the batch.
    sealed_size: int


class StoredRecord(NamedTuple):
    seq: int
    record: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Query:
    actor: str | None = None
    tool: str | None = None
    destination: str | None = None
    action: str | None = None
    category: str | None = None
    tier: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = self.clauses()
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def clauses(self) -> tuple[list[str], list[Any]]:
        """The SQL conditions of the filter (with "?" markers) and their parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("actor", self.actor),
            ("tool", self.tool),
            ("destination", self.destination),
            ("action", self.action),
            ("tier", self.tier),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.category is not None:
            # The column reads ",name=1,ssn=2,"; a category's % and _ match only themselves.
            clauses.append("categories LIKE ? ESCAPE '!'")
            escaped = self.category.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params.append(f"%,{escaped}=%")
        if self.since_ms is not None:
            clauses.append("time_ms >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("time_ms < ?")
            params.append(self.until_ms)
        return clauses, params


class AuditStore(ABC):
    """One log in one database. Not thread-safe: `AuditLog` serializes access."""

    url: str
    # Parameter marker of the driver; queries are written with "?".
    marker = "?"
    # Whether `rows` gives the search columns as the JSON text of their list without its closing
    # bracket (what a record's columns member starts with) instead of the columns themselves.
    columns_as_json = False

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A cursor in a transaction that excludes other writers; committed durably on success."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A cursor for reads."""

    @abstractmethod
    def records(
        self, start: int = 1, end: int | None = None, *, limit: int | None = None
    ) -> Iterator[StoredRecord]:
        """Records with start <= seq <= end, in order, at most `limit` of them."""

    @abstractmethod
    def rows(self, start: int, end: int) -> Iterator[tuple[Any, ...]]:
        """SCAN_COLUMNS of start <= seq <= end in order, as the driver returns them: verification's
        hot loop (it compares the search columns with the record's, so they come in the same read;
        as one JSON text where `columns_as_json`)."""

    def stored_columns(self, seq: int) -> tuple[Any, ...] | None:
        """The search columns stored for event `seq` (EVENT_COLUMNS from time_ms to operation)."""
        with self._read() as cur:
            cur.execute(
                self._sql(f"SELECT {', '.join(EVENT_COLUMNS[1:-2])} FROM audit_events WHERE seq = ?"), (seq,)
            )
            row = cur.fetchone()
        return None if row is None else tuple(row)

    def value_index_rows(self, first: int, last: int, low: int, high: int) -> list[tuple[int, int, int]]:
        """(epoch, HMAC key, seq) rows of the value-hash index in the epochs of events first..last that
        are theirs or no event's (rows of events low..high outside first..last, under their own epoch,
        belong to another chunk of verification), as the driver returns them: integers."""
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT epoch, hmac_key, seq FROM audit_value_hashes WHERE epoch >= ? AND epoch <= ? "
                    "AND ((seq >= ? AND seq <= ?) OR seq < ? OR seq > ? "
                    f"OR epoch <> (seq >> {VALUE_EPOCH_BITS}))"
                ),
                (first >> VALUE_EPOCH_BITS, last >> VALUE_EPOCH_BITS, first, last, low, high),
            )
            return [_index_row(row) for row in cur.fetchall()]

    def value_index_in_order(self, first: int, last: int, low: int, high: int) -> tuple[str, str]:
        """The rows `value_index_rows` selects, as two comma-separated lists (keys, sequences) ordered
        by sequence, then key as an unsigned number: the order of the HMAC prefixes the records commit
        to, so verification compares two strings instead of building a set of rows."""
        with self._read() as cur:
            cur.execute(
                self._sql(
                    # A key or sequence stored as another type (SQLite keeps what is written: the
                    # BLOB of a key's digits prints as the key, but `lookup` never finds it) is
                    # listed as 'x', which no record implies.
                    "SELECT group_concat(iif(typeof(hmac_key) = 'integer', hmac_key, 'x'), ','), "
                    "group_concat(iif(typeof(seq) = 'integer', seq, 'x'), ',') FROM (SELECT hmac_key, seq "
                    "FROM audit_value_hashes WHERE epoch >= ? AND epoch <= ? "
                    "AND ((seq >= ? AND seq <= ?) OR seq < ? OR seq > ? "
                    f"OR epoch <> (seq >> {VALUE_EPOCH_BITS})) ORDER BY seq, hmac_key < 0, hmac_key) AS rows"
                ),
                (first >> VALUE_EPOCH_BITS, last >> VALUE_EPOCH_BITS, first, last, low, high),
            )
            keys, sequences = cur.fetchone()
        return keys or "", sequences or ""

    def value_index_outside(self, low: int, high: int, limit: int) -> list[tuple[int, int, int]]:
        """At most `limit` rows of the value-hash index whose epoch is outside low..high."""
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT epoch, hmac_key, seq FROM audit_value_hashes WHERE epoch < ? "
                    "UNION ALL SELECT epoch, hmac_key, seq FROM audit_value_hashes WHERE epoch > ? LIMIT ?"
                ),
                (low, high, limit),
            )
            return [_index_row(row) for row in cur.fetchall()]

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _insert_events(self, cur: Any, rows: Sequence[tuple[Any, ...]]) -> None: ...

    def _locked_head_sql(self) -> str:
        # The newest checkpoint's size comes with the head: whether one is due costs no query.
        return (
            "SELECT size, last_hash, frontier, (SELECT MAX(tree_size) FROM audit_checkpoints) "
            "FROM audit_head WHERE id = 1"
        )

    def _sql(self, text: str) -> str:
        return text if self.marker == "?" else text.replace("?", self.marker)

    # -- identity -------------------------------------------------------------------------------
    def _init_meta(self, cur: Any) -> None:
        for key, value in (("schema_version", SCHEMA_VERSION), ("log_id", str(uuid.uuid4()))):
            cur.execute(
                self._sql("INSERT INTO audit_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"),
                (key, value),
            )
        cur.execute(
            self._sql(
                "INSERT INTO audit_head (id, size, last_hash, frontier) VALUES (1, 0, ?, ?) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            (GENESIS_HASH, b""),
        )

    def meta(self, key: str) -> str | None:
        with self._read() as cur:
            cur.execute(self._sql("SELECT value FROM audit_meta WHERE key = ?"), (key,))
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def claim_meta(self, key: str, value: str) -> str:
        """Set `key` unless it is set; returns the value in force."""
        with self._write() as cur:
            cur.execute(
                self._sql("INSERT INTO audit_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"),
                (key, value),
            )
            cur.execute(self._sql("SELECT value FROM audit_meta WHERE key = ?"), (key,))
            return str(cur.fetchone()[0])

    @property
    def log_id(self) -> str:
        value = self.meta("log_id")
        if value is None:
            raise AuditConfigError(f"{self.url}: not an audit store (no log id)")
        return value

    def check_schema(self) -> None:
        version = self.meta("schema_version")
        if version != SCHEMA_VERSION:
            raise AuditConfigError(
                f"{self.url}: audit schema version {version!r}, this phiwarden reads {SCHEMA_VERSION!r}"
            )

    # -- appending ------------------------------------------------------------------------------
    def head(self) -> Head:
        with self._read() as cur:
            cur.execute(self._locked_head_sql().replace(" FOR UPDATE", ""))
            return _head(cur.fetchone())

    def head_row(self) -> tuple[int, bytes, bytes]:
        """(size, last hash, frontier bytes) as stored, unchecked: verification compares them."""
        with self._read() as cur:
            cur.execute("SELECT size, last_hash, frontier FROM audit_head WHERE id = 1")
            row = cur.fetchone()
        return (0, GENESIS_HASH, b"") if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

    def append(
        self,
        events: Sequence[Prepared],
        *,
        checkpoint: Sealer | None = None,
        published: int | None = None,
    ) -> Appended:
        """Seal and insert `events` in one transaction; all are durable when this returns.

        `checkpoint` is offered the new head and the size of the newest stored checkpoint, and may
        return a signed checkpoint, stored in the same transaction: sealing costs no commit of its
        own. `published` marks a checkpoint the witnesses took since the last append.
        """
        if not events:
            return Appended([], None, 0)
        with self._write() as cur:
            cur.execute(self._locked_head_sql())
            row = cur.fetchone()
            head = _head(row)
            sealed_size = 0 if row is None or row[3] is None else int(row[3])
            sealed = seal(head, events)
            self._insert_events(cur, sealed.rows)
            if sealed.value_keys:
                cur.executemany(
                    self._sql("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (?, ?, ?)"),
                    sealed.value_keys,
                )
            self._insert_nodes(cur, sealed.nodes)
            signed = checkpoint(head, sealed_size) if checkpoint is not None else None
            if signed is not None:
                self._insert_checkpoint(cur, signed)
                sealed_size = signed.statement.tree_size
            if published is not None:
                self._mark_published(cur, published)
            cur.execute(
                self._sql("UPDATE audit_head SET size = ?, last_hash = ?, frontier = ? WHERE id = 1"),
                (head.size, head.last_hash, head.frontier.to_bytes()),
            )
        return Appended(sealed.receipts, signed, sealed_size)

    def _insert_nodes(self, cur: Any, nodes: Sequence[CompletedNode]) -> None:
        if nodes:
            cur.executemany(
                self._sql(
                    "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?) "
                    "ON CONFLICT (level, idx) DO NOTHING"
                ),
                [(n.level, n.index, n.hash) for n in nodes],
            )

    # -- tree material --------------------------------------------------------------------------
    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Hashes of records start..end (sequence numbers, inclusive), in order."""
        with self._read() as cur:
            cur.execute(
                self._sql("SELECT hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq"),
                (start, end),
            )
            return [bytes(row[0]) for row in cur.fetchall()]

    def node(self, level: int, index: int) -> bytes | None:
        with self._read() as cur:
            cur.execute(self._sql("SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?"), (level, index))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def record(self, seq: int) -> StoredRecord | None:
        return next(iter(self.records(seq, seq)), None)

    def first_sequence(self) -> int | None:
        with self._read() as cur:
            cur.execute("SELECT MIN(seq) FROM audit_events")
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def last_sequence(self) -> int | None:
        with self._read() as cur:
            cur.execute("SELECT MAX(seq) FROM audit_events")
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- signed statements ----------------------------------------------------------------------
    def add_checkpoint(self, signed: SignedCheckpoint) -> None:
        with self._write() as cur:
            self._insert_checkpoint(cur, signed)

    def _insert_checkpoint(self, cur: Any, signed: SignedCheckpoint) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO audit_checkpoints (tree_size, statement, published) VALUES (?, ?, 0) "
                "ON CONFLICT (tree_size) DO NOTHING"
            ),
            (signed.statement.tree_size, signed.to_line()),
        )

    def mark_published(self, tree_size: int) -> None:
        with self._write() as cur:
            self._mark_published(cur, tree_size)

    def _mark_published(self, cur: Any, tree_size: int) -> None:
        cur.execute(self._sql("UPDATE audit_checkpoints SET published = 1 WHERE tree_size = ?"), (tree_size,))

    def checkpoint_rows(self) -> list[tuple[int, str, bool]]:
        """(tree size, signed statement as stored, published) by tree size, unparsed."""
        with self._read() as cur:
            cur.execute("SELECT tree_size, statement, published FROM audit_checkpoints ORDER BY tree_size")
            return [(int(size), str(text), bool(published)) for size, text, published in cur.fetchall()]

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Stored checkpoints by tree size; a row that does not parse raises `StatementError`."""
        return [parse_checkpoint(text) for _, text, _ in self.checkpoint_rows()]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._read() as cur:
            cur.execute("SELECT statement FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
            row = cur.fetchone()
        return None if row is None else parse_checkpoint(str(row[0]))

    def prunes(self) -> list[SignedPrune]:
        with self._read() as cur:
            cur.execute("SELECT statement FROM audit_prunes ORDER BY last_seq")
            rows = cur.fetchall()
        out: list[SignedPrune] = []
        for row in rows:
            signed = parse_signed(str(row[0]))
            if isinstance(signed.statement, Checkpoint):
                continue
            out.append(Signed(signed.statement, signed.signature))
        return out

    def apply_prune(self, signed: SignedPrune) -> int:
        """Delete the pruned range and keep its signed record, in one transaction."""
        record: PruneRecord = signed.statement
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "DELETE FROM audit_value_hashes WHERE epoch >= ? AND epoch <= ? AND seq >= ? AND seq <= ?"
                ),
                (
                    record.first_sequence >> VALUE_EPOCH_BITS,
                    record.last_sequence >> VALUE_EPOCH_BITS,
                    record.first_sequence,
                    record.last_sequence,
                ),
            )
            cur.execute(
                self._sql("DELETE FROM audit_events WHERE seq >= ? AND seq <= ?"),
                (record.first_sequence, record.last_sequence),
            )
            deleted = int(cur.rowcount)
            cur.execute(
                self._sql("INSERT INTO audit_prunes (last_seq, statement) VALUES (?, ?)"),
                (record.last_sequence, signed.to_line()),
            )
        return deleted

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: Query) -> list[StoredRecord]:
        where, params = query.where()
        limit = f" LIMIT {int(query.limit)}" if query.limit is not None else ""
        with self._read() as cur:
            cur.execute(
                self._sql(f"SELECT seq, record, hash FROM audit_events{where} ORDER BY seq{limit}"), params
            )
            return [StoredRecord(int(r[0]), bytes(r[1]), bytes(r[2])) for r in cur.fetchall()]

    def stats(self, query: Query) -> dict[str, Any]:
        where, params = query.where()
        out: dict[str, Any] = {}
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT COUNT(*), MIN(time_ms), MAX(time_ms), MIN(seq), MAX(seq) "
                    f"FROM audit_events{where}"
                ),
                params,
            )
            count, first, last, low, high = cur.fetchone()
            out.update(
                events=int(count or 0), first_time_ms=first, last_time_ms=last, first_seq=low, last_seq=high
            )
            for column in ("action", "tier", "tool", "destination", "actor", "status", "operation"):
                cur.execute(
                    self._sql(
                        f"SELECT {column}, COUNT(*) FROM audit_events{where} "
                        f"GROUP BY {column} ORDER BY 2 DESC"
                    ),
                    params,
                )
                out[f"by_{column}"] = {str(k) if k is not None else "-": int(n) for k, n in cur.fetchall()}
            cur.execute(self._sql(f"SELECT categories FROM audit_events{where}"), params)
            events_with: Counter[str] = Counter()
            values: Counter[str] = Counter()
            for (column,) in cur.fetchall():
                for item in str(column).strip(",").split(","):
                    if item:
                        name, _, count_text = item.partition("=")
                        events_with[name] += 1
                        values[name] += int(count_text or 0)
        out["events_by_category"] = dict(events_with.most_common())
        out["values_by_category"] = dict(values.most_common())
        return out

    def lookup(self, hmac_hex: str) -> list[int]:
        """Sequence numbers of the events that carried a value with this HMAC (hex).

        Only epochs of the index that hold rows and lie between the first and the last event the
        store holds are probed, each found by a seek on the index from the one before: a stray row
        far outside the log (which verify reports) costs nothing, however far it is."""
        key = value_key(hmac_hex)
        with self._read() as cur:
            # Two subqueries: SQLite reads MIN or MAX off the index only when each stands alone.
            cur.execute("SELECT (SELECT MIN(seq) FROM audit_events), (SELECT MAX(seq) FROM audit_events)")
            first, last = cur.fetchone()
            if first is None:
                return []
            low, high = int(first) >> VALUE_EPOCH_BITS, int(last) >> VALUE_EPOCH_BITS
            cur.execute(
                self._sql(
                    "WITH RECURSIVE present(epoch) AS ("
                    "SELECT MIN(epoch) FROM audit_value_hashes WHERE epoch >= ? UNION ALL "
                    "SELECT (SELECT MIN(epoch) FROM audit_value_hashes WHERE epoch > present.epoch) "
                    "FROM present WHERE present.epoch < ?) "
                    "SELECT v.seq FROM present JOIN audit_value_hashes AS v "
                    "ON v.epoch = present.epoch AND v.hmac_key = ? WHERE present.epoch <= ? ORDER BY v.seq"
                ),
                (low, high, key, high),
            )
            candidates = [int(row[0]) for row in cur.fetchall()]
        needle = f'"{hmac_hex}"'.encode()
        return [seq for seq in candidates if (r := self.record(seq)) is not None and needle in r.record]

    # -- forwarding cursors ---------------------------------------------------------------------
    def cursor(self, name: str) -> int:
        with self._read() as cur:
            cur.execute(self._sql("SELECT seq FROM audit_cursors WHERE name = ?"), (name,))
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        with self._read() as cur:
            cur.execute("SELECT name, seq FROM audit_cursors")
            return {str(name): int(seq) for name, seq in cur.fetchall()}

    def set_cursor(self, name: str, seq: int) -> None:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO audit_cursors (name, seq) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq"
                ),
                (name, seq),
            )


# The key given to an index row that holds something other than integers: no record implies it.
_NOT_AN_INDEX_KEY = 1 << 64


def _index_row(row: Sequence[Any]) -> tuple[int, int, int]:
    """An (epoch, key, seq) row of the value-hash index as integers. A value stored as another type
    (SQLite keeps what is written) is read as the number it spells, for the event it names, with a
    key no record implies, so verify reports the row: a BLOB key is invisible to `lookup`."""
    epoch, key, seq = row
    if type(epoch) is int and type(key) is int and type(seq) is int:
        return epoch, key, seq
    return _spelled(epoch), _NOT_AN_INDEX_KEY, _spelled(seq)


def _spelled(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _head(row: Sequence[Any] | None) -> Head:
    if row is None:
        return Head.empty()
    size = int(row[0])
    try:
        frontier = Frontier.from_bytes(size, bytes(row[2]))
    except ValueError:
        raise AuditStoreError("the log head is damaged (frontier does not match its size)") from None
    return Head(size, bytes(row[1]), frontier)


def open_existing(url: str, *, read_only: bool = True) -> AuditStore:
    """The audit store at `url`, which must exist: it is never created here.

    With `read_only` (every command that only reads the log) nothing is written either, so an
    auditor's read-only access suffices: a SELECT-only PostgreSQL role, a read-only SQLite file or
    mount. Raises `AuditStoreError` ("no audit store at …") for a store that does not exist.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from phiwarden.audit.store_postgres import PostgresStore

        return PostgresStore(url, create=False, read_only=read_only)
    if not url.startswith("sqlite:///"):
        raise AuditConfigError(f"unknown audit store URL {url!r} (sqlite:///path or postgresql://…)")
    from phiwarden.audit.store_sqlite import SQLiteStore

    return SQLiteStore(Path(url.removeprefix("sqlite:///")), create=False, read_only=read_only)
