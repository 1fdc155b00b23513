"""Checks that tell a live credential from an example, a default or a reference to one."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse

from phiwarden.detect.vocabulary import placeholders

_LOCAL_HOSTS = frozenset(
    {"localhost", "127.0.0.1", "::1", "0.0.0.0", "db", "database", "postgres", "postgresql", "mysql",
     "mariadb", "redis", "mongo", "mongodb", "rabbitmq", "host.docker.internal", "example.com"}
)  # fmt: skip


def url_credentials_are_real(url: str) -> bool:
    """`scheme://user:password@host` with a password that is neither a default nor a reference.

    Parsed by hand: passwords hold characters (`#`, `?`) that a URL parser would take for the
    fragment or the query.
    """
    _, sep, rest = url.strip().partition("://")
    if not sep or "@" not in rest:
        return False
    userinfo, _, hostpart = rest.rpartition("@")
    if "/" in userinfo:
        userinfo, _, hostpart = rest.partition("@")
        if "/" in userinfo:
            return False
    user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return False
    host = hostpart.split("/", 1)[0].rsplit(":", 1)[0].strip("[]").lower()
    password = urllib.parse.unquote(password)
    lowered = password.lower()
    data = placeholders()
    if lowered in data.secret_values or any(m in lowered for m in data.secret_markers):
        return False
    if password.startswith(("$", "%", "{")) or set(password) <= {"*", "x", "X", "."}:
        return False
    # Throw-away credentials for a local or CI database are documented defaults, not secrets.
    local = host in _LOCAL_HOSTS or host.endswith((".local", ".localhost", ".internal.test"))
    return not (local and (password == urllib.parse.unquote(user) or len(password) < 10))


def _b64json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


# The token every JWT tutorial shows (jwt.io's default) is documentation, not a credential.
_EXAMPLE_JWT_SUBJECTS = frozenset({"1234567890", "test", "example", "user123", "demo"})


def jwt(value: str) -> bool:
    parts = value.split(".")
    if len(parts) != 3:
        return False
    header, payload = _b64json(parts[0]), _b64json(parts[1])
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return False
    if str(payload.get("sub", "")) in _EXAMPLE_JWT_SUBJECTS and payload.get("name") in ("John Doe", None):
        return False
    return len(parts[2]) >= 16


def not_example(value: str) -> bool:
    lowered = value.lower()
    return not any(marker in lowered for marker in ("example", "xxxx", "sample", "dummy", "fake", "test1234"))


def high_variety(value: str) -> bool:
    """At least three character classes, or two over a long stretch: generated, not typed words."""
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    return classes >= 3 or (classes >= 2 and len(value) >= 24)


def connection_password(value: str) -> bool:
    """An ADO.NET/ODBC connection string whose Password= is real."""
    for part in value.split(";"):
        key, _, secret = part.partition("=")
        if key.strip().lower() in ("password", "pwd"):
            written = secret.strip().strip("'\"")
            # A template's slot, not a password: PWD={4}, {password}, %s, ${DB_PASSWORD}, <password>, @pwd.
            if written.startswith(("{", "$", "%", "<", "@", ":", "?")):
                return False
            secret = written.strip("{}")
            lowered = secret.lower()
            data = placeholders()
            placeholder = lowered in data.secret_values or any(m in lowered for m in data.secret_markers)
            return len(secret) >= 4 and not placeholder
    return False
