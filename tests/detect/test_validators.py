from __future__ import annotations

import pytest

from phiwarden.detect import validators as v


@pytest.mark.parametrize("number", ["4539578763621486", "4111 1111 1111 1111", "79927398713"])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert v.luhn(number)


@pytest.mark.parametrize("number", ["4539578763621487", "1234567812345678", "7"])
def test_luhn_rejects_invalid_numbers(number: str) -> None:
    assert not v.luhn(number)


def test_npi_uses_the_80840_prefix() -> None:
    assert v.npi("1234567893")  # the CMS documentation example
    assert not v.npi("1234567890")
    assert not v.npi("3234567893")  # NPIs start with 1 or 2


@pytest.mark.parametrize(
    ("dea", "ok"), [("AB1234563", True), ("AB1234564", False), ("A12345678", False), ("AB123456", False)]
)
def test_dea_check_digit(dea: str, ok: bool) -> None:
    assert v.dea(dea) is ok


@pytest.mark.parametrize(
    ("mbi", "ok"),
    [
        ("1EG4TE5MK73", True),
        ("1EG4-TE5-MK73", True),
        ("0EG4TE5MK73", False),  # first character 1-9
        ("1SG4TE5MK73", False),  # S is never used
        ("1EG4TE5MK7", False),
        ("1EG4TE5MKZ3", False),
    ],
)
def test_mbi_layout(mbi: str, ok: bool) -> None:
    assert v.mbi(mbi) is ok


@pytest.mark.parametrize(
    ("vin", "ok"),
    [
        ("1M8GDM9AXKP042788", True),
        ("1M8GDM9A1KP042788", False),
        ("1M8GDM9AXKP04278", False),
        ("1M8GDM9AXKP04278O", False),
    ],
)
def test_vin_check_digit(vin: str, ok: bool) -> None:
    assert v.vin(vin) is ok


@pytest.mark.parametrize("ssn", ["501-22-3344", "123 45 6788", "772149833"])
def test_ssn_accepts_issuable_numbers(ssn: str) -> None:
    assert v.ssn(ssn)


@pytest.mark.parametrize(
    "ssn",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "912-34-5678",  # area 9xx (ITIN range)
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "078-05-1120",  # the Woolworth wallet card
        "219-09-9999",  # advertised by the SSA
        "123-45-6789",  # the documentation number
        "111-11-1111",
    ],
)
def test_ssn_rejects_invalid_and_advertised_numbers(ssn: str) -> None:
    assert not v.ssn(ssn)


@pytest.mark.parametrize("phone", ["(415) 872-2671", "212-867-5309", "+1 503 246 6384", "+44 20 7946 0958"])
def test_phone_accepts_dialable_numbers(phone: str) -> None:
    assert v.phone(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "123-456-7890",  # area code cannot start with 1
        "212-155-1234",  # exchange cannot start with 1
        "911-555-1234",  # N11 area code
        "555-555-5555",  # 555 is not an area code
        "212-555-0142",  # 555-01xx is reserved for fiction
        "(415) 555-2671",  # and samples use the rest of the 555 exchange the same way
        "1-800-555-0199",  # toll free: an organisation's number
        "(888) 234-5678",
        "000-000-0000",
    ],
)
def test_phone_rejects_fictional_invalid_and_toll_free(phone: str) -> None:
    assert not v.phone(phone)


@pytest.mark.parametrize(
    ("zip_code", "ok"),
    [
        ("94110", True),
        ("02139-4307", True),
        ("00000", False),
        ("12345", False),
        ("99999", False),
        ("00401", False),
        ("9411", False),
        ("94110-12", False),
    ],
)
def test_zip_rules(zip_code: str, ok: bool) -> None:
    assert v.zip_code(zip_code) is ok


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("73.22.181.9", True),
        ("8.8.8.8", True),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("127.0.0.1", False),
        ("192.0.2.10", False),
        ("203.0.113.5", False),
        ("224.0.0.1", False),
        ("999.1.1.1", False),
        ("2001:db8::1", False),
        ("2606:4700::1111", True),
    ],
)
def test_public_ip(address: str, ok: bool) -> None:
    assert v.public_ip(address) is ok


def test_calendar_dates() -> None:
    assert v.calendar_date(2024, 2, 29)
    assert not v.calendar_date(2023, 2, 29)
    assert not v.calendar_date(2023, 13, 1)
    assert not v.calendar_date(0, 1, 1)


def test_iban_mod_97() -> None:
    assert v.iban("GB82 WEST 1234 5698 7654 32")
    assert not v.iban("GB82 WEST 1234 5698 7654 33")


def test_nhs_number_mod_11() -> None:
    assert v.nhs_number("943 476 5919")
    assert not v.nhs_number("943 476 5918")


def test_payment_cards_exclude_published_test_numbers() -> None:
    assert v.payment_card("4539 5787 6362 1486")
    assert not v.payment_card("4242 4242 4242 4242")  # Stripe's test card
    assert not v.payment_card("4111111111111111")
    assert not v.payment_card("4539578763621487")  # Luhn fails


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("(11) 98765-4321", True),  # Brazil, mobile
        ("030 5528 1190", True),  # Berlin
        ("06 12 34 56 78", True),  # France
        ("07911 123456", True),  # United Kingdom
        ("(123) 456-7890", False),  # 3-3-4 is North American, and NANP refuses it
        ("2024-01-02", False),  # a date
        ("192.168.100.200", False),  # an IPv4 address
        ("01 23 45 67 89", False),  # a run
        ("00 00 00 00 00", False),
        ("12 34 56", False),  # too short
    ],
)
def test_national_phone_numbers(number: str, ok: bool) -> None:
    assert v.phone(number, national=True) is ok
    assert v.phone(number) is False  # without a country code, only under a phone field name


def test_machine_integer_limits_are_no_phone_numbers() -> None:
    assert v.phone("4294967295") is False
    assert v.phone("2147483647") is False
    assert v.phone("(503) 246-6384") is True
