"""`phiwarden gateway --check`: where the policy is found, and what the vendor matrix's dates disable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from phiwarden.cli import main


def destination(name: str, review_by: dt.date, **extra: str) -> str:
    lines = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return (
        f'[[destination]]\nid = "{name}"\nprovider = "openai"\nbase_url = "https://{name}.example.com/v1"\n'
        f'models = ["{name}-*"]\nbaa = true\ntiers = ["public", "internal"]\nreview_by = {review_by}\n{lines}'
    )


def local(review_by: dt.date) -> str:
    return (
        '[[destination]]\nid = "local-llm"\nprovider = "vllm"\nbase_url = "http://127.0.0.1:8000"\n'
        f'models = ["qwen-*"]\ntiers = ["public", "internal", "restricted"]\nreview_by = {review_by}\n'
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    root = tmp_path / "gw"
    (root / ".git").mkdir(parents=True)
    (root / "conf").mkdir()
    monkeypatch.chdir(root / "conf")
    return root


def check(project: Path, capsys: pytest.CaptureFixture[str], policy: str) -> tuple[int, str, str]:
    (project / "phiwarden.toml").write_text(
        '[audit]\nstore = "data/audit.db"\nhmac_key = "keys/hmac.key"\nsigning_key = "keys/signing.key"\n'
        'witnesses = []\n[gateway]\nvault_key = "keys/vault.key"\nkey_secret = "keys/secret.key"\n'
        'route_to = "local-llm"\n' + policy
    )
    capsys.readouterr()
    code = main(["gateway", "--check"])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_warns_about_passed_and_coming_reviews(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    today = dt.date.today()
    code, out, err = check(
        project,
        capsys,
        destination("fresh", today + dt.timedelta(days=400))
        + destination("soon", today + dt.timedelta(days=12))
        + destination("stale", today - dt.timedelta(days=1))
        + local(today - dt.timedelta(days=300)),
    )
    # A destination disabled by its review date: exit status 1.
    assert code == 1, err
    assert "2 usable destination(s): fresh, soon" in out and str(project / "phiwarden.toml") in out
    assert out.rstrip().endswith("disabled by their review date: stale, local-llm")
    assert (
        f"destination 'stale' is disabled: its vendor review date {today - dt.timedelta(days=1)} has passed"
        in err
    )
    assert "'local-llm' is disabled" in err and "restricted content cannot be routed to it" in err
    assert f"destination 'soon' is due for review on {today + dt.timedelta(days=12)} (in 12 days)" in err
    assert "'fresh'" not in err


def test_check_fails_when_no_destination_is_usable(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    past = dt.date.today() - dt.timedelta(days=30)
    code, out, err = check(project, capsys, destination("stale", past) + local(past))
    assert code == 2 and out == ""
    assert "no usable [[destination]]" in err and "'stale' is disabled" in err


def test_check_warns_about_a_monitor_repository_no_one_may_claim(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = dt.date.today() + dt.timedelta(days=400)
    code, _, err = check(
        project,
        capsys,
        '[[gateway.repository]]\nname = "acme/ehr-legacy"\nmode = "monitor"\n'
        '[[gateway.repository]]\nname = "acme/pilot"\nmode = "monitor"\nidentities = ["ana@example.org"]\n'
        + destination("fresh", future)
        + local(future),
    )
    assert code == 0
    assert "repository 'acme/ehr-legacy' is in monitor mode but lists no groups or identities" in err
    assert "acme/pilot" not in err


def test_gateway_without_a_policy_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    assert main(["gateway", "--check"]) == 2
    assert (
        f"no phiwarden.toml found (looked in {tmp_path / 'repo'}); pass --policy FILE"
        in capsys.readouterr().err
    )
