"""`AuditLog`: what every enforcement point holds to record its decisions.

    log = AuditLog.open(policy.audit)          # opens the store, loads (or creates) both keys
    receipt = log.append(event)                # returns once the event is durable; else AuditError
    digest = log.hash_value(value)             # HMAC for Classification.value_hashes

Appends seal a checkpoint every `checkpoint_every` events of the log or `checkpoint_interval`
seconds after the newest stored checkpoint (checked on append), and a writer closing seals its own
events if no checkpoint covers them yet; checkpoints are signed and published to the witnesses.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from phiwarden.audit import paths
from phiwarden.audit.checkpoint import Checkpoint, SignedCheckpoint, sign
from phiwarden.audit.errors import AuditConfigError, AuditKeyError, SinkError
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.keys import (
    HMAC_KEY_ENV,
    HMAC_KEY_FILE_ENV,
    SIGNING_KEY_FILE_ENV,
    HmacKey,
    SigningKey,
    VerifyKey,
    check_apart,
    load_hmac_key,
    resolve_signing_key_path,
)
from phiwarden.audit.ledger import Head, Receipt, prepare
from phiwarden.audit.redact import redact_url
from phiwarden.audit.store import AuditStore, open_existing
from phiwarden.audit.witness import Witness, open_witness
from phiwarden.policy.audit import AuditSettings

STORE_ENV = "PHIWARDEN_AUDIT_STORE"
logger = logging.getLogger("phiwarden.audit")


def store_url(settings: AuditSettings, override: str | None = None) -> str:
    """The store in force: --store, then $PHIWARDEN_AUDIT_STORE, then the policy, then the default."""
    url = override or os.environ.get(STORE_ENV) or settings.store
    if url is None:
        return paths.default_store_url()
    if url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        return url
    path = url.removeprefix("sqlite:")
    return f"sqlite:///{settings.path(path).resolve().as_posix()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def open_store(url: str, *, create: bool = True) -> AuditStore:
    if url.startswith(("postgresql://", "postgres://")):
        from phiwarden.audit.store_postgres import PostgresStore

        return PostgresStore(url)
    path = sqlite_path(url)
    if path is None:
        raise AuditConfigError(f"unknown audit store URL {url!r} (sqlite:///path or postgresql://…)")
    from phiwarden.audit.store_sqlite import SQLiteStore

    return SQLiteStore(path, create=create)


def signing_key_path(settings: AuditSettings) -> Path:
    return resolve_signing_key_path(settings.path(settings.signing_key) if settings.signing_key else None)


def load_signing_key(settings: AuditSettings, url: str, *, create: bool) -> SigningKey:
    path = signing_key_path(settings)
    check_apart(
        path, sqlite_path(url), "signing key", setting=f"[audit] signing_key or ${SIGNING_KEY_FILE_ENV}"
    )
    return SigningKey.load(path, create=create)


def load_value_key(settings: AuditSettings, url: str | None = None, *, create: bool = True) -> HmacKey:
    """The HMAC key of the log at `url` (a key file beside its SQLite database is refused)."""
    configured = settings.path(settings.hmac_key) if settings.hmac_key else None
    return load_hmac_key(configured, create=create, database=sqlite_path(url) if url else None)


def check_value_key(store: AuditStore, key: HmacKey) -> None:
    """Refuse to hash for a store written under another HMAC key: every lookup would miss."""
    recorded = store.meta("hmac_key_id")
    if recorded is not None and recorded != key.id:
        raise AuditKeyError(
            f"the store's values were hashed with HMAC key {recorded}, but the key loaded here is "
            f"{key.id}: a lookup with it would find nothing. Use the log's key (the policy's hmac_key, "
            f"or ${HMAC_KEY_ENV} / ${HMAC_KEY_FILE_ENV} as the writers have them)"
        )


def public_key(settings: AuditSettings, explicit: Path | None = None) -> VerifyKey:
    """The key that checks signatures: --public-key, else the public half of the configured signing key."""
    if explicit is not None:
        return VerifyKey.load(explicit)
    path = signing_key_path(settings)
    pub = path.with_suffix(".pub")
    if pub.exists():
        return VerifyKey.load(pub)
    if path.exists():
        return SigningKey.load(path, create=False).public
    raise AuditKeyError(f"no public key: neither {pub} nor {path} exists; pass --public-key FILE")


def witnesses(settings: AuditSettings) -> list[Witness]:
    if settings.witnesses is None:
        return [open_witness(f"file://{paths.default_witness().as_posix()}")]
    base = Path(settings.base_dir) if settings.base_dir else None
    return [open_witness(target, base_dir=base) for target in settings.witnesses]


def policy_settings() -> AuditSettings:
    """The `[audit]` settings of the policy the CLI would use here (phiwarden.toml up to the git root)."""
    from phiwarden.policy import find_policy, load_policy

    return load_policy(find_policy(Path.cwd())).audit


def hash_value(value: str, settings: AuditSettings | None = None) -> str:
    """HMAC-SHA256 (hex) of a value under the HMAC key of the log in force.

    Without `settings`, the policy is found as the CLI finds it. The key is never created here: a key
    made up by a caller that missed the log's policy would give hashes that no lookup matches.
    Enforcement points that hold an `AuditLog` use `AuditLog.hash_value`, which keeps the key loaded.
    """
    settings = settings if settings is not None else policy_settings()
    return load_value_key(settings, store_url(settings), create=False).hash_value(value)


class AuditLog:
    def __init__(
        self,
        store: AuditStore,
        signing_key: SigningKey,
        value_key: HmacKey,
        witnesses: Sequence[Witness] = (),
        *,
        checkpoint_every: int = 1000,
        checkpoint_interval_seconds: float = 300.0,
    ) -> None:
        self.store = store
        self.signing_key = signing_key
        self.value_key = value_key
        self.witnesses = list(witnesses)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_seconds = checkpoint_interval_seconds
        self._lock = threading.Lock()
        self.log_id = store.log_id
        _claim_key(store, "signing_key_id", signing_key.public.id, "signing key")
        _claim_key(store, "hmac_key_id", value_key.id, "HMAC key")
        # The newest checkpoint this writer knows of (any writer's): its size, and its signing time
        # (wall clock, shared by writers on other hosts) from which the interval runs; the open time
        # for a log not sealed yet.
        self._sealed_size = 0
        self._sealed_ms = _now_ms()
        self._know(store.latest_checkpoint())
        # The newest event this writer appended (or the head at open).
        self._size = store.head().size
        # A checkpoint the witnesses took, marked published in the next append's transaction
        # rather than in a commit of its own.
        self._unmarked: int | None = None

    @classmethod
    def open(
        cls, settings: AuditSettings | None = None, *, store: str | None = None, create: bool = True
    ) -> AuditLog:
        """The log the settings describe; keys are generated on first use. With `create` False
        nothing is made: the store and both keys must exist already. Raises `AuditError`."""
        settings = settings or AuditSettings()
        url = store_url(settings, store)
        signing = load_signing_key(settings, url, create=create)
        value_key = load_value_key(settings, url, create=create)
        opened = open_store(url) if create else open_existing(url, read_only=False)
        try:
            return cls(
                opened,
                signing,
                value_key,
                witnesses(settings),
                checkpoint_every=settings.checkpoint_every,
                checkpoint_interval_seconds=settings.checkpoint_interval_seconds,
            )
        except BaseException:
            opened.close()
            raise

    def append(self, event: AuditEvent) -> Receipt:
        """Record one event; returns once it is durable. Raises `AuditError` (fail closed) otherwise."""
        return self.append_batch([event])[0]

    def append_batch(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """Record events in one transaction: all are durable when this returns, or none was written."""
        # Encoding needs no lock: done here, it overlaps with other writers' transactions.
        prepared = [prepare(event) for event in events]
        with self._lock:
            appended = self.store.append(prepared, checkpoint=self._seal_if_due, published=self._unmarked)
            if not appended.receipts:
                return []
            self._unmarked = None
            self._size = max(self._size, appended.receipts[-1].sequence)
            self._sealed_size = max(self._sealed_size, appended.sealed_size)
            if appended.checkpoint is not None:
                self._know(appended.checkpoint)
                # Published only now that it is committed: a witness never holds a checkpoint of
                # events that a failed commit took back.
                if self._publish(appended.checkpoint, strict=False):
                    self._unmarked = appended.checkpoint.statement.tree_size
        return appended.receipts

    def hash_value(self, value: str) -> str:
        return self.value_key.hash_value(value)

    def checkpoint(self, *, strict: bool = True) -> SignedCheckpoint | None:
        """Sign the current head and publish it. With `strict`, a witness failure raises `SinkError`."""
        with self._lock:
            return self._checkpoint(strict=strict)

    def _seal_if_due(self, head: Head, sealed_size: int) -> SignedCheckpoint | None:
        """Inside the append's transaction: a signed checkpoint of `head` when one is due.

        Due counts every writer's events since the newest stored checkpoint, and the time since it
        was signed, so replicas together seal once per `checkpoint_every` events (or interval)
        rather than each on its own count and clock.
        """
        self._sealed_size = max(self._sealed_size, sealed_size)
        if not self._due(head.size):
            return None
        # The size read with the head can predate a checkpoint that the writer before this one
        # committed while this one waited for the head's lock (PostgreSQL evaluates it in the
        # statement's snapshot): eight queued writers then each sealed one event after the other.
        # This transaction's next statement sees that checkpoint.
        self._know(self.store.latest_checkpoint())
        if not self._due(head.size):
            return None
        return sign(self._statement(head), self.signing_key)

    def _due(self, size: int) -> bool:
        unsealed = size - self._sealed_size
        return unsealed > 0 and (
            unsealed >= self.checkpoint_every
            or _now_ms() - self._sealed_ms >= self.checkpoint_interval_seconds * 1000
        )

    def _know(self, signed: SignedCheckpoint | None) -> None:
        if signed is not None and signed.statement.tree_size >= self._sealed_size:
            self._sealed_size = signed.statement.tree_size
            self._sealed_ms = signed.statement.time_ms

    def _statement(self, head: Head) -> Checkpoint:
        return Checkpoint(
            log_id=self.log_id,
            tree_size=head.size,
            root_hash=head.frontier.root(),
            last_hash=head.last_hash,
            time_ms=_now_ms(),
            key_id=self.signing_key.public.id,
        )

    def _checkpoint(self, *, strict: bool) -> SignedCheckpoint | None:
        head = self.store.head()
        if head.size == 0:
            return None
        latest = self.store.latest_checkpoint()
        if latest is not None and latest.statement.tree_size >= head.size:
            signed = latest
        else:
            signed = sign(self._statement(head), self.signing_key)
            self.store.add_checkpoint(signed)
        self._know(signed)
        self._size = max(self._size, head.size)
        if self._publish(signed, strict=strict):
            self.store.mark_published(signed.statement.tree_size)
        return signed

    def _mark_pending(self) -> None:
        """On close: mark the checkpoint that no later append marked published, in a commit of its own."""
        if self._unmarked is not None:
            self.store.mark_published(self._unmarked)
            self._unmarked = None

    def _publish(self, signed: SignedCheckpoint, *, strict: bool) -> bool:
        """Publish to every witness; True when all took it."""
        failures = []
        for witness in self.witnesses:
            try:
                witness.publish(signed)
            except SinkError as exc:
                failures.append(str(exc))
        if not failures:
            return True
        message = "; ".join(failures)
        if strict:
            raise SinkError(f"checkpoint {signed.statement.tree_size} not published: {message}")
        # The events are durable and the checkpoint is stored; the next checkpoint publishes again.
        logger.warning("audit checkpoint %d not published: %s", signed.statement.tree_size, message)
        return False

    def close(self) -> None:
        """Seal this writer's events unless a checkpoint covers them already, then close the store.

        Only its own: a writer that sealed every other writer's newest events on its way out added
        a checkpoint a few events after the last one each time a replica or a CLI run closed.
        """
        try:
            with self._lock:
                if self._size > self._sealed_size:
                    self._know(self.store.latest_checkpoint())
                if self._size > self._sealed_size:
                    self._checkpoint(strict=False)
                self._mark_pending()
        finally:
            self.store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _claim_key(store: AuditStore, name: str, key_id: str, what: str) -> None:
    recorded = store.claim_meta(name, key_id)
    if recorded != key_id:
        raise AuditKeyError(
            f"{redact_url(store.url)} was written with {what} {recorded}, but the configured {what} is "
            f"{key_id}; configure the same {what} on every writer"
        )
