"""Calls to the approved destinations: URLs and credentials from the policy only, retries, timeouts.

There is no way for a request to name a host: the destination comes from the vendor matrix, the path
from the API, and the credential from the environment variable the matrix names (clients never see
it, and their own Authorization/x-api-key, a phiwarden key, is never forwarded). Retries happen only
before any byte reached the client, for connection failures and overload statuses; the audit events
of the request are written once whatever the number of attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from phiwarden.policy.gateway import Api, Destination, GatewaySettings

POOLS = 16
RETRY_STATUSES = frozenset({429, 502, 503, 504, 529})
MAX_RETRY_AFTER = 10.0
# Request headers a client may pass to the vendor; everything else (auth, cookies, hop-by-hop) stays.
_FORWARD_REQUEST = frozenset(
    {"anthropic-version", "anthropic-beta", "openai-beta", "openai-organization", "openai-project",
     "user-agent", "idempotency-key", "x-stainless-timeout"}
)  # fmt: skip
# Response headers passed back to the client (rate limits, request ids for support tickets).
_FORWARD_RESPONSE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "openai-")
_FORWARD_RESPONSE = frozenset({"request-id", "x-request-id", "retry-after", "content-type"})
_PATHS: dict[tuple[Api, bool], str] = {
    ("messages", False): "/v1/messages",
    ("messages", True): "/v1/messages/count_tokens",
    ("chat_completions", False): "/v1/chat/completions",
    ("responses", False): "/v1/responses",
}


class CredentialMissing(Exception):
    pass


@dataclass(slots=True)
class Attempt:
    response: httpx.Response
    attempts: int


class Upstream:
    def __init__(self, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.upstream_timeout_seconds,
            write=settings.upstream_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        # Several small pools rather than one large one: httpcore scans every pooled connection (with
        # a poll() each) whenever a request starts or ends, so one pool of N connections costs O(N) per
        # request; requests are spread over the pools round-robin.
        self.clients = [
            httpx.AsyncClient(
                timeout=timeout,
                limits=httpx.Limits(max_connections=128, max_keepalive_connections=32, keepalive_expiry=30),
                follow_redirects=False,
                transport=transport,
                trust_env=False,
            )
            for _ in range(POOLS if transport is None else 1)
        ]
        self._next = itertools.cycle(range(len(self.clients)))

    @staticmethod
    def url(destination: Destination, api: Api, *, count_tokens: bool = False) -> str:
        base = destination.base_url.rstrip("/")
        base = base.removesuffix("/v1")
        return base + _PATHS[(api, count_tokens)]

    @staticmethod
    def headers(destination: Destination, api: Api, incoming: Mapping[str, str]) -> dict[str, str]:
        out = {k: v for k, v in incoming.items() if k in _FORWARD_REQUEST}
        out["content-type"] = "application/json"
        out["accept-encoding"] = "identity"
        if api == "messages":
            out.setdefault("anthropic-version", "2023-06-01")
        if destination.api_key_env:
            credential = os.environ.get(destination.api_key_env)
            if not credential:
                raise CredentialMissing(
                    f"the gateway has no credential for {destination.id!r}: "
                    f"${destination.api_key_env} is not set on the gateway host"
                )
            if destination.provider == "anthropic" or (api == "messages" and not destination.local):
                out["x-api-key"] = credential
            else:
                out["authorization"] = f"Bearer {credential}"
        return out

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float | None) -> Attempt:
        """POST with retries; the response is open (streamed) and must be closed by the caller."""
        attempt = 0
        while True:
            attempt += 1
            client = self.clients[next(self._next)]
            request = client.build_request("POST", url, headers=headers, content=body)
            if timeout is not None:
                request.extensions["timeout"] = httpx.Timeout(
                    connect=self.settings.connect_timeout_seconds, read=timeout, write=timeout, pool=timeout
                ).as_dict()
            try:
                response = await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError):
                if attempt > self.settings.retries:
                    raise
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt <= self.settings.retries:
                delay = _retry_after(response.headers.get("retry-after"), attempt)
                await response.aclose()
                await asyncio.sleep(delay)
                continue
            return Attempt(response, attempt)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


def response_headers(response: httpx.Response) -> dict[str, str]:
    return {
        k: v
        for k, v in response.headers.items()
        if k in _FORWARD_RESPONSE or k.startswith(_FORWARD_RESPONSE_PREFIXES)
    }


def _backoff(attempt: int) -> float:
    return float(min(0.25 * 2.0 ** (attempt - 1), 4.0))


def _retry_after(value: str | None, attempt: int) -> float:
    try:
        return min(max(float(value or ""), 0.0), MAX_RETRY_AFTER) if value else _backoff(attempt)
    except ValueError:
        return _backoff(attempt)
