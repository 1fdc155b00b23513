"""Vendor-side connectors: parts of a request that make the vendor fetch data itself, past the gateway
(Anthropic `mcp_servers`, Responses `mcp` tools, web fetch, file search, code over uploaded files).
Which fields are connectors is data (`data/connectors.toml`).

What such a connector brings in reaches the model without passing through the gateway: nothing there
is inspected, decided or audited. A request holding one is refused (rule `vendor-connector`) unless
`[gateway] vendor_connectors` lists it; one the policy admits is recorded in the audit events by the
policy entry that admitted it (never by its value, which the client wrote).
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from phiwarden.gateway.errors import GatewayError
from phiwarden.policy.gateway import Api


@dataclass(frozen=True, slots=True)
class _Rule:
    api: str
    field: str
    type: str | None
    kind: str
    values: tuple[tuple[str, ...], ...]
    what: str


@dataclass(frozen=True, slots=True)
class Connector:
    kind: str
    value: str | None
    location: str
    what: str


@functools.cache
def rules() -> tuple[_Rule, ...]:
    text = resources.files("phiwarden.gateway").joinpath("data", "connectors.toml").read_text("utf-8")
    return tuple(
        _Rule(
            entry["api"],
            entry["field"],
            entry.get("type"),
            entry["kind"],
            tuple(tuple(path.split(".")) for path in entry.get("values", ())),
            entry["what"],
        )
        for entry in tomllib.loads(text)["connector"]
    )


def found(api: Api, body: dict[str, Any]) -> list[Connector]:
    """The connectors a (shape-checked) request body holds."""
    out: list[Connector] = []
    for rule in rules():
        if rule.api != api:
            continue
        items = body.get(rule.field)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if rule.type is not None and not (isinstance(kind, str) and fnmatch.fnmatchcase(kind, rule.type)):
                continue
            location = f"{rule.field}[{index}]"
            if not rule.values:
                out.append(Connector(rule.kind, None, location, rule.what))
                continue
            for path in rule.values:
                for value in _strings(_at(item, path)):
                    out.append(Connector(rule.kind, value, location, rule.what))
    return out


def admitting(connector: Connector, allowed: Sequence[str]) -> str | None:
    """The `vendor_connectors` entry that admits `connector`, or None."""
    for entry in allowed:
        kind, colon, pattern = entry.partition(":")
        if kind != connector.kind:
            continue
        if not colon or (connector.value is not None and fnmatch.fnmatchcase(connector.value, pattern)):
            return entry
    return None


def admitted(api: Api, body: dict[str, Any], allowed: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(policy entry, location) of each connector of the request; raises a 403 `GatewayError` for
    the first one the policy does not list."""
    out: list[tuple[str, str]] = []
    for connector in found(api, body):
        entry = admitting(connector, allowed)
        if entry is None:
            raise GatewayError(
                403,
                f"phiwarden refused this request: {connector.location} asks the vendor to "
                f"{connector.what} ({connector.kind}); what it brings in would reach the model without "
                "passing through the gateway, never inspected or audited. Remove it from the request, "
                f'or ask your administrator to list it in [gateway] vendor_connectors ("{connector.kind}'
                f'{":PATTERN" if connector.value is not None else ""}")',
                code="vendor_connector_refused",
                rule="vendor-connector",
            )
        out.append((entry, connector.location))
    return tuple(dict.fromkeys(out))


def _at(item: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
