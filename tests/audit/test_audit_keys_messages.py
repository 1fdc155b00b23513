"""Keys apart from the database from every source, one HMAC key for hashing and lookup, and messages
that never carry a raw value or a store password."""

from __future__ import annotations

from pathlib import Path

import pytest

from phiwarden.audit import (
    Actor,
    AuditEvent,
    AuditKeyError,
    AuditLog,
    Classification,
    Decision,
    EventError,
    hash_value,
)
from phiwarden.audit.redact import redact_url, scrub
from phiwarden.policy import parse_policy
from phiwarden.policy.audit import AuditSettings

SSN = "518-42-7731"


def _db(tmp_path: Path) -> Path:
    return tmp_path / "db" / "audit.db"


@pytest.mark.parametrize("variable", ["PHIWARDEN_AUDIT_HMAC_KEY_FILE", "PHIWARDEN_AUDIT_SIGNING_KEY_FILE"])
def test_a_key_file_from_the_environment_beside_the_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    key = _db(tmp_path).parent / "env.key"
    monkeypatch.setenv(variable, str(key))
    with pytest.raises(AuditKeyError, match="same directory as the audit database") as info:
        AuditLog.open(AuditSettings(store=str(_db(tmp_path)), witnesses=()))
    assert "Move the key to another directory" in str(info.value)
    assert variable.removesuffix("_FILE").split("_")[-1].lower() in str(info.value).lower()
    assert not key.exists()  # refused before anything was created beside the data


def test_the_policy_hmac_key_beside_the_database_is_refused(tmp_path: Path) -> None:
    settings = AuditSettings(store=str(_db(tmp_path)), hmac_key=str(_db(tmp_path).parent / "h.key"))
    with pytest.raises(AuditKeyError, match=r"HMAC key .* same directory.*\[audit\] hmac_key"):
        AuditLog.open(settings)


def test_the_default_hmac_key_path_is_checked_too(tmp_path: Path) -> None:
    keys = tmp_path / "xdg_config_home" / "phiwarden" / "keys"
    settings = AuditSettings(
        store=str(keys / "audit.db"), signing_key=str(tmp_path / "elsewhere" / "s.key"), witnesses=()
    )
    with pytest.raises(AuditKeyError, match=r"HMAC key .*audit-hmac\.key is in the same directory"):
        AuditLog.open(settings)


def test_hash_value_uses_the_key_of_the_policy_found_from_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "phiwarden.toml"
    policy.write_text('[audit]\nstore = "db/audit.db"\nhmac_key = "keys/custom-hmac.key"\nwitnesses = []\n')
    settings = parse_policy(policy.read_text(), source=str(policy)).audit
    with AuditLog.open(settings) as log:
        expected = log.hash_value(SSN)
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    assert hash_value(SSN) == expected == hash_value(SSN, settings)
    assert not (tmp_path / "xdg_config_home" / "phiwarden" / "keys" / "audit-hmac.key").exists()


def test_hash_value_never_creates_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AuditKeyError, match="does not exist: no audit log has used it"):
        hash_value(SSN)
    assert not (tmp_path / "xdg_config_home").exists()


def _event(**classification: object) -> AuditEvent:
    return AuditEvent(
        actor=Actor("ana@example.org"),
        operation="op",
        decision=Decision("allow", "p", "1"),
        classification=Classification("internal", **classification),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("build", "field", "shape"),
    [
        (
            lambda: _event(categories={SSN: 1}),
            "classification.categories",
            "11 characters with digits and dashes",
        ),
        (lambda: _event(value_hashes={"ssn": (SSN,)}), "value_hashes['ssn']", "11 characters"),
        (lambda: _event(categories={"ssn": -518427731}), "categories['ssn']", "a negative number"),
        (
            lambda: AuditEvent(
                actor=Actor(518427731),  # type: ignore[arg-type]
                operation="op",
                decision=Decision("allow", "p", "1"),
                classification=Classification("internal"),
            ),
            "actor.user_id must be text",
            "a number",
        ),
        (
            lambda: AuditEvent(
                actor=Actor("ana@example.org"),
                operation="op",
                decision=Decision(SSN, "p", "1"),  # type: ignore[arg-type]
                classification=Classification("internal"),
            ),
            "decision.action must be one of",
            "11 characters",
        ),
    ],
)
def test_event_errors_name_the_field_and_never_echo_the_value(build: object, field: str, shape: str) -> None:
    with pytest.raises(EventError) as info:
        build()  # type: ignore[operator]
    message = str(info.value)
    assert field in message and shape in message
    assert "518" not in message and "7731" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://audit:S3cretPw@db:5432/x", "postgresql://audit:***@db:5432/x"),
        ("postgresql://audit@db/x?password=S3cretPw", "postgresql://audit@db/x?password=***"),
        (
            "postgresql://a@db/x?sslmode=require&sslpassword=S3cretPw&options=-csearch_path%3Dy",
            "postgresql://a@db/x?sslmode=require&sslpassword=***&options=-csearch_path%3Dy",
        ),
        ("postgresql://a:p%40ss@h1,h2/x?PASSWORD=S3cretPw", "postgresql://a:***@h1,h2/x?PASSWORD=***"),
        ("sqlite:///var/lib/audit.db", "sqlite:///var/lib/audit.db"),
    ],
)
def test_store_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_driver_messages_lose_the_url_secrets() -> None:
    url = "postgresql://a:S3cr%et@db/x?password=Pw%21x"
    assert scrub('invalid percent-encoded token: "S3cr%et"; also Pw!x', url) == (
        'invalid percent-encoded token: "***"; also ***'
    )


def test_key_mismatch_message_shows_no_password(pg_url: str, tmp_path: Path) -> None:
    url = pg_url + "&password=S3cretPw"
    AuditLog.open(AuditSettings(store=url, witnesses=())).close()
    other = AuditSettings(store=url, signing_key=str(tmp_path / "other" / "k.key"), witnesses=())
    with pytest.raises(AuditKeyError, match="password=\\*\\*\\*") as info:
        AuditLog.open(other)
    assert "S3cretPw" not in str(info.value)
