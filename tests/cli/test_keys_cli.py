"""`phiwarden keys` as administrators run it: where the policy is found, scopes, expiry, revocation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from phiwarden.cli import build_parser, main

POLICY = """
[gateway]
store = "data/gateway.db"
key_secret = "keys/secret.key"

[[gateway.repository]]
name = "acme/ehr-legacy"
mode = "monitor"

[[destination]]
id = "openai-baa"
provider = "openai"
base_url = "https://api.openai.com"
models = ["gpt-*"]

[[identity]]
id = "ana@example.org"
groups = []

[[identity]]
id = "ci-bot"
kind = "agent"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with its policy at the root; commands run from a subdirectory."""
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "src" / "app").mkdir(parents=True)
    (root / "phiwarden.toml").write_text(POLICY)
    monkeypatch.chdir(root / "src" / "app")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_use_the_policy_found_in_parent_directories(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "create", "ana@example.org", "--label", "laptop", "--tier", "public", "--format", "json"
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["key"].startswith("pwk_") and created["tiers"] == ["public"]
    assert (project / "data" / "gateway.db").is_file()  # the store the policy names, not a default one
    code, out, _ = run(capsys, "list", "--format", "json")
    listed = json.loads(out)
    assert [k["key_id"] for k in listed] == [created["key_id"]] and "key" not in listed[0]
    assert created["key"] not in out
    code, out, _ = run(capsys, "rotate", created["key_id"], "--expires-days", "never")
    assert code == 0 and out.strip().startswith("pwk_")
    assert json.loads(run(capsys, "list", "--format", "json")[1])[1]["expires_at"] is None


def test_without_a_policy_keys_refuse_and_say_where_they_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    (tmp_path / "elsewhere" / ".git").mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run(capsys, "create", "ana@example.org")
    assert code == 2 and out == ""
    assert f"no phiwarden.toml found (looked in {elsewhere}, {elsewhere.parent}); pass --policy FILE" in err
    code, _, err = run(capsys, "--policy", str(tmp_path / "missing.toml"), "list")
    assert code == 2 and "no policy file" in err


def test_revoke_accepts_the_whole_key_and_says_when_there_is_nothing_to_revoke(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = run(capsys, "create", "ana@example.org")[1].strip()
    key_id = key.split("_")[1]
    code, out, _ = run(capsys, "revoke", key)
    assert code == 0 and out.strip() == f"revoked {key_id} (ana@example.org)"
    code, _, err = run(capsys, "revoke", key_id)
    assert code == 1 and f"key {key_id} is already revoked" in err
    code, _, err = run(capsys, "revoke", "deadbeefdeadbeef")
    assert code == 1 and "no key deadbeefdeadbeef" in err
    code, _, err = run(capsys, "rotate", key_id)
    assert code == 1 and "is revoked" in err
    with pytest.raises(SystemExit) as exited:
        run(capsys, "revoke", key[:-3])
    assert exited.value.code == 2
    assert key[:-3] not in capsys.readouterr().err  # a mistyped key is never echoed


@pytest.mark.parametrize("days", ["-5", "0", "nan", "soon"])
def test_an_expiry_must_be_positive(project: Path, capsys: pytest.CaptureFixture[str], days: str) -> None:
    with pytest.raises(SystemExit) as exited:
        run(capsys, "create", "ana@example.org", "--expires-days", days)
    assert exited.value.code == 2
    assert "expected a positive number of days or never" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "rotate", "deadbeefdeadbeef", "--grace-seconds", "-1")


def test_identity_repository_and_destination_checks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "create", "stranger@example.org")
    assert code == 0
    assert "warning: 'stranger@example.org' is not in [[identity]]" in err and "the key works" in err
    code, _, err = run(capsys, "create", "ci-bot")
    assert code == 0 and "is an agent in [[identity]]; this key says a person (use --agent)" in err
    code, out, err = run(
        capsys, "create", "ci-bot", "--agent", "--repository", "acme/ehr-legacy", "--format", "json"
    )
    assert code == 0 and "warning" not in err
    assert json.loads(out)["repositories"] == ["acme/ehr-legacy"]
    assert "repositories acme/ehr-legacy" in run(capsys, "list")[1]
    code, _, err = run(capsys, "create", "ci-bot", "--repository", "acme/other")
    assert code == 2 and "no [[gateway.repository]] named 'acme/other'" in err
    code, _, err = run(capsys, "create", "x", "--destination", "nope")
    assert code == 2 and "no [[destination]] named 'nope'" in err


@pytest.mark.parametrize("command", ["keys", "gateway"])
def test_every_option_has_help(command: str) -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = [commands.choices[command]]
    for action in parsers[0]._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    for sub in parsers:
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                assert action.help, f"{sub.prog} {action.dest} has no help"
