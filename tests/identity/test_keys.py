"""Gateway API keys: hashed at rest, expiry, revocation (at once, on every replica), rotation, scopes."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phiwarden.gateway.store import GatewayStore
from phiwarden.identity.keys import KeyStore, KeyStoreError, key_id_of

PG_BASE = os.environ.get("PHIWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(GatewayStore(f"sqlite:///{tmp_path / 'gateway.db'}"), b"s" * 32)


def test_keys_verify_and_are_stored_hashed(keys: KeyStore, tmp_path: Path) -> None:
    key, record = keys.create("ana@example.org", label="laptop")
    assert key.startswith("pwk_") and keys.verify(key) == record
    assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.verify("pwk_garbage") is None
    # The secret is base64url (it may hold "_"): it is the fixed-width tail after `pwk_<16 hex>_`.
    secret = key[len("pwk_") + 16 + 1 :]
    assert len(secret) == 43
    assert secret.encode() not in (tmp_path / "gateway.db").read_bytes()
    # Another server secret cannot verify the key: the stored digest is keyed.
    assert KeyStore(keys.backend, b"t" * 32).verify(key) is None


def test_expiry_revocation_rotation(keys: KeyStore) -> None:
    expired, _ = keys.create("ana@example.org", expires_in_days=-0.001)
    assert keys.verify(expired) is None
    key, record = keys.create("agent-ci", kind="agent", tiers=("public",), destinations=("openai-baa",))
    new_key, new_record = keys.rotate(record.key_id)
    assert keys.verify(key) is None and keys.verify(new_key) == new_record
    assert new_record.tiers == ("public",) and new_record.destinations == ("openai-baa",)
    assert new_record.rotated_from == record.key_id and new_record.kind == "agent"
    keys.revoke(new_record.key_id)
    assert keys.verify(new_key) is None
    with pytest.raises(KeyStoreError):
        keys.revoke("0000000000000000")
    graced, graced_record = keys.create("bob@example.org")
    keys.rotate(graced_record.key_id, grace_seconds=60)
    assert keys.verify(graced) is not None  # still valid during the grace period
    retiring = keys.backend.key_get(graced_record.key_id)
    assert retiring is not None and retiring.to_dict()["state"] == "retiring"  # not "active"
    assert {r.state(time.time()) for r in keys.backend.key_list()} >= {
        "revoked",
        "active",
        "expired",
        "retiring",
    }


def test_revoking_twice_or_an_unknown_key_says_so(keys: KeyStore) -> None:
    _, record = keys.create("ana@example.org")
    assert keys.revoke(record.key_id).identity == "ana@example.org"
    with pytest.raises(KeyStoreError, match="already revoked"):
        keys.revoke(record.key_id)
    with pytest.raises(KeyStoreError, match="is revoked; create a new one"):
        keys.rotate(record.key_id)
    with pytest.raises(KeyStoreError, match="no key 0000000000000000"):
        keys.revoke("0000000000000000")
    # A key in a rotation's grace period can still be revoked at once.
    _, graced = keys.create("bob@example.org")
    keys.rotate(graced.key_id, grace_seconds=600)
    keys.revoke(graced.key_id)


def test_a_key_is_referred_to_by_its_id_or_the_whole_key(keys: KeyStore) -> None:
    key, record = keys.create("ana@example.org")
    assert key_id_of(key) == record.key_id == key_id_of(f"  {record.key_id}\n")
    for wrong in ("pwk_short", "ANA", key[:-1], "0123456789abcdeg"):
        with pytest.raises(KeyStoreError) as caught:
            key_id_of(wrong)
        assert wrong not in str(caught.value)  # a mistyped key is never echoed


def test_repository_bindings_are_stored_and_kept_by_rotation(keys: KeyStore) -> None:
    key, record = keys.create("ci-bot", kind="agent", repositories=("acme/ehr-legacy",))
    stored = keys.verify(key)
    assert stored is not None and stored.repositories == ("acme/ehr-legacy",)
    _, rotated = keys.rotate(record.key_id)
    assert rotated.repositories == ("acme/ehr-legacy",)
    assert rotated.to_dict()["repositories"] == ["acme/ehr-legacy"]


def _replicas(url: str) -> tuple[KeyStore, KeyStore]:
    """Two gateway replicas' key stores on one database, each with its own connection."""
    return KeyStore(GatewayStore(url), b"s" * 32), KeyStore(GatewayStore(url), b"s" * 32)


def _revocation_holds_at_once(first: KeyStore, second: KeyStore) -> None:
    key, record = first.create("ana@example.org")
    assert first.verify(key) == record and second.verify(key) == record
    second.revoke(record.key_id)
    # The very next check on the other replica refuses it: nothing is cached.
    assert first.verify(key) is None
    assert first.verify_now(key)[1] is None


def test_revocation_holds_at_once_on_every_replica_sqlite(tmp_path: Path) -> None:
    _revocation_holds_at_once(*_replicas(f"sqlite:///{tmp_path / 'gateway.db'}"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    schema = f"phiwarden_keys_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    info = admin.info
    try:
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def test_revocation_holds_at_once_on_every_replica_postgresql(pg_url: str) -> None:
    first, second = _replicas(pg_url)
    key, _ = first.create("ana@example.org")
    # With PostgreSQL the check is a network round trip: the gateway makes it in a worker thread.
    assert first.verify_now(key) == (False, None)
    _revocation_holds_at_once(first, second)
