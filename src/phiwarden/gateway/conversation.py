"""What names a conversation, so that its vault and its pin follow it from request to request.

In order: the `x-phiwarden-conversation` header; the session the client names (Claude Code's
session in `metadata.user_id` or `x-claude-code-session-id`, Codex's `session_id` header or
`prompt_cache_key`); a Responses `conversation`; a Responses `previous_response_id`, which names the
conversation of the response it continues (`ResponseLinks`: the gateway records which conversation
each upstream response id belongs to); else a digest of the system prompt and the first user
message, which every request of a chat repeats unchanged (turn 1 and turn 20 get the same name,
hence the same surrogates and pin). Vaults are keyed by identity as well, so equal ids of two people
never meet.

Two chats of one person that open alike share the last name. Their pins are kept apart: a pin set by
a chat named by its opening holds a digest of the routed request's items and request-level text
(`prefix_digest`), and applies only to requests that repeat them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phiwarden.gateway.request import ParsedRequest
from phiwarden.transform.vault import SealedRow, VaultKeys, VaultStore

_SESSION = re.compile(r"session_([0-9a-fA-F-]{8,64})")
_HEADERS = ("x-phiwarden-conversation", "x-claude-code-session-id", "session_id", "conversation_id")


@dataclass(frozen=True, slots=True)
class Naming:
    """A request's conversation: its name, or the response id whose conversation it continues."""

    name: str
    previous: str | None = None  # set: `name` is the fallback when that response is not known
    by_opening: bool = False


def conversation_id(headers: Mapping[str, str], request: ParsedRequest) -> Naming:
    for header in _HEADERS:
        value = headers.get(header)
        if value:
            return Naming(f"h:{value[:200]}")
    hint = request.conversation_hint
    if hint:
        match = _SESSION.search(hint)
        return Naming(f"s:{match.group(1) if match else hint[:200]}")
    if request.api == "responses":
        body = request.body
        thread = body.get("conversation")
        thread_id = thread.get("id") if isinstance(thread, dict) else thread
        if isinstance(thread_id, str) and thread_id:
            return Naming(f"c:{thread_id[:200]}")
        previous = body.get("previous_response_id")
        if isinstance(previous, str) and previous:
            # Unknown (expired, or made without the gateway): the chain from here on shares a name.
            return Naming(f"r:{previous[:200]}", previous=previous[:200])
    # As before anchored pins: a conversation keeps its name, vault and pin across an upgrade.
    opening = request.opening.encode("utf-8", "surrogatepass")
    return Naming(f"o:{hashlib.sha256(opening).hexdigest()[:32]}", by_opening=True)


def item_count(request: ParsedRequest) -> int:
    """How many items (messages, input items) the request's conversation holds."""
    listed = request.body.get("input" if request.api == "responses" else "messages")
    if isinstance(listed, list):
        return len(listed)
    return 1 if isinstance(listed, str) and listed else 0


def prefix_digest(request: ParsedRequest, count: int) -> str:
    """A digest of the first `count` items' text and of every inspected part outside the items: the
    system prompt (instructions) and request-level text (stop sequences, metadata, tool definitions).
    A chat that opens alike but lacks what got a routed request routed (PHI only in its stop
    sequences, say) is a new chat, not that request's retry."""
    listed = "input" if request.api == "responses" else "messages"
    digest = hashlib.sha256(request.api.encode())
    for part in request.parts:
        location = part.location
        if location == listed and count == 0:
            continue
        item = location.startswith(listed + "[")
        if item and int(location[len(listed) + 1 : location.index("]")]) >= count:
            continue
        digest.update(f"\x00{location}\x01".encode())
        digest.update(part.text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


class ResponseBackend(Protocol):
    def response_load(self, row_id: str, now: float) -> SealedRow | None: ...

    def response_save(self, row_id: str, identity_id: str, row: SealedRow) -> None: ...


class ResponseLinks:
    """Upstream response id -> the conversation it belongs to, per identity, for as long as the
    conversation's vault lives. Names are sealed (AES-GCM under the vault key, bound to the row):
    the header a client names its conversation by is its own text."""

    def __init__(self, backend: ResponseBackend, keys: VaultKeys, ttl_seconds: int) -> None:
        self.backend = backend
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    @classmethod
    def of(cls, vaults: VaultStore) -> ResponseLinks:
        backend: Any = vaults.backend  # the gateway store keeps both
        return cls(backend, vaults.keys, vaults.ttl_seconds)

    def _row(self, identity: str, response_id: str) -> tuple[str, bytes]:
        row = hmac.new(self.keys.row, f"response\x00{identity}\x00{response_id}".encode(), hashlib.sha256)
        row_id = row.hexdigest()
        return row_id, f"phiwarden-response-v1\x00{row_id}".encode()

    def remember(self, identity: str, response_id: str, conversation: str) -> None:
        row_id, aad = self._row(identity, response_id)
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys.encrypt).encrypt(nonce, conversation.encode("utf-8", "surrogatepass"), aad)
        row = SealedRow(0, nonce, sealed, time.time() + self.ttl_seconds)
        self.backend.response_save(row_id, self.keys.identity_id(identity), row)

    def conversation(self, identity: str, response_id: str) -> str | None:
        """The conversation `response_id` belongs to, or None (unknown, expired, another identity's,
        or a row that does not open under this key)."""
        row_id, aad = self._row(identity, response_id)
        row = self.backend.response_load(row_id, time.time())
        if row is None:
            return None
        try:
            return (
                AESGCM(self.keys.encrypt)
                .decrypt(row.nonce, row.ciphertext, aad)
                .decode("utf-8", "surrogatepass")
            )
        except (InvalidTag, UnicodeDecodeError):
            return None
