"""Detectors a team adds in phiwarden.toml, without writing Python."""

from __future__ import annotations

import pytest

from phiwarden.policy import PolicyError, parse_policy
from tests.helpers import values

POLICY = """
version = 1

[[detector]]
id = "acme.member_id"
category = "health_plan"
description = "Acme Health member id"
pattern = '\\bAH(?P<value>\\d{9})\\b'
keywords = ["ah*"]
validator = "luhn"
context = ["member", "acme"]
confidence = 0.95
confidence_without_context = 0.7
placeholders = ["AH000000000"]

[[detector]]
id = "acme.chart_id"
category = "mrn"
pattern = 'CH-\\d{6}'
keys = ["acme_chart_id", "chartRef"]
confidence = 0.9

[[detector]]
id = "acme.phi_db_host"
category = "other_id"
description = "internal hostnames of PHI databases"
pattern = '\\b(?:ehr|claims)-db-\\d+\\.acme\\.internal\\b'
confidence = 0.8
"""


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return parse_policy(POLICY, source="phiwarden.toml")


def test_pattern_validator_and_context(policy) -> None:  # type: ignore[no-untyped-def]
    from phiwarden.detect import scan_text

    valid = _with_luhn("79927398")
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert values(f"acme member AH{valid} and AH{invalid}", "health_plan", policy=policy) == [valid]
    with_context = scan_text(f"acme member AH{valid}", policy=policy)
    without_context = scan_text(f"ref AH{valid}", policy=policy)
    assert [f.confidence for f in with_context] == [0.95]
    assert [f.confidence for f in without_context] == [0.7]


def test_placeholders_of_a_custom_detector(policy) -> None:  # type: ignore[no-untyped-def]
    assert values("acme member AH000000000", "health_plan", policy=policy) == []


def test_keys_route_field_values_to_the_detector(policy) -> None:  # type: ignore[no-untyped-def]
    text = '{"acme_chart_id": "CH-448120", "chartRef": "not-a-chart"}'
    assert values(text, "mrn", policy=policy) == ["CH-448120"]


def test_custom_detector_without_keywords_runs_everywhere(policy) -> None:  # type: ignore[no-untyped-def]
    text = "DSN points at claims-db-7.acme.internal for reporting"
    assert values(text, "other_id", policy=policy) == ["claims-db-7.acme.internal"]


def test_custom_detectors_reach_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from phiwarden.cli import main

    (tmp_path / "phiwarden.toml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("replica claims-db-12.acme.internal\n", encoding="utf-8")
    assert main(["scan", str(tmp_path), "-q", "--format", "json", "-o", str(tmp_path / "out.json")]) == 1
    assert '"rule": "acme.phi_db_host"' in (tmp_path / "out.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "[[detector]]\nid = 'x'\ncategory = 'mrn'\npattern = '(?<=a)b'\n",
            "detector[0].pattern: not a valid linear-time",
        ),
        (
            "[[detector]]\nid = 'x'\ncategory = 'patient'\npattern = 'a'\n",
            "detector[0].category: category 'patient' is not one of",
        ),
        (
            "[[detector]]\nid = 'x'\ncategory = 'mrn'\npattern = 'a'\nvalidator = 'checksum'\n",
            "unknown validator 'checksum'",
        ),
        (
            "[[detector]]\nid = 'x'\ncategory = 'mrn'\npattern = 'a'\nconfidence = 2\n",
            "must be a number from 0 to 1",
        ),
        (
            "[[detector]]\nid = 'x'\ncategory = 'mrn'\npattern = 'a'\ncolour = 'red'\n",
            "unknown field 'colour'",
        ),
        ("[[detector]]\nid = 'ssn.formatted'\ncategory = 'ssn'\npattern = 'a'\n", "already a detector id"),
    ],
)
def test_invalid_detectors_name_the_line_and_key(snippet: str, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy("version = 1\n" + snippet, source="phiwarden.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("phiwarden.toml:")


def _luhn(digits: str) -> bool:
    from phiwarden.detect.validators import luhn

    return luhn(digits)


def _with_luhn(digits: str) -> str:
    for check in "0123456789":
        if _luhn(digits + check):
            return digits + check
    raise AssertionError("unreachable")
