"""Store URLs fit to print: no password, in the user-info part or in the query.

A PostgreSQL URL can carry its password as `user:secret@host` or `?password=secret`, and libpq
takes other secrets as query parameters too (`sslpassword`); messages show `***` instead. Driver
messages can quote part of the URL back (psycopg's "invalid percent-encoded token"), so `scrub`
removes the URL's secrets from any text.
"""

from __future__ import annotations

from urllib.parse import unquote

MASK = "***"
# Query parameter names whose values are secrets (a substring match: sslpassword, api_token, …).
_SECRET_PARAMS = ("password", "passwd", "pwd", "secret", "token", "apikey", "api_key")


def redact_url(url: str) -> str:
    """`url` with every secret replaced by ***."""
    head, query_mark, query = url.partition("?")
    scheme, sep, rest = head.partition("://") if "://" in head else ("", "", head)
    credentials, at, hosts = rest.rpartition("@")
    if at and ":" in credentials:
        rest = f"{credentials.split(':', 1)[0]}:{MASK}@{hosts}"
    if query_mark:
        query = "&".join(_redact_param(item) for item in query.split("&"))
    return f"{scheme}{sep}{rest}{query_mark}{query}"


def secrets_in(url: str) -> list[str]:
    """The secret values `url` holds, as written and percent-decoded, longest first."""
    head, _, query = url.partition("?")
    rest = head.split("://", 1)[-1]
    credentials, at, _ = rest.rpartition("@")
    found: list[str] = []
    if at and ":" in credentials:
        found.append(credentials.split(":", 1)[1])
    for item in query.split("&") if query else ():
        name, equals, value = item.partition("=")
        if equals and _is_secret(name):
            found.append(value)
    variants = {form for value in found for form in (value, unquote(value)) if form}
    return sorted(variants, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (a driver's message about `url`) without the URL's secrets."""
    for secret in secrets_in(url):
        text = text.replace(secret, MASK)
    return text


def _redact_param(item: str) -> str:
    name, equals, value = item.partition("=")
    return f"{name}={MASK}" if equals and value and _is_secret(name) else item


def _is_secret(name: str) -> bool:
    folded = unquote(name).lower()
    return any(marker in folded for marker in _SECRET_PARAMS)
