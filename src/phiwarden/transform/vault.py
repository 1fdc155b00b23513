"""The pseudonymization vault: one per (identity, conversation), encrypted at rest, with a TTL.

    store = VaultStore(backend, VaultKeys.load(path), ttl_seconds)  # key kept apart from the data
    vault = store.open(identity, conversation)
    fake = vault.surrogate("ssn", "478-22-9134", avoid=prompt_text)
    ...                              # forward, then restore with Restorer.of(vault.entries)
    store.save(vault)

Surrogates are derived, not drawn: an HMAC of (identity, conversation, category, value) seeds the
generator, so the same value gets the same surrogate on every replica, even for two requests of one
conversation in flight at once; only collisions (another value already holds that surrogate) take a
further attempt. A name's words keep their surrogates from name to name ("Marisol Okonkwo" ->
"Vaughn Galloway", then "Ms. Okonkwo" -> "Ms. Galloway", "OKONKWO^MARISOL" -> "GALLOWAY^VAUGHN"),
and a new word takes a surrogate word no other word of the conversation has, while one is left: the
answer's "Dear Ms. Galloway" then restores to one patient. Rows are keyed by an HMAC of identity and
conversation, and the ciphertext is bound to its row (AES-GCM associated data), so one identity's
vault can never be read under another's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from phiwarden.transform.surrogates import name_words, surrogate
from phiwarden.transform.variants import forms, is_age, name_pairs, normalized, stands_alone

VAULT_KEY_ENV = "PHIWARDEN_VAULT_KEY"
VAULT_KEY_FILE_ENV = "PHIWARDEN_VAULT_KEY_FILE"
KEY_BYTES = 32
_MAX_ATTEMPTS = 32
# Attempts at a name whose new words no other word of the conversation has; later ones only need the
# whole name to be new (a conversation with more names than the word lists).
_DISTINCT_WORD_ATTEMPTS = 16


class VaultError(Exception):
    """The vault cannot be read, decrypted or written: the request fails closed."""


@dataclass(frozen=True, slots=True)
class VaultKeys:
    """Subkeys of the vault key: encryption, surrogate derivation, row ids."""

    encrypt: bytes
    derive: bytes
    row: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> VaultKeys:
        if len(secret) < KEY_BYTES:
            raise VaultError(f"the vault key must be at least {KEY_BYTES} bytes")

        def sub(label: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=None, info=b"phiwarden vault " + label).derive(secret)

        return cls(sub(b"encrypt"), sub(b"derive"), sub(b"row"))

    @classmethod
    def load(cls, path: Path, *, create: bool = True) -> VaultKeys:
        """$PHIWARDEN_VAULT_KEY (hex or base64), else the key file (created 0600 on first use)."""
        text = os.environ.get(VAULT_KEY_ENV)
        if text:
            return cls.from_secret(_decode(text.strip(), VAULT_KEY_ENV))
        env_path = os.environ.get(VAULT_KEY_FILE_ENV)
        return cls.from_secret(
            read_or_create_secret(Path(env_path) if env_path else path, "vault key", create)
        )

    def row_id(self, identity: str, conversation: str) -> str:
        return hmac.new(self.row, f"{identity}\x00{conversation}".encode(), hashlib.sha256).hexdigest()

    def identity_id(self, identity: str) -> str:
        return hmac.new(self.row, b"identity\x00" + identity.encode(), hashlib.sha256).hexdigest()[:32]


def read_or_create_secret(path: Path, what: str, create: bool) -> bytes:
    """A 32-byte secret from a 0600 file (hex); created when missing and `create` is set."""
    if create and not path.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise VaultError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
        else:
            try:
                os.write(fd, os.urandom(KEY_BYTES).hex().encode())
                os.fsync(fd)
            finally:
                os.close(fd)
    try:
        info = path.stat()
        data = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultError(f"cannot read the {what} {path}: {exc}") from None
    if sys.platform != "win32" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VaultError(f"the {what} {path} is readable by group or others; run: chmod 600 {path}")
    return _decode(data, str(path))


def _decode(text: str, source: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError(f"{source}: a key must be hex or base64") from None


@dataclass(frozen=True, slots=True)
class Entry:
    original: str
    category: str


@dataclass(slots=True)
class _Index:
    """What new surrogates are checked against, kept up to date as entries are added (a request
    with hundreds of names would otherwise rebuild it per name)."""

    values: set[str] = field(default_factory=set)  # every original
    # The words of name surrogates, case folded: original word -> its surrogate word (as first
    # given), and surrogate word -> the original word it stands for.
    surrogate_of: dict[str, str] = field(default_factory=dict)
    original_of: dict[str, str] = field(default_factory=dict)

    def add(self, fake: str, entry: Entry) -> None:
        self.values.add(entry.original)
        if entry.category == "name":
            for fake_word, original_word in name_pairs(fake, entry.original):
                self.surrogate_of.setdefault(original_word.casefold(), fake_word)
                self.original_of.setdefault(fake_word.casefold(), original_word.casefold())


@dataclass(slots=True)
class Vault:
    """One conversation's mapping between surrogates and originals, in memory."""

    keys: VaultKeys
    identity: str
    conversation: str
    row_id: str
    version: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)
    by_original: dict[tuple[str, str], str] = field(default_factory=dict)
    added: dict[str, Entry] = field(default_factory=dict)
    # Derived from `entries`, rebuilt when they change.
    _index: _Index | None = field(default=None, repr=False, compare=False)
    _folded_forms: frozenset[str] | None = field(default=None, repr=False, compare=False)
    _lowered: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, keys: VaultKeys, identity: str, conversation: str) -> Vault:
        return cls(keys, identity, conversation, keys.row_id(identity, conversation))

    def surrogate(self, category: str, value: str, *, avoid: str = "") -> str:
        """The surrogate of `value`: the one already given in this conversation, else a new one.

        `avoid` is the text the surrogate will be placed in: a surrogate (or a form of it the answer
        would be restored from) that already stands there as a word would be restored into a value
        it never was, so another is derived.
        """
        known = self.by_original.get((category, value))
        if known is not None:
            return known
        originals = self._indexed().values
        for attempt in range(_MAX_ATTEMPTS):
            seed = hmac.new(
                self.keys.derive,
                "\x00".join((self.identity, self.conversation, category, value, str(attempt))).encode(),
                hashlib.sha256,
            ).digest()
            candidate = surrogate(category, value, random.Random(seed))
            fresh = [candidate]
            if category == "name":
                distinct = attempt < _DISTINCT_WORD_ATTEMPTS
                composed = self._compose(value, candidate, distinct=distinct)
                if composed is None:
                    continue
                # Out of distinct words, only the whole name need not stand in the text.
                candidate, fresh = composed[0], composed[1] if distinct else composed[1][:1]
            if len(candidate) < 3 and not candidate.isdigit() and attempt < _MAX_ATTEMPTS - 1:
                continue
            if candidate in self.entries or candidate in originals:
                continue
            if avoid and self._stands_in(avoid, category, value, candidate, fresh):
                continue
            self._put(candidate, Entry(value, category))
            return candidate
        # Out of shapes (a two-letter value in a text holding every variant): an opaque token.
        token = f"REDACTED-{hashlib.sha256(seed).hexdigest()[:10]}"
        self._put(token, Entry(value, category))
        return token

    def _compose(self, value: str, candidate: str, *, distinct: bool) -> tuple[str, list[str]] | None:
        """`candidate` with each word of `value` already given a surrogate word written with it; the
        other (new) words, or None when `distinct` and one is another word's surrogate already."""
        words = self._indexed()
        value_words, candidate_words = name_words(value), name_words(candidate)
        if len(value_words) != len(candidate_words):
            return candidate, [candidate]
        out: list[str] = []
        fresh: list[str] = []
        for index, (mine, theirs) in enumerate(zip(value_words, candidate_words, strict=True)):
            letters = mine.rstrip(".")
            given = words.surrogate_of.get(letters.casefold()) if index % 2 == 0 and letters else None
            if given is not None:
                out.append(_cased(letters, given) + mine[len(letters) :])
                continue
            out.append(theirs)
            new = theirs.rstrip(".").casefold()
            if index % 2 == 0 and len(new) >= 3:
                if distinct and (new in words.original_of or new in words.surrogate_of):
                    return None
                fresh.append(theirs.rstrip("."))
        composed = "".join(out)
        return composed, [composed, *fresh] if fresh else []

    def _stands_in(self, text: str, category: str, value: str, candidate: str, fresh: list[str]) -> bool:
        """Whether a new surrogate, or a form of it, already stands as a word in `text`."""
        if category == "name":
            # Words given earlier may stand there (signed thinking names them): only new ones count,
            # in any letter case (looked for in the text folded once per request).
            if self._lowered is None or self._lowered[0] is not text:
                self._lowered = (text, text.lower())
            return _stands_any(self._lowered[1], {word.lower() for word in fresh})
        shown = {form for form, _ in forms(candidate, value, category)}
        if not is_age(candidate, value, category):  # an age is restored only with its word
            shown.add(candidate)
        return _stands_any(text, shown)

    def assign(self, category: str, value: str, preferred: str, *, avoid: str = "") -> str:
        """Map `value` to `preferred` (a sanitized identifier), numbered when that is taken."""
        known = self.by_original.get((category, value))
        if known is not None:
            return known
        originals = self._indexed().values
        for number in range(1, 1000):
            candidate = preferred if number == 1 else f"{preferred}{number}"
            if candidate in self.entries or candidate in originals or (avoid and candidate in avoid):
                continue
            self._put(candidate, Entry(value, category))
            return candidate
        return self.surrogate(category, value, avoid=avoid)

    def _put(self, fake: str, entry: Entry) -> None:
        self.entries[fake] = entry
        self.by_original[(entry.category, entry.original)] = fake
        self.added[fake] = entry
        if self._index is not None:
            self._index.add(fake, entry)
        self._folded_forms = None

    def changed(self) -> None:
        """Entries were loaded or replaced: what is derived from them is rebuilt when next asked."""
        self._index = None
        self._folded_forms = None

    def _indexed(self) -> _Index:
        if self._index is None:
            self._index = _Index()
            for fake, entry in self.entries.items():
                self._index.add(fake, entry)
        return self._index

    def is_surrogate(self, value: str) -> bool:
        """Whether `value`, found in text the gateway cannot rewrite (signed thinking the client sends
        back), is a surrogate of this conversation in some form — "Ms. Galloway", "GALLOWAY", the
        given name alone, another layout or date format — rather than PHI. Elsewhere the client only
        ever saw restored values, so what it sends is never a surrogate."""
        if value in self.entries:
            return True
        if self._folded_forms is None:
            self._folded_forms = frozenset(
                form.casefold()
                for fake, entry in self.entries.items()
                for form in (fake, *(f for f, _ in forms(fake, entry.original, entry.category)))
            )
        text = normalized(value)
        if text in self._folded_forms:
            return True
        words = [w.rstrip(".") for w in name_words(text)[::2]]
        words = [w for w in words if len(w) > 1]
        known = self._indexed().original_of
        return bool(words) and all(w in known for w in words)

    def originals(self) -> dict[str, str]:
        """Surrogate -> original."""
        return {fake: entry.original for fake, entry in self.entries.items()}

    def merge(self, stored: Mapping[str, Entry]) -> None:
        """Entries another replica stored meanwhile. On a clash (one surrogate, two values: possible
        only for small pools such as names) the stored entry wins for later turns; the request in
        flight keeps restoring with the mapping it took before saving."""
        for fake, entry in stored.items():
            mine = self.entries.get(fake)
            if mine is not None and mine != entry:
                self.by_original.pop((mine.category, mine.original), None)
            self.entries[fake] = entry
            self.by_original[(entry.category, entry.original)] = fake
            self.added.pop(fake, None)
        self.changed()

    # --- at rest -----------------------------------------------------------------------------------

    def _aad(self) -> bytes:
        return f"phiwarden-vault-v1\x00{self.row_id}\x00{self.keys.identity_id(self.identity)}".encode()

    def seal(self) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) of all entries."""
        plain = json.dumps(
            {fake: [e.original, e.category] for fake, e in self.entries.items()}, separators=(",", ":")
        ).encode()
        nonce = os.urandom(12)
        return nonce, AESGCM(self.keys.encrypt).encrypt(nonce, plain, self._aad())

    def open_sealed(self, nonce: bytes, ciphertext: bytes) -> dict[str, Entry]:
        try:
            plain = AESGCM(self.keys.encrypt).decrypt(nonce, ciphertext, self._aad())
            data = json.loads(plain)
            return {fake: Entry(str(pair[0]), str(pair[1])) for fake, pair in data.items()}
        except (InvalidTag, ValueError, TypeError, IndexError, AttributeError) as exc:
            raise VaultError(
                "the vault row cannot be decrypted (wrong vault key, or the row was tampered with)"
            ) from exc


@dataclass(frozen=True, slots=True)
class SealedRow:
    version: int
    nonce: bytes
    ciphertext: bytes
    expires_at: float


class VaultBackend(Protocol):
    """Where sealed vault rows live (the gateway store: SQLite or PostgreSQL)."""

    def vault_load(self, row_id: str, now: float) -> SealedRow | None: ...

    def vault_save(
        self, row_id: str, identity_id: str, expected_version: int, row: SealedRow
    ) -> bool: ...  # False: another writer got there first (optimistic concurrency)

    def vault_purge(self, now: float) -> int: ...


class VaultStore:
    """Load and save vaults through a backend; writes merge concurrent additions."""

    def __init__(self, backend: VaultBackend, keys: VaultKeys, ttl_seconds: int) -> None:
        self.backend = backend
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    def open(self, identity: str, conversation: str) -> Vault:
        vault = Vault.new(self.keys, identity, conversation)
        row = self.backend.vault_load(vault.row_id, time.time())
        if row is not None:
            for fake, entry in vault.open_sealed(row.nonce, row.ciphertext).items():
                vault.entries[fake] = entry
                vault.by_original[(entry.category, entry.original)] = fake
            vault.changed()
            vault.version = row.version
        return vault

    def save(self, vault: Vault) -> None:
        """Persist new entries (and extend the TTL); retried on concurrent writes."""
        if not vault.added:
            return
        identity_id = self.keys.identity_id(vault.identity)
        for _ in range(8):
            nonce, ciphertext = vault.seal()
            row = SealedRow(vault.version + 1, nonce, ciphertext, time.time() + self.ttl_seconds)
            if self.backend.vault_save(vault.row_id, identity_id, vault.version, row):
                vault.version += 1
                vault.added.clear()
                return
            stored = self.backend.vault_load(vault.row_id, time.time())
            if stored is not None:
                vault.merge(vault.open_sealed(stored.nonce, stored.ciphertext))
                vault.version = stored.version
            else:
                vault.version = 0
        raise VaultError("the vault could not be saved: too many concurrent writers")


def _stands_any(text: str, words: set[str]) -> bool:
    """Whether one of `words` stands in `text` as a word (as the restorer would take it). Words are
    looked for by their first three characters, which forms share (a date's formats, a name's cases):
    a 16 KB prompt is read a few times, not once per form."""
    by_anchor: dict[str, list[str]] = {}
    for word in words:
        if word:
            by_anchor.setdefault(word[:3], []).append(word)
    for anchor, group in by_anchor.items():
        at = text.find(anchor)
        while at != -1:
            if any(text.startswith(w, at) and stands_alone(text, at, at + len(w)) for w in group):
                return True
            at = text.find(anchor, at + 1)
    return False


def _cased(model: str, word: str) -> str:
    """`word` in the letter case of `model` (all capitals, all small, else capitalized)."""
    if model.isupper() and len(model) > 1:
        return word.upper()
    if model.islower():
        return word.lower()
    return word.title() if word.isupper() or word.islower() else word
