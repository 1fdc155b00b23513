"""The two secrets of the audit trail, both kept apart from the store.

- The Ed25519 signing key signs checkpoints and prune records. The store only ever holds its public
  key id, so someone who can write the database cannot re-sign a rewritten log.
- The HMAC key makes value hashes (`hash_value`) unguessable: an unsalted SHA-256 of an SSN falls to
  brute force in seconds, an HMAC under a 256-bit key does not.

Both are generated on first use (files created 0600 in a 0700 directory), or supplied by path
(policy or environment); key files readable by group or others are refused, as is a key file in the
same directory as the SQLite database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from phiwarden.audit.errors import AuditKeyError

SIGNING_KEY_FILE_ENV = "PHIWARDEN_AUDIT_SIGNING_KEY_FILE"
HMAC_KEY_FILE_ENV = "PHIWARDEN_AUDIT_HMAC_KEY_FILE"
HMAC_KEY_ENV = "PHIWARDEN_AUDIT_HMAC_KEY"
HMAC_KEY_BYTES = 32


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key: all an auditor needs to check checkpoints and proofs."""

    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def id(self) -> str:
        return key_id(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "public key") -> VerifyKey:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise AuditKeyError(f"{source}: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError(f"{source}: not an Ed25519 public key")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> VerifyKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AuditKeyError(f"cannot read the public key {path}: {exc.strerror or exc}") from None
        if b"PRIVATE KEY" in data:
            return SigningKey.from_pem(data, source=str(path)).public
        return cls.from_pem(data, source=str(path))


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public(self) -> VerifyKey:
        return VerifyKey(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    @classmethod
    def from_pem(cls, data: bytes, *, source: str, path: Path | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AuditKeyError(f"{source}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError(f"{source}: not an Ed25519 private key")
        return cls(key, path)

    @classmethod
    def load(cls, path: Path, *, create: bool) -> SigningKey:
        """The key in `path`; with `create`, a new one is generated there if the file does not exist."""
        if create and not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            if _write_secret(path, pem):
                public = VerifyKey(key.public_key())
                _write_public(path.with_suffix(".pub"), public.pem())
                return cls(key, path)
        return cls.from_pem(_read_secret(path, "signing key"), source=str(path), path=path)


@dataclass(frozen=True, slots=True)
class HmacKey:
    secret: bytes = field(default=b"", repr=False)
    # HMAC keyed with `secret` and fed nothing: copying it skips the key set-up, which is most of
    # the cost of hashing a short value.
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.secret, digestmod=hashlib.sha256))

    @property
    def id(self) -> str:
        """A public fingerprint of the key (a one-way function of it) to tell keys apart."""
        return hmac.new(self.secret, b"phiwarden audit hmac key id", hashlib.sha256).hexdigest()[:16]

    def hash_value(self, value: str) -> str:
        """HMAC-SHA256 (hex) of the normalized value; see `normalize_value`."""
        digest = self._keyed.copy()
        digest.update(normalize_value(value).encode("utf-8"))
        return digest.hexdigest()

    @classmethod
    def load(cls, path: Path, *, create: bool) -> HmacKey:
        if not path.exists():
            if not create:
                raise AuditKeyError(
                    f"the HMAC key {path} does not exist: no audit log has used it. Hash with the log's "
                    "key: run where the log's policy is found, pass its [audit] settings, or set "
                    f"${HMAC_KEY_FILE_ENV} as the writers have it"
                )
            _write_secret(path, os.urandom(HMAC_KEY_BYTES).hex().encode())
        return cls.from_text(_read_secret(path, "HMAC key").decode("ascii", "replace"), source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str) -> HmacKey:
        text = text.strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            try:
                secret = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise AuditKeyError(f"{source}: the HMAC key must be hex or base64") from None
        if len(secret) < HMAC_KEY_BYTES:
            raise AuditKeyError(f"{source}: the HMAC key must be at least {HMAC_KEY_BYTES} bytes")
        return cls(secret)


def normalize_value(value: str) -> str:
    """One spelling per value: NFKC, case-folded, letters and digits only.

    "123-45-6789", "123 45 6789" and "123456789" hash alike, as do "Ana Díaz" and "ANA DÍAZ", so a
    lookup finds a value whatever punctuation it was sent with.
    """
    folded = unicodedata.normalize("NFKC", value).casefold()
    kept = "".join(ch for ch in folded if ch.isalnum())
    return kept or folded.strip()


def resolve_signing_key_path(configured: Path | None) -> Path:
    from phiwarden.audit.paths import default_signing_key

    env = os.environ.get(SIGNING_KEY_FILE_ENV)
    return Path(env) if env else configured or default_signing_key()


def resolve_hmac_key_path(configured: Path | None) -> Path:
    from phiwarden.audit.paths import default_hmac_key

    env = os.environ.get(HMAC_KEY_FILE_ENV)
    return Path(env) if env else configured or default_hmac_key()


def load_hmac_key(configured: Path | None, *, create: bool, database: Path | None = None) -> HmacKey:
    """The HMAC key in force: $PHIWARDEN_AUDIT_HMAC_KEY, else the file from the environment, the
    policy (`configured`) or the default path, which must not sit beside the SQLite `database`."""
    value = os.environ.get(HMAC_KEY_ENV)
    if value:
        return HmacKey.from_text(value, source=HMAC_KEY_ENV)
    path = resolve_hmac_key_path(configured)
    check_apart(path, database, "HMAC key", setting=f"[audit] hmac_key or ${HMAC_KEY_FILE_ENV}")
    return HmacKey.load(path, create=create)


def check_apart(key_path: Path, database: Path | None, what: str, *, setting: str | None = None) -> None:
    """Refuse a key file sitting in the database's directory: whoever copies one would get both.

    `setting` names where the key's location is configured, for the message.
    """
    if database is None:
        return
    if key_path.resolve().parent == database.resolve().parent:
        where = f", and point {setting} at it" if setting else ""
        raise AuditKeyError(
            f"the {what} {key_path} is in the same directory as the audit database {database}; "
            "whoever copies that directory would get both. Move the key to another directory, "
            f"ideally on other storage such as a secrets mount{where}"
        )


def _write_secret(path: Path, data: bytes) -> bool:
    """Create `path` 0600 with `data`; False if another process created it first."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise AuditKeyError(f"cannot create the key file {path}: {exc.strerror or exc}") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _write_public(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise AuditKeyError(f"cannot write the public key {path}: {exc.strerror or exc}") from None


def _read_secret(path: Path, what: str) -> bytes:
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditKeyError(f"the {what} {path} does not exist") from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if sys.platform != "win32" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"the {what} {path} is accessible by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    return data
