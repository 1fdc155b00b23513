"""Which client tool sent a request (Claude Code, Codex, Cursor, aider, an SDK), from its headers.

The patterns are data (`data/clients.toml`). A header `x-phiwarden-client` naming a tool of that list
wins. The audit trail records only names of the list: a tool it does not know is `other` (the
User-Agent is the client's own text, and can hold anything).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

OTHER = "other"


@dataclass(frozen=True, slots=True)
class _Client:
    name: str
    user_agent: re.Pattern[str] | None
    headers: tuple[tuple[str, re.Pattern[str]], ...]


@functools.cache
def _clients() -> tuple[_Client, ...]:
    text = resources.files("phiwarden.gateway").joinpath("data", "clients.toml").read_text("utf-8")
    out = []
    for entry in tomllib.loads(text)["client"]:
        agent = entry.get("user_agent")
        out.append(
            _Client(
                entry["name"],
                re.compile(agent, re.IGNORECASE) if agent else None,
                tuple((k.lower(), re.compile(v, re.IGNORECASE)) for k, v in entry.get("headers", {}).items()),
            )
        )
    return tuple(out)


@functools.cache
def _names() -> dict[str, str]:
    return {client.name.casefold(): client.name for client in _clients()}


def client_tool(headers: Mapping[str, str]) -> str | None:
    """The known tool that sent the request, `other` for one not on the list, None without a word."""
    claimed = headers.get("x-phiwarden-client")
    if claimed:
        known = _names().get(claimed.strip().casefold())
        if known is not None:
            return known
    agent = headers.get("user-agent", "")
    for client in _clients():
        if client.user_agent is not None and client.user_agent.search(agent):
            return client.name
        for name, pattern in client.headers:
            value = headers.get(name)
            if value is not None and pattern.search(value):
                return client.name
    return OTHER if agent or claimed else None
