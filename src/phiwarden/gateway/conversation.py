"""What names a conversation, so that its vault and its pin follow it from request to request.

In order: the `x-phiwarden-conversation` header; the session the client names (Claude Code's
session in `metadata.user_id` or `x-claude-code-session-id`, Codex's `session_id` header or
`prompt_cache_key`); else a digest of the system prompt and the first user message, which every
request of a chat repeats unchanged (turn 1 and turn 20 get the same name, hence the same surrogates
and pin). Vaults are keyed by identity as well, so equal ids of two people never meet.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from phiwarden.gateway.request import ParsedRequest

_SESSION = re.compile(r"session_([0-9a-fA-F-]{8,64})")
_HEADERS = ("x-phiwarden-conversation", "x-claude-code-session-id", "session_id", "conversation_id")


def conversation_id(headers: Mapping[str, str], request: ParsedRequest) -> str:
    for name in _HEADERS:
        value = headers.get(name)
        if value:
            return f"h:{value[:200]}"
    hint = request.conversation_hint
    if hint:
        match = _SESSION.search(hint)
        return f"s:{match.group(1) if match else hint[:200]}"
    digest = hashlib.sha256(request.opening.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"o:{digest}"
