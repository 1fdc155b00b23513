from __future__ import annotations

from pathlib import Path

import pytest

from phiwarden.policy import Policy, PolicyError, find_policy, load_policy, parse_policy


def test_defaults_without_a_file() -> None:
    policy = load_policy(None)
    assert policy == Policy()
    assert policy.detection.min_confidence == 0.6
    assert policy.audit.retention_days >= 6 * 365


def test_full_policy_parses() -> None:
    policy = parse_policy(
        """
version = 1
policy_id = "acme-health"
revision = "2026-11-01"

[detection]
min_confidence = 0.7
disable = ["ip", "phone.nanp"]
report_provider_ids = true
fingerprint_salt = "c2FsdC1mb3ItYWNtZQ"

[scan]
include = ["src/**", "tests/**"]
exclude = ["vendor/**"]
respect_gitignore = false
max_file_size = "8MiB"
allow_paths = ["tests/fixtures/synthetic/**"]

[classify]
restricted_paths = ["services/ehr/**"]
public_paths = ["docs/public/**"]
restricted_symbols = ["ChartAccessor"]
phi_tables = ["members_eligibility"]
"""
    )
    assert policy.policy_id == "acme-health"
    assert policy.detection.disabled == frozenset({"ip", "phone.nanp"})
    assert policy.scan.max_file_bytes == 8 * 1024 * 1024
    assert policy.scan.respect_gitignore is False
    assert policy.classify.restricted_symbols == ("ChartAccessor",)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            "[detection]\nmin_confidense = 0.7\n",
            "phiwarden.toml:2: detection.min_confidense: unknown key; did you mean 'min_confidence'?",
        ),
        (
            "\n\n[detection]\nmin_confidence = 1.5\n",
            "phiwarden.toml:4: detection.min_confidence: must be between 0.0 and 1.0, got 1.5",
        ),
        (
            "[detection]\nmin_confidence = 'high'\n",
            "phiwarden.toml:2: detection.min_confidence: expected a number, got the string 'high'",
        ),
        ("[scan]\nexclude = 'vendor'\n", "phiwarden.toml:2: scan.exclude: expected a list of strings"),
        ("[scan]\nmax_file_size = 'lots'\n", "phiwarden.toml:2: scan.max_file_size: expected a size"),
        ("version = 3\n", "phiwarden.toml:1: version: this phiwarden reads policy version 1, got 3"),
        ("[detection\n", "phiwarden.toml:1: not valid TOML"),
        ("[detection]\ndisable = ['nope']\n", "'nope' is neither a detector id nor a category"),
        ("[audit]\nretention_days = 0\n", "phiwarden.toml:2: audit.retention_days: must be between 1"),
        ("colour = 'blue'\n", "phiwarden.toml:1: colour: unknown key"),
    ],
)
def test_errors_name_the_line_and_the_key(document: str, expected: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(document, source="phiwarden.toml")
    assert expected in str(error.value)


def test_find_policy_stops_at_the_repository_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "app").mkdir(parents=True)
    assert find_policy(repo / "src" / "app") is None
    (tmp_path / "phiwarden.toml").write_text("version = 1\n")
    assert find_policy(repo / "src" / "app") is None  # outside the repository
    (repo / "phiwarden.toml").write_text("version = 1\n")
    assert find_policy(repo / "src" / "app") == repo / "phiwarden.toml"


def test_unreadable_policy_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "phiwarden.toml"
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(path)
