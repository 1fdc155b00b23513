"""`phiwarden audit checkpoint` that cannot sign leaves nothing behind: no key, no checkpoint, no
witness file (the review found a read-only auditor's run created a signing key before failing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog
from phiwarden.cli import main
from phiwarden.policy.audit import AuditSettings

from .conftest import _pg_connect, fill


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def _policy(directory: Path, store: str, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "phiwarden.toml"
    witness = directory / "witness" / "checkpoints.jsonl"
    policy.write_text(
        f'[audit]\nstore = "{store}"\nwitnesses = ["file://{witness}"]\n{extra}', encoding="utf-8"
    )
    return policy


@pytest.fixture
def auditor_role(pg_url: str) -> Iterator[str]:
    """The store's URL for a role with USAGE on its schema and SELECT on its tables only."""
    with AuditLog.open(AuditSettings(store=pg_url, witnesses=())) as log:
        fill(log, 7)
    schema = pg_url.rsplit("%3D", 1)[1]
    role = f"phiwarden_auditor_{uuid.uuid4().hex[:10]}"
    admin = _pg_connect()
    try:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        info = admin.info
        yield f"postgresql://{role}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


def test_an_auditor_without_the_signing_key_creates_none(
    auditor_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    writer_keys = tmp_path / "xdg_config_home" / "phiwarden" / "keys"
    monkeypatch.setenv("PHIWARDEN_AUDIT_HMAC_KEY_FILE", str(writer_keys / "audit-hmac.key"))
    home = tmp_path / "auditor"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    policy = _policy(home, auditor_role)
    before = _files(home)
    assert main(["audit", "checkpoint", "--policy", str(policy)]) == 2
    assert "signing key" in capsys.readouterr().err
    assert _files(home) == before


def test_an_auditor_with_the_keys_but_select_only_writes_nothing(
    auditor_role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "xdg_config_home" / "phiwarden" / "keys"
    home = tmp_path / "auditor"
    policy = _policy(
        home,
        auditor_role,
        f'signing_key = "{keys / "audit-signing.key"}"\nhmac_key = "{keys / "audit-hmac.key"}"\n',
    )
    before = _files(home), _files(keys)
    assert main(["audit", "checkpoint", "--policy", str(policy)]) == 2
    assert "permission denied" in capsys.readouterr().err
    assert (_files(home), _files(keys)) == before


def test_a_store_whose_keys_are_gone_gets_no_new_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path / "writer", f"sqlite:///{tmp_path / 'db' / 'audit.db'}")
    with AuditLog.open(AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())) as log:
        fill(log, 3)
    keys = tmp_path / "xdg_config_home" / "phiwarden" / "keys"
    for key in _files(keys):
        key.unlink()
    assert main(["audit", "checkpoint", "--policy", str(policy)]) == 2
    assert "signing key" in capsys.readouterr().err
    assert _files(keys) == [] and _files(tmp_path / "writer" / "witness") == []
