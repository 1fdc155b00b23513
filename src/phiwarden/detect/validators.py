"""Checksums and format rules that turn a pattern match into a credible identifier.

Each validator takes the matched text and answers True when the value can be a real identifier of
its kind. They are registered by name so that data files and policy files can refer to them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import ipaddress
import itertools
from collections.abc import Callable

from phiwarden.detect import vocabulary

Validator = Callable[[str], bool]


def digits_of(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def luhn(value: str) -> bool:
    """Luhn (mod 10) check used by payment cards, NPIs and Canadian SINs."""
    digits = digits_of(value)
    if len(digits) < 2:
        return False
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = int(ch)
        if index % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def npi(value: str) -> bool:
    """US National Provider Identifier: 10 digits, Luhn over the 80840 health-industry prefix."""
    digits = digits_of(value)
    return len(digits) == 10 and digits[0] in "12" and luhn("80840" + digits)


def dea(value: str) -> bool:
    """DEA registration number: two letters and seven digits with a weighted check digit."""
    v = value.strip().upper()
    if len(v) != 9 or not v[:2].isalpha() or not v[2:].isdigit():
        return False
    d = [int(c) for c in v[2:]]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return check == d[6]


_MBI_LETTERS = set("ACDEFGHJKMNPQRTUVWXY")


def mbi(value: str) -> bool:
    """Medicare Beneficiary Identifier: 11 characters in a fixed letter/digit layout, no S L O I B Z."""
    v = value.replace("-", "").strip().upper()
    if len(v) != 11:
        return False
    layout = "NAXNAXNAANN"  # N digit, A letter, X letter or digit
    for ch, kind in zip(v, layout, strict=True):
        if kind == "N" and not ch.isdigit():
            return False
        if kind == "A" and ch not in _MBI_LETTERS:
            return False
        if kind == "X" and not (ch.isdigit() or ch in _MBI_LETTERS):
            return False
    return v[0] != "0"


_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_shape(value: str) -> bool:
    v = value.upper()
    return (
        len(v) == 17
        and all(ch in _VIN_VALUES for ch in v)
        and sum(ch.isdigit() for ch in v) >= 3
        and sum(ch.isalpha() for ch in v) >= 2
    )


def vin(value: str) -> bool:
    """Vehicle Identification Number with the North American check digit in position 9."""
    v = value.upper()
    if not vin_shape(v):
        return False
    total = sum(_VIN_VALUES[ch] * w for ch, w in zip(v, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return v[8] == ("X" if remainder == 10 else str(remainder))


def ssn(value: str) -> bool:
    """US SSN: area not 000/666/9xx, group not 00, serial not 0000, not a known advertised number."""
    digits = digits_of(value)
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    if len(set(digits)) == 1 or digits in vocabulary.placeholders().ssn_values:
        return False
    return not _is_sequential(digits)


def _is_sequential(digits: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {9})


# NANP: NPA and NXX start 2-9 and are not N11; 555-0100..0199 are reserved for fiction.
def nanp(value: str) -> bool:
    digits = digits_of(value)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10 or digits in vocabulary.placeholders().integer_limits:
        return False
    npa, nxx = digits[:3], digits[3:6]
    if npa[0] in "01" or nxx[0] in "01" or npa[1:] == "11" or nxx[1:] == "11":
        return False
    if npa == "555" or npa[1] == "9":  # 555 and N9X area codes are not in service
        return False
    # The 555 exchange is fiction's and directory assistance's: 555-01xx is reserved for it, and
    # samples and tests use the rest of it the same way.
    if nxx == "555":
        return False
    if len(set(digits)) <= 2 or _is_sequential(digits):
        return False
    return npa not in vocabulary.placeholders().toll_free_area_codes


def toll_free(value: str) -> bool:
    digits = digits_of(value)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return len(digits) == 10 and digits[:3] in vocabulary.placeholders().toll_free_area_codes


def international_phone(value: str) -> bool:
    """An E.164-style number with a country code: 8 to 15 digits, not a run of one digit."""
    digits = digits_of(value)
    if not value.lstrip().startswith("+") or not 8 <= len(digits) <= 15:
        return False
    if digits.startswith("1"):
        return nanp(digits)
    return len(set(digits[1:])) > 2


def national_phone(value: str) -> bool:
    """A number as written inside its own country, without the country code: `(11) 98765-4321`,
    `030 5528 1190`, `06 12 34 56 78`. It opens with the trunk prefix 0 or a two-digit area code in
    parentheses; grouped 3-3-4 it is a North American number and NANP decides."""
    digits = digits_of(value)
    written = value.lstrip()
    if not (written.startswith("0") or (written[:1] == "(" and written[3:4] == ")")):
        return False
    groups = [len(g) for g in "".join(ch if ch.isdigit() else " " for ch in value).split()]
    if value.count(".") == 3 and len(groups) == 4 and max(groups) <= 3:
        return False  # an IPv4 address
    # 3-3-4 is North American (NANP's verdict stands); 4-2-2 and 2-2-4 are dates.
    if (
        not 8 <= len(digits) <= 13
        or len(groups) < 2
        or groups[-3:] == [3, 3, 4]
        or groups in ([4, 2, 2], [2, 2, 4])
    ):
        return False
    return len(set(digits)) > 2 and not _is_sequential(digits)


def phone(value: str, *, national: bool = False) -> bool:
    """A phone number; `national` also takes numbers without a country code outside North America
    (a value under a phone field name, where nothing else can be meant)."""
    return nanp(value) or international_phone(value) or (national and national_phone(value))


def zip_code(value: str) -> bool:
    """US ZIP or ZIP+4 whose three-digit prefix is in use and which is not a placeholder."""
    v = value.strip()
    five = v[:5]
    if not (len(v) in (5, 10) and five.isdigit()):
        return False
    if len(v) == 10 and not (v[5] == "-" and v[6:].isdigit()):
        return False
    data = vocabulary.placeholders()
    if v in data.zip_values or five in data.zip_values or len(set(five)) == 1:
        return False
    return five[:3] not in data.unused_zip_prefixes


def iban(value: str) -> bool:
    v = value.replace(" ", "").upper()
    if not 15 <= len(v) <= 34 or not v[:2].isalpha() or not v[2:4].isdigit():
        return False
    rearranged = v[4:] + v[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def nhs_number(value: str) -> bool:
    """UK NHS number: ten digits with a mod-11 check digit."""
    digits = digits_of(value)
    if len(digits) != 10 or len(set(digits)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def payment_card(value: str) -> bool:
    """A Luhn-valid card number with a known issuer prefix that is not a published test number."""
    digits = digits_of(value)
    if not 13 <= len(digits) <= 19 or not luhn(digits):
        return False
    if digits in vocabulary.placeholders().test_card_numbers or len(set(digits)) <= 2:
        return False
    # Issuers' sandbox numbers pad with one digit ("4111111111112101", "4500600000000061").
    if any(ch * 6 in digits for ch in set(digits)):
        return False
    prefix2, prefix4 = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= prefix2 <= 55
        or 2221 <= prefix4 <= 2720
        or prefix2 in (34, 37)
        or digits.startswith(("6011", "65"))
        or 3528 <= prefix4 <= 3589
    )


def public_ip(value: str) -> bool:
    """A globally routable address (not private, loopback, link-local, documentation or reserved)."""
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address) and value.count(".") != 3:
        return False
    return address.is_global and not address.is_multicast


def calendar_date(year: int, month: int, day: int) -> bool:
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


def plausible_year(year: int) -> bool:
    return 1880 <= year <= dt.date.today().year + 5


REGISTRY: dict[str, Validator] = {
    "luhn": luhn,
    "npi": npi,
    "dea": dea,
    "mbi": mbi,
    "vin": vin,
    "ssn": ssn,
    "nanp": nanp,
    "phone": phone,
    "zip": zip_code,
    "iban": iban,
    "nhs_number": nhs_number,
    "payment_card": payment_card,
    "public_ip": public_ip,
}
