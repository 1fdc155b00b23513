"""`phiwarden gateway --check` reads and never writes; its exit status says what is wrong; the keys a
store was written with are the only ones a gateway starts with."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import pytest

from phiwarden.cli import main
from phiwarden.gateway.keyclaims import KeyClaimError
from phiwarden.gateway.runtime import Runtime
from phiwarden.policy import load_policy

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "gateway" / "phiwarden.toml"
POLICY = """
[audit]
store = "data/audit.db"
hmac_key = "keys/hmac.key"
signing_key = "keys/signing.key"
witnesses = []
[gateway]
store = "data/gateway.db"
vault_key = "keys/vault.key"
key_secret = "keys/secret.key"
[[destination]]
id = "cloud"
provider = "anthropic"
base_url = "https://api.anthropic.com"
models = ["claude-*"]
api_key_env = "PHIWARDEN_TEST_CHECK_KEY"
[[destination]]
id = "local-llm"
provider = "vllm"
base_url = "http://127.0.0.1:8000"
models = ["qwen-*"]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    for name in list(os.environ):
        if name.startswith(("PHIWARDEN_AUDIT_", "PHIWARDEN_VAULT", "PHIWARDEN_GATEWAY", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PHIWARDEN_TEST_CHECK_KEY", "sk-test")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _check(policy: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["gateway", "--check", "--policy", str(policy)])
    out, err = capsys.readouterr()
    return code, out, err


def _policy(root: Path, name: str = "gw", text: str = POLICY) -> Path:
    (root / name).mkdir(exist_ok=True)
    path = root / name / "phiwarden.toml"
    path.write_text(text)
    return path


def test_the_readme_example_passes_with_only_the_anthropic_key_and_creates_nothing(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    before = _files(home) | _files(EXAMPLE.parent)
    code, out, err = _check(EXAMPLE, capsys)
    review_by = load_policy(EXAMPLE).gateway.destinations[0].review_by
    assert review_by is not None
    assert code == (0 if review_by >= dt.date.today() else 1), err
    assert "2 usable destination(s): anthropic-baa, local-llm" in out
    assert "starting would create the audit store" in err and "starting would create the vault key" in err
    assert _files(home) | _files(EXAMPLE.parent) == before
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    code, out, err = _check(EXAMPLE, capsys)
    assert code == 2 and out == ""
    assert "error: destination 'anthropic-baa': $ANTHROPIC_API_KEY is not set on the gateway host" in err


def test_check_exit_status_says_what_is_wrong(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = _policy(home)
    assert _check(policy, capsys)[0] == 0
    assert _files(home) == {policy}, "--check wrote something"
    passed = POLICY.replace(
        'api_key_env = "PHIWARDEN_TEST_CHECK_KEY"', 'review_by = 2020-01-01\napi_key_env = "X"'
    )
    code, out, err = _check(_policy(home, "expired", passed), capsys)
    # A disabled destination does not need its credential: exit 1, not 2.
    assert code == 1 and "disabled by their review date: cloud" in out, err
    monkeypatch.delenv("PHIWARDEN_TEST_CHECK_KEY")
    code, _, err = _check(policy, capsys)
    assert code == 2 and "$PHIWARDEN_TEST_CHECK_KEY is not set" in err


def test_help_states_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["gateway", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "Exit status: 0 all is well; 1 a destination is disabled by a passed review date; 2 an error" in text
    )


def test_a_store_refuses_keys_other_than_those_it_was_written_with(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(home)
    runtime = Runtime.build(load_policy(policy))
    runtime.keys.create("ana@example.org")
    runtime.writer.close()
    runtime.store.close()
    assert _check(policy, capsys)[0] == 0
    keys = home / "gw" / "keys"
    # Another vault key: refused by the check and at start.
    original = (keys / "vault.key").read_text()
    (keys / "vault.key").write_text("ab" * 32)
    code, _, err = _check(policy, capsys)
    assert code == 2 and "was written with vault key" in err and "but the vault key here" in err
    with pytest.raises(KeyClaimError, match="give every replica the same vault key"):
        Runtime.build(load_policy(policy))
    (keys / "vault.key").write_text(original)
    # No key secret on this host: never generated for a store that names one.
    (keys / "secret.key").unlink()
    code, _, err = _check(policy, capsys)
    assert code == 2 and "which this host does not have" in err
    with pytest.raises(KeyClaimError, match="gateway key secret"):
        Runtime.build(load_policy(policy))
    assert not (keys / "secret.key").exists()
    # A store written before key ids were recorded: its API keys say a secret existed.
    with sqlite3.connect(home / "gw" / "data" / "gateway.db") as db:
        db.execute("DROP TABLE gateway_key_claims")
    with pytest.raises(KeyClaimError, match="already holds API keys made with a gateway key secret"):
        Runtime.build(load_policy(policy))
    assert not (keys / "secret.key").exists()
