"""Starting the gateway: replicas of a shared PostgreSQL store must hold the keys it was written with,
a store the role may not create stops a multi-worker gateway at once, and /readyz is not ready while
a destination has no credential."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phiwarden.gateway.keyclaims import KeyClaimError
from phiwarden.gateway.runtime import Runtime
from phiwarden.policy import load_policy
from tests.gateway.conftest import ANTHROPIC_ENV, OPENAI_ENV, PG_BASE, VENDOR_SECRET, Gateway, policy_text


def _replica(root: Path, name: str, store: str) -> Path:
    """A replica's policy: its own key files (keys/), the shared store for both the audit trail and
    the gateway."""
    (root / name).mkdir()
    policy = root / name / "phiwarden.toml"
    text = policy_text("http://127.0.0.1:9", store=store).replace(
        'store = "data/audit.db"', f'store = "{store}"'
    )
    policy.write_text(text)
    return policy


def _build(policy: Path) -> None:
    runtime = Runtime.build(load_policy(policy))
    runtime.writer.close()
    runtime.store.close()


def test_replicas_of_a_shared_store_must_share_its_keys(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    first = _replica(tmp_path, "first", pg_url)
    _build(first)
    # A replica given copies of the keys joins.
    same = _replica(tmp_path, "same", pg_url)
    shutil.copytree(first.parent / "keys", same.parent / "keys")
    _build(same)
    # One that would generate its own vault key is refused, and generates nothing.
    fresh = _replica(tmp_path, "fresh", pg_url)
    shutil.copytree(first.parent / "keys", fresh.parent / "keys")
    (fresh.parent / "keys" / "vault.key").unlink()
    with pytest.raises(
        KeyClaimError, match=r"was written with vault key [0-9a-f]{16}, which this host does not have"
    ):
        _build(fresh)
    assert not (fresh.parent / "keys" / "vault.key").exists()
    # One configured with another key is refused, and says the way out.
    (fresh.parent / "keys" / "vault.key").write_text("cd" * 32)
    (fresh.parent / "keys" / "vault.key").chmod(0o600)
    with pytest.raises(KeyClaimError, match=r"give every replica the same vault key \(\[gateway\] vault_key"):
        _build(fresh)
    completed = subprocess.run(
        [sys.executable, "-m", "phiwarden", "gateway", "--check", "--policy", str(fresh)],
        env={**os.environ, ANTHROPIC_ENV: VENDOR_SECRET, OPENAI_ENV: VENDOR_SECRET},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert "but the vault key here" in completed.stderr
    assert "***" not in completed.stderr  # no password in the URL, none shown


@pytest.fixture
def no_create_role() -> Iterator[str]:
    """A PostgreSQL role that may use a schema but not create tables in it: its store URL."""
    import psycopg

    try:
        admin = psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    name = f"phiwarden_nocreate_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE ROLE "{name}" LOGIN')
    admin.execute(f'CREATE SCHEMA "{name}"')
    admin.execute(f'GRANT USAGE ON SCHEMA "{name}" TO "{name}"')
    info = admin.info
    try:
        yield f"postgresql://{name}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{name}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.execute(f'DROP OWNED BY "{name}"')
        admin.execute(f'DROP ROLE "{name}"')
        admin.close()


def test_a_multi_worker_gateway_whose_store_is_refused_exits_with_the_reason(
    no_create_role: str, tmp_path: Path
) -> None:
    policy = _replica(tmp_path, "gw", no_create_role)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHIWARDEN_")},
        **{
            name: str(tmp_path / name.lower())
            for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
        },
        ANTHROPIC_ENV: VENDOR_SECRET,
        OPENAI_ENV: VENDOR_SECRET,
    }
    cli = [sys.executable, "-m", "phiwarden", "gateway", "--policy", str(policy)]
    check = subprocess.run(
        [*cli, "--check"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert check.returncode == 2
    assert "has no tables yet and this role may not create them" in check.stderr
    started = subprocess.run(
        [*cli, "--workers", "2", "--listen", f"127.0.0.1:{port}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert started.returncode == 2, started.stderr
    assert "cannot start:" in started.stderr and "permission denied" in started.stderr
    assert "Traceback" not in started.stderr


def test_readyz_is_not_ready_while_a_destination_has_no_credential(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert httpx.get(gateway.url + "/readyz").status_code == 200
    monkeypatch.delenv(OPENAI_ENV)
    response = httpx.get(gateway.url + "/readyz")
    assert response.status_code == 503
    problems = response.json()["problems"]
    assert f"destination 'openai-baa': ${OPENAI_ENV} is not set on the gateway host" in problems[0]
    assert len(problems) == 2  # openai-baa and no-baa-cloud; expired-vendor is disabled anyway
