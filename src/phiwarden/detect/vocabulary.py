"""The word lists the detectors consult, loaded once from the package's data files."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any


def load_data_file(name: str) -> dict[str, Any]:
    """Parse one TOML file shipped in `phiwarden/detect/data/`."""
    text = resources.files("phiwarden.detect").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _lower_set(values: list[str]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


def name_key(value: str) -> frozenset[str]:
    """Order- and punctuation-insensitive form of a name: "Doe, John" == "JOHN DOE"."""
    cleaned = "".join(ch if ch.isalnum() else " " for ch in value.lower())
    return frozenset(cleaned.split())


@dataclass(frozen=True, slots=True)
class Placeholders:
    full_names: frozenset[frozenset[str]]
    name_words: frozenset[str]
    record_surnames: frozenset[str]
    ssn_values: frozenset[str]
    toll_free_area_codes: frozenset[str]
    integer_limits: frozenset[str]
    zip_values: frozenset[str]
    unused_zip_prefixes: frozenset[str]
    date_values: frozenset[str]
    email_domains: frozenset[str]
    email_machine_domains: frozenset[str]
    email_domain_words: frozenset[str]
    email_top_level_domains: frozenset[str]
    email_role_local_parts: frozenset[str]
    streets: frozenset[str]
    places: frozenset[str]
    place_words: frozenset[str]
    example_identifiers: frozenset[str]
    test_card_numbers: frozenset[str]
    identifier_words: frozenset[str]
    secret_values: frozenset[str]
    secret_markers: tuple[str, ...]


@functools.cache
def placeholders() -> Placeholders:
    data = load_data_file("placeholders.toml")
    return Placeholders(
        full_names=frozenset(name_key(n) for n in data["names"]["full"]),
        name_words=_lower_set(data["names"]["words"]),
        record_surnames=_lower_set(data["names"]["record_surnames"]),
        ssn_values=frozenset(data["ssn"]["values"]),
        toll_free_area_codes=frozenset(data["phone"]["toll_free_area_codes"]),
        integer_limits=frozenset(data["phone"]["integer_limits"]),
        zip_values=frozenset(data["zip"]["values"]),
        unused_zip_prefixes=frozenset(data["zip"]["unused_prefixes"]),
        date_values=frozenset(data["dates"]["values"]),
        email_domains=_lower_set(data["email"]["domains"]),
        email_machine_domains=_lower_set(data["email"]["machine_domains"]),
        email_domain_words=_lower_set(data["email"]["domain_words"]),
        email_top_level_domains=_lower_set(data["email"]["top_level_domains"]),
        email_role_local_parts=_lower_set(data["email"]["role_local_parts"]),
        streets=_lower_set(data["address"]["streets"]),
        places=_lower_set(data["address"]["places"]),
        place_words=_lower_set(data["names"]["place_words"]),
        example_identifiers=_lower_set(data["identifiers"]["examples"]),
        test_card_numbers=frozenset(data["cards"]["test_numbers"]),
        identifier_words=_lower_set(data["identifiers"]["words"]),
        secret_values=_lower_set(data["secrets"]["values"]),
        secret_markers=tuple(m.lower() for m in data["secrets"]["markers"]),
    )
