"""The vault at rest: encrypted, bound to its identity and conversation, expiring, shared by replicas
through SQLite or PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from phiwarden.gateway.store import GatewayStore, Pin
from phiwarden.transform.vault import VaultError, VaultKeys, VaultStore

PG_BASE = os.environ.get("PHIWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KEYS = VaultKeys.from_secret(b"\x01" * 32)


def _pg() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError:
        user = os.environ.get("USER", "root")
        return psycopg.connect(PG_BASE.replace("postgres@", f"{user}@"), connect_timeout=3, autocommit=True)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayStore]:
    if request.param == "sqlite":
        opened = GatewayStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        yield opened
        opened.close()
        return
    try:
        admin = _pg()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    schema = f"phiwarden_gw_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    info = admin.info
    opened = GatewayStore(
        f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    )
    try:
        yield opened
    finally:
        opened.close()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def test_saved_vaults_reload_and_are_encrypted(store: GatewayStore) -> None:
    vaults = VaultStore(store, KEYS, ttl_seconds=3600)
    vault = vaults.open("ana@example.org", "conv-1")
    fake = vault.surrogate("ssn", "478-22-9134")
    vaults.save(vault)
    again = vaults.open("ana@example.org", "conv-1")
    assert again.originals() == {fake: "478-22-9134"}
    row = store.vault_load(vault.row_id, time.time())
    assert row is not None
    assert b"478-22-9134" not in row.ciphertext and b"conv-1" not in row.ciphertext
    assert "ana@example.org" not in vault.row_id


def test_other_identities_and_keys_cannot_read_a_vault(store: GatewayStore) -> None:
    vaults = VaultStore(store, KEYS, ttl_seconds=3600)
    vault = vaults.open("ana@example.org", "conv-1")
    vault.surrogate("name", "Maria Garcia")
    vaults.save(vault)
    assert vaults.open("bob@example.org", "conv-1").originals() == {}
    # A row copied under another identity's id fails authentication (AES-GCM associated data).
    stolen = store.vault_load(vault.row_id, time.time())
    assert stolen is not None
    other = vaults.open("bob@example.org", "conv-1")
    with pytest.raises(VaultError):
        other.open_sealed(stolen.nonce, stolen.ciphertext)
    # Another vault key neither finds the row (row ids are keyed) nor decrypts it.
    wrong = VaultStore(store, VaultKeys.from_secret(b"\x02" * 32), 3600)
    assert wrong.open("ana@example.org", "conv-1").originals() == {}
    impostor = wrong.open("ana@example.org", "conv-1")
    impostor.row_id = vault.row_id
    with pytest.raises(VaultError):
        impostor.open_sealed(stolen.nonce, stolen.ciphertext)


def test_vaults_expire(store: GatewayStore) -> None:
    vaults = VaultStore(store, KEYS, ttl_seconds=60)
    vault = vaults.open("ana@example.org", "conv-ttl")
    vault.surrogate("ssn", "478-22-9134")
    vaults.save(vault)
    assert store.vault_load(vault.row_id, time.time() + 120) is None
    assert store.vault_purge(time.time() + 120) == 1
    assert vaults.open("ana@example.org", "conv-ttl").originals() == {}


def test_concurrent_replicas_merge_their_entries(store: GatewayStore) -> None:
    replica_a = VaultStore(store, KEYS, 3600)
    replica_b = VaultStore(store, KEYS, 3600)
    a = replica_a.open("ana@example.org", "conv-race")
    b = replica_b.open("ana@example.org", "conv-race")
    fake_a = a.surrogate("ssn", "478-22-9134")
    fake_b = b.surrogate("name", "Maria Garcia")
    same = b.surrogate("ssn", "478-22-9134")
    assert same == fake_a  # derived, not drawn: replicas agree without talking
    replica_a.save(a)
    replica_b.save(b)  # conflicts with a's write, reloads, merges, writes again
    merged = replica_a.open("ana@example.org", "conv-race").originals()
    assert merged == {fake_a: "478-22-9134", fake_b: "Maria Garcia"}


def test_pins(store: GatewayStore) -> None:
    store.pin_set("row", "local-llm", time.time() + 60)
    store.pin_set("row", "local-llm", time.time() + 90, anchor="d1", anchor_items=3)
    assert store.pin_get("row", time.time()) == [Pin("local-llm"), Pin("local-llm", "d1", 3)]
    assert store.pin_get("row", time.time() + 70) == [Pin("local-llm", "d1", 3)]
    assert store.pin_get("row", time.time() + 120) == []
