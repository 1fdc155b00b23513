"""Personal and agent API keys for the gateway: `pwk_<id>_<secret>`, stored only as a keyed hash.

The stored hash is HMAC-SHA256 of the secret under a server secret that lives apart from the store
(a 0600 file or $PHIWARDEN_GATEWAY_KEY_SECRET): a copy of the database yields neither keys nor
anything that can be checked offline without the server secret. HMAC rather than scrypt because the
secret is 256 random bits (no dictionary to slow down) and every request checks a key.

Every request reads its key's row (nothing is cached), so a revocation holds on every replica from the
next request on: an indexed read, ~25 us in SQLite and one round trip to PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from phiwarden.transform.vault import read_or_create_secret

KEY_SECRET_ENV = "PHIWARDEN_GATEWAY_KEY_SECRET"
KEY_SECRET_FILE_ENV = "PHIWARDEN_GATEWAY_KEY_SECRET_FILE"
PREFIX = "pwk_"
_FORMAT = re.compile(r"pwk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


class KeyStoreError(Exception):
    """A key that cannot be created, found or changed (CLI errors)."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    identity: str
    kind: str
    label: str
    digest: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    # Destinations this key may use (empty: whatever the identity's groups allow).
    destinations: tuple[str, ...] = ()
    # Tiers this key may send (a key for public work only cannot send internal or restricted code).
    tiers: tuple[str, ...] = ("public", "internal", "restricted")
    # Repositories whose rollout mode this key may claim with x-phiwarden-repository.
    repositories: tuple[str, ...] = ()
    rotated_from: str | None = None

    def state(self, now: float) -> str:
        # A rotated key may stay valid for a grace period: revoked from `revoked_at` on.
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        # Valid until `revoked_at` (the end of a rotation's grace period): listed as such, so that
        # nobody takes it for a key that stays.
        return "retiring" if self.revoked_at is not None else "active"

    def usable(self, now: float) -> bool:
        return self.state(now) in ("active", "retiring")

    def to_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "identity": self.identity,
            "kind": self.kind,
            "label": self.label,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "destinations": list(self.destinations),
            "tiers": list(self.tiers),
            "repositories": list(self.repositories),
            "rotated_from": self.rotated_from,
            "state": self.state(time.time()),
        }

    def scopes_json(self) -> str:
        return json.dumps(
            {
                "destinations": list(self.destinations),
                "tiers": list(self.tiers),
                "repositories": list(self.repositories),
            }
        )


def _iso(moment: float | None) -> str | None:
    return None if moment is None else dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


class KeyBackend(Protocol):
    # Whether reads cross the network (PostgreSQL) rather than a local SQLite file.
    postgres: bool

    def key_insert(self, record: KeyRecord) -> None: ...

    def key_get(self, key_id: str) -> KeyRecord | None: ...

    def key_list(self) -> list[KeyRecord]: ...

    def key_revoke(self, key_id: str, when: float) -> bool: ...


def key_id_of(reference: str) -> str:
    """The key id in a reference to a key: the id itself (16 hex digits) or the whole `pwk_…` key."""
    reference = reference.strip()
    match = _FORMAT.fullmatch(reference)
    if match is not None:
        return match.group(1)
    if _KEY_ID.fullmatch(reference):
        return reference
    # Never echoed: it may be a mistyped key.
    raise KeyStoreError("expected a key id (16 hex digits, from `phiwarden keys list`) or a whole pwk_… key")


@dataclass(slots=True)
class KeyStore:
    backend: KeyBackend
    secret: bytes

    @staticmethod
    def load_secret(path: Path, *, create: bool = True) -> bytes:
        text = os.environ.get(KEY_SECRET_ENV)
        if text:
            try:
                return bytes.fromhex(text.strip())
            except ValueError:
                return base64.b64decode(text.strip())
        env_path = os.environ.get(KEY_SECRET_FILE_ENV)
        return read_or_create_secret(Path(env_path) if env_path else path, "gateway key secret", create)

    def _digest(self, key_id: str, secret_part: str) -> str:
        message = f"{key_id}\x00{secret_part}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def create(
        self,
        identity: str,
        *,
        kind: str = "person",
        label: str = "",
        expires_in_days: float | None = 90,
        destinations: tuple[str, ...] = (),
        tiers: tuple[str, ...] = ("public", "internal", "restricted"),
        repositories: tuple[str, ...] = (),
        rotated_from: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """(the key, shown once; its record)."""
        key_id = secrets.token_hex(8)
        secret_part = secrets.token_urlsafe(32)[:43].ljust(43, "A")
        now = time.time()
        record = KeyRecord(
            key_id=key_id,
            identity=identity,
            kind=kind,
            label=label,
            digest=self._digest(key_id, secret_part),
            created_at=now,
            expires_at=None if expires_in_days is None else now + expires_in_days * 86400,
            destinations=destinations,
            tiers=tiers,
            repositories=repositories,
            rotated_from=rotated_from,
        )
        self.backend.key_insert(record)
        return f"{PREFIX}{key_id}_{secret_part}", record

    def rotate(
        self, key_id: str, *, expires_in_days: float | None = 90, grace_seconds: float = 0
    ) -> tuple[str, KeyRecord]:
        """A new key with the same identity and scopes; the old one is revoked (now, or after grace)."""
        old = self._existing(key_id)
        if old.state(time.time()) == "revoked":
            raise KeyStoreError(f"key {key_id} is revoked; create a new one")
        key, record = self.create(
            old.identity,
            kind=old.kind,
            label=old.label,
            expires_in_days=expires_in_days,
            destinations=old.destinations,
            tiers=old.tiers,
            repositories=old.repositories,
            rotated_from=old.key_id,
        )
        self.backend.key_revoke(key_id, time.time() + grace_seconds)
        return key, record

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key from now on (a key in a rotation's grace period too); its record as it was."""
        record = self._existing(key_id)
        if record.state(time.time()) == "revoked":
            raise KeyStoreError(f"key {key_id} is already revoked (since {_iso(record.revoked_at)})")
        self.backend.key_revoke(key_id, time.time())
        return record

    def _existing(self, key_id: str) -> KeyRecord:
        record = self.backend.key_get(key_id)
        if record is None:
            raise KeyStoreError(f"no key {key_id} in this key store (`phiwarden keys list` shows them)")
        return record

    def verify_now(self, presented: str) -> tuple[bool, KeyRecord | None]:
        """(answered, record) without waiting on the network: a local SQLite store is read at once
        (cheaper than a hop to a worker thread); with PostgreSQL the caller runs `verify` in a thread."""
        if _FORMAT.fullmatch(presented.strip()) is None:
            return True, None
        if self.backend.postgres:
            return False, None
        return True, self.verify(presented)

    def verify(self, presented: str) -> KeyRecord | None:
        """The active key record for a presented key, or None (unknown, wrong, expired, revoked)."""
        match = _FORMAT.fullmatch(presented.strip())
        if match is None:
            return None
        key_id, secret_part = match.groups()
        record = self.backend.key_get(key_id)
        if record is None:
            return None
        if not hmac.compare_digest(record.digest, self._digest(key_id, secret_part)):
            return None
        if not record.usable(time.time()):
            return None
        return record


def with_scopes(record: KeyRecord, scopes: str) -> KeyRecord:
    """A record read from the store with the scopes stored beside it (a JSON object)."""
    data = json.loads(scopes)
    return replace(
        record,
        destinations=tuple(data.get("destinations", ())),
        tiers=tuple(data.get("tiers", ())),
        repositories=tuple(data.get("repositories", ())),
    )
