"""The request headers a client may pass to the vendor: an allow-list with a format per header
(`data/headers.toml`), checked before the body is read.

A header is text the client wrote like any field of the body ("anthropic-beta: Marisol Okonkwo
518-42-7731" reached vendors once), so each one forwarded must match its format and hold nothing
detection finds; the request is refused otherwise (rule `bad-header`). The message names the header
and what it should hold, never its value. Headers not on the list are not forwarded at all; the
User-Agent is replaced by the gateway's own.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import re2

from phiwarden import __version__
from phiwarden.gateway.errors import GatewayError
from phiwarden.policy.gateway import Api

_CACHE_ENTRIES = 512
# Longer than any value the formats admit: a longer one is refused before any pattern runs.
_MAX_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    apis: frozenset[str]
    pattern: Any  # RE2, linear in the value whatever it holds
    expected: str
    is_list: bool = False
    max_items: int = 1


@functools.cache
def _data() -> tuple[tuple[_Rule, ...], dict[str, str]]:
    text = resources.files("phiwarden.gateway").joinpath("data", "headers.toml").read_text("utf-8")
    data = tomllib.loads(text)
    rules = tuple(
        _Rule(
            name.lower(),
            frozenset(entry["apis"]),
            re2.compile(entry["format"]),
            entry["expected"],
            entry.get("list", False),
            entry.get("max_items", 1),
        )
        for name, entry in data["header"].items()
    )
    replaced = {name.lower(): value.format(version=__version__) for name, value in data["replaced"].items()}
    return rules, replaced


def replaced() -> dict[str, str]:
    """The headers every upstream request carries in place of the client's."""
    return dict(_data()[1])


class HeaderCheck:
    """Checks the headers a request would forward. Clients send the same few values on every
    request, so a value once accepted is remembered (a bounded set) and costs a lookup after."""

    def __init__(self, finds: Callable[[str], list[str]]) -> None:
        """`finds`: the categories detection finds in a text."""
        self._finds = finds
        self._accepted: set[tuple[str, str]] = set()

    def forwarded(self, api: Api, incoming: Mapping[str, str]) -> dict[str, str]:
        """The headers to pass on (names in lower case); raises a 400 `GatewayError` for a listed
        header whose value is not what it should be."""
        out: dict[str, str] = {}
        for rule in _data()[0]:
            value = incoming.get(rule.name)
            # An empty header (a client setting left blank) asks for nothing: not forwarded.
            if value is None or not value.strip() or api not in rule.apis:
                continue
            if (rule.name, value) not in self._accepted:
                self._check(rule, value)
                if len(self._accepted) >= _CACHE_ENTRIES:
                    self._accepted.clear()
                self._accepted.add((rule.name, value))
            out[rule.name] = value
        return out

    def _check(self, rule: _Rule, value: str) -> None:
        items = [item.strip() for item in value.split(",") if item.strip()] if rule.is_list else [value]
        if (
            len(value) > _MAX_LENGTH
            or len(items) > rule.max_items
            or not all(rule.pattern.fullmatch(item) for item in items)
        ):
            raise GatewayError(
                400,
                f"the {rule.name} header must hold {rule.expected}: phiwarden forwards it only in that "
                f"form (and never shows its value). {_FIX}",
                rule="bad-header",
            )
        found = self._finds(value)
        if found:
            raise GatewayError(
                400,
                f"the {rule.name} header holds what detection reads as {', '.join(sorted(set(found)))}: "
                f"headers reach the vendor as they are, so they may not carry PHI. {_FIX}",
                rule="bad-header",
            )


_FIX = "Fix or remove it in the client's settings (ANTHROPIC_CUSTOM_HEADERS, default_headers)."
