"""What the audit trail records of the names a client chose: only what cannot carry free text.

The model, the `x-phiwarden-repository` header and the User-Agent are written by the client, so any
text can come there ("Marisol Okonkwo 518-42-7731" as a model name). Detection would mask only what
it recognises, so the trail records instead:

- a model the vendor matrix names (in `models` or `model`); one a glob serves (`claude-*`) when it is
  a plain model name in which detection finds nothing, else the glob; anything else `unlisted`;
- a repository the policy lists (`[[gateway.repository]]`); anything else `unlisted`, with a keyed
  hash (the audit HMAC) of the name so that requests naming the same one can still be correlated;
- a client tool of the known list (`clients.py`), else `other`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from phiwarden.policy.gateway import GatewayPolicy

UNLISTED = "unlisted"
# A model name as vendors and local servers spell them (`claude-sonnet-4-5`, `llama3.1:70b`,
# `meta-llama/Llama-3.1-8B`): no spaces, no punctuation prose needs.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")
_CACHE_ENTRIES = 1024


class ModelNames:
    """The recorded name of each requested model, cached: clients ask for the same few models, and
    a glob-served name costs a detection call the first time."""

    def __init__(self, gateway: GatewayPolicy, finds_values: Callable[[str], bool]) -> None:
        self._gateway = gateway
        self._finds_values = finds_values
        self._named = {
            name
            for d in gateway.destinations
            for name in (*d.models, *((d.model,) if d.model else ()))
            if not _is_glob(name)
        }
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def known(self, model: str) -> bool:
        """Whether the vendor matrix names `model` itself (not through a glob)."""
        return model in self._named

    def recorded(self, model: str) -> str:
        with self._lock:
            found = self._cache.get(model)
        if found is not None:
            return found
        found = self._recorded(model)
        with self._lock:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[model] = found
        return found

    def _recorded(self, model: str) -> str:
        if model in self._named:
            return model
        glob = next(
            (p for d in self._gateway.destinations for p in d.models if _is_glob(p) and d.serves(model)),
            None,
        )
        if glob is None:
            return UNLISTED
        if _MODEL_NAME.fullmatch(model) and not self._finds_values(model):
            return model
        return glob


def repository(
    gateway: GatewayPolicy, name: str | None, digest: Callable[[str], str]
) -> tuple[str | None, str | None]:
    """(the repository as recorded, a keyed hash of an unlisted one's name)."""
    if not name:
        return None, None
    if gateway.repository(name) is not None:
        return name, None
    return UNLISTED, digest(name)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")
