"""Gateway API keys: hashed at rest, expiry, revocation, rotation, scopes; and the `phiwarden keys` CLI."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from phiwarden.cli import main
from phiwarden.gateway.store import GatewayStore
from phiwarden.identity.keys import KeyStore, KeyStoreError


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(GatewayStore(f"sqlite:///{tmp_path / 'gateway.db'}"), b"s" * 32, cache_seconds=0)


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
    assert {r.state(time.time()) for r in keys.backend.key_list()} >= {"revoked", "active", "expired"}


def test_keys_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "phiwarden.toml").write_text(
        '[gateway]\nstore = "data/gateway.db"\nkey_secret = "keys/secret.key"\n'
        '[[destination]]\nid = "openai-baa"\nprovider = "openai"\nbase_url = "https://api.openai.com"\nmodels = ["gpt-*"]\n'
    )

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(list(argv))
        return code, out.getvalue()

    code, out = run(
        "keys", "create", "ana@example.org", "--label", "laptop", "--tier", "public", "--format", "json"
    )
    assert code == 0
    created = json.loads(out)
    assert created["key"].startswith("pwk_") and created["tiers"] == ["public"]
    code, out = run("keys", "list", "--format", "json")
    listed = json.loads(out)
    assert [k["key_id"] for k in listed] == [created["key_id"]] and "key" not in listed[0]
    assert created["key"] not in out
    code, out = run("keys", "rotate", created["key_id"])
    assert code == 0 and out.strip().startswith("pwk_")
    assert run("keys", "revoke", created["key_id"])[0] == 0
    assert run("keys", "create", "x", "--destination", "nope")[0] == 2
