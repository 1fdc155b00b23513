"""Format-preserving surrogates and the per-conversation vault."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.transform.identifiers import identifier_spans, neutral
from phiwarden.transform.mask import Masker
from phiwarden.transform.surrogates import surrogate
from phiwarden.transform.vault import Vault, VaultKeys

KEYS = VaultKeys.from_secret(bytes(range(32)))


@pytest.mark.parametrize(
    ("category", "value", "shape"),
    [
        ("ssn", "478-22-9134", r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}"),
        ("ssn", "478229134", r"\d{9}"),
        ("name", "Maria Garcia", r"[A-Z][a-z]+ [A-Z][a-z]+"),
        ("name", "SMITH^JOHN^A", r"[A-Z]+\^[A-Z]+\^[A-Z]"),
        ("name", "Garcia, Maria", r"[A-Z][a-z]+, [A-Z][a-z]+"),
        ("date", "1984-07-12", r"\d{4}-\d{2}-\d{2}"),
        ("date", "07/12/1984", r"\d{2}/\d{2}/\d{4}"),
        ("date", "19840712", r"\d{8}"),
        ("mrn", "MRN-00482913", r"MRN-\d{8}"),
        ("email", "jsmith61@gmail.com", r"[a-z]+\.[a-z]+\d+@[a-z.]*example\.(com|net|org)"),
        ("phone", "(617) 555-0134", r"\([2-9]\d\d\) [2-9]\d\d-\d{4}"),
        ("zip", "02118", r"\d{5}"),
        ("ip", "10.2.3.4", r"\d+\.\d+\.\d+\.\d+"),
        ("url", "https://ehr.example.com/chart?mrn=00482913", r"https://ehr\.example\.com/chart\?mrn=\d{8}"),
        ("secret", "Zx8kP2mQ9vR4tL7wN1bC5dF3gH6jK0sA2eY8uI4o", r"[A-Za-z0-9]{40}"),
    ],
)
def test_surrogates_keep_the_format_and_drop_the_value(category: str, value: str, shape: str) -> None:
    for seed in range(20):
        out = surrogate(category, value, random.Random(seed))
        assert out != value
        assert re.fullmatch(shape, out), (category, out)
        assert out.isascii()


def test_dates_stay_valid_dates() -> None:
    for seed in range(50):
        dt.date.fromisoformat(surrogate("date", "1984-07-12", random.Random(seed)))


def test_vault_is_consistent_per_conversation_and_never_shared() -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-1")
    first = vault.surrogate("ssn", "478-22-9134")
    assert vault.surrogate("ssn", "478-22-9134") == first
    assert (
        Vault.new(KEYS, "ana@example.org", "conv-1").surrogate("ssn", "478-22-9134") == first
    )  # replicas agree
    assert Vault.new(KEYS, "ana@example.org", "conv-2").surrogate("ssn", "478-22-9134") != first
    assert Vault.new(KEYS, "bob@example.org", "conv-1").surrogate("ssn", "478-22-9134") != first
    assert vault.originals() == {first: "478-22-9134"}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Maria Garcia", "John Smith", "Ann Lee", "Li Wei", "Bo Chen", "Jo Park"]),
        min_size=1,
        max_size=30,
    )
)
def test_distinct_values_get_distinct_surrogates(names: list[str]) -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-names")
    given_out = {name: vault.surrogate("name", name) for name in names}
    assert len(set(given_out.values())) == len(set(given_out))
    assert not set(given_out.values()) & set(given_out)


def test_surrogates_avoid_text_already_in_the_prompt() -> None:
    vault = Vault.new(KEYS, "ana@example.org", "conv-avoid")
    taken = Vault.new(KEYS, "ana@example.org", "conv-avoid").surrogate("ssn", "478-22-9134")
    out = vault.surrogate("ssn", "478-22-9134", avoid=f"the number {taken} already appears")
    assert out != taken


def test_identifier_sanitizing() -> None:
    code = "def calculatePatientRiskScore(patient_id, PATIENT_SSN): return the patient"
    found = {code[s.start : s.end] for s in identifier_spans(code)}
    assert found == {"calculatePatientRiskScore", "patient_id", "PATIENT_SSN"}
    assert neutral("calculatePatientRiskScore") == "calculateSubjectRiskScore"
    assert neutral("patient") is None  # a word in prose is left alone


def test_masking_is_consistent_within_a_request() -> None:
    masker = Masker()
    assert masker.placeholder("ssn", "1") == "[SSN_1]"
    assert masker.placeholder("ssn", "2") == "[SSN_2]"
    assert masker.placeholder("ssn", "1") == "[SSN_1]"
