"""Calls to the approved destinations: URLs and credentials from the policy only, retries, timeouts.

There is no way for a request to name a host: the destination comes from the vendor matrix, the path
from the API, and the credential from the environment variable the matrix names (clients never see
it, and their own Authorization/x-api-key, a phiwarden key, is never forwarded). Of the client's other
headers only those `headers.py` checked go on; the User-Agent is the gateway's. Retries happen only
before any byte reached the client, for connection failures and overload statuses; the audit events
of the request are written once whatever the number of attempts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from phiwarden.gateway.headers import replaced
from phiwarden.policy.gateway import Api, Destination, GatewaySettings

RETRY_STATUSES = frozenset({429, 502, 503, 504, 529})
MAX_RETRY_AFTER = 10.0
MAX_CONNECTIONS = 256
# Response headers passed back to the client (rate limits, request ids for support tickets).
_FORWARD_RESPONSE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "openai-")
_FORWARD_RESPONSE = frozenset({"request-id", "x-request-id", "retry-after", "content-type"})
_PATHS: dict[tuple[Api, bool], str] = {
    ("messages", False): "/v1/messages",
    ("messages", True): "/v1/messages/count_tokens",
    ("chat_completions", False): "/v1/chat/completions",
    ("responses", False): "/v1/responses",
}
# Failures where the request cannot have reached the destination: safe to send again.
_RETRY_ERRORS = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerDisconnectedError,
)
_FAILURES = (asyncio.TimeoutError, aiohttp.ClientError, OSError)


class CredentialMissing(Exception):
    pass


class UpstreamError(Exception):
    """The destination is unreachable or broke the exchange; the message names the failure.
    `attempts`: how many times the request was sent before it failed (from `Upstream.send`)."""

    attempts = 1


class UpstreamTimeout(UpstreamError):
    """The destination did not answer, or stopped answering, in time."""


class UpstreamResponse:
    """An open answer of a destination: status and headers now, the body read whole or streamed;
    `close` it once done (a body not read to its end closes the connection instead of reusing it)."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "")

    def forwarded_headers(self) -> dict[str, str]:
        """The response headers passed back to the client (names in lower case)."""
        out = {}
        for name, value in self._response.headers.items():
            key = name.lower()
            if key in _FORWARD_RESPONSE or key.startswith(_FORWARD_RESPONSE_PREFIXES):
                out[key] = value
        return out

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _FAILURES as exc:
            raise _failure(exc) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked, not decoded: the gateway asks for identity encoding)."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _FAILURES as exc:
            raise _failure(exc) from None

    def close(self) -> None:
        self._response.release()


@dataclass(slots=True)
class Attempt:
    response: UpstreamResponse
    attempts: int


class Upstream:
    """One keep-alive connection pool for every destination (aiohttp: its per-request cost is a
    fraction of httpx's, which was most of the gateway's forwarding time). The session is made on
    first use, inside the event loop that serves the requests."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30),
                # Never keep a vendor's cookies: the pool is shared by every identity.
                cookie_jar=aiohttp.DummyCookieJar(),
                # The body goes back to the client as it came (and is restored as text), never decoded.
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                trust_env=False,
            )
        return self._session

    def _timeout(self, read: float | None) -> aiohttp.ClientTimeout:
        connect = self.settings.connect_timeout_seconds
        # sock_read bounds each wait for data (the first byte included), not the whole answer: a
        # long stream that keeps sending lives on.
        return aiohttp.ClientTimeout(
            total=None,
            connect=connect,
            sock_connect=connect,
            sock_read=read if read is not None else self.settings.upstream_timeout_seconds,
        )

    @staticmethod
    def url(destination: Destination, api: Api, *, count_tokens: bool = False) -> str:
        base = destination.base_url.rstrip("/")
        base = base.removesuffix("/v1")
        return base + _PATHS[(api, count_tokens)]

    @staticmethod
    def headers(destination: Destination, api: Api, forwarded: Mapping[str, str]) -> dict[str, str]:
        """The upstream request's headers: `forwarded` (the client's, as `headers.py` checked them),
        the gateway's own and the destination's credential."""
        out = {**forwarded, **replaced()}
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
        if destination.organization:
            out["openai-organization"] = destination.organization
        if destination.project:
            out["openai-project"] = destination.project
        return out

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float | None) -> Attempt:
        """POST with retries; the response is open (streamed) and must be closed by the caller.
        Raises `UpstreamTimeout` or `UpstreamError`."""
        client = self._client()
        limits = self._timeout(timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await client.post(
                    url, data=body, headers=headers, timeout=limits, allow_redirects=False
                )
            except _RETRY_ERRORS as exc:
                if attempt > self.settings.retries:
                    raise _failure(exc, attempt) from None
                await asyncio.sleep(_backoff(attempt))
                continue
            except _FAILURES as exc:
                raise _failure(exc, attempt) from None
            if response.status in RETRY_STATUSES and attempt <= self.settings.retries:
                delay = _retry_after(response.headers.get("retry-after"), attempt)
                response.release()
                await asyncio.sleep(delay)
                continue
            return Attempt(UpstreamResponse(response), attempt)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _failure(exc: BaseException, attempts: int = 1) -> UpstreamError:
    """An aiohttp or socket failure as the gateway's own, named by its kind (never its details,
    which may hold a URL)."""
    kind = UpstreamTimeout if isinstance(exc, asyncio.TimeoutError) else UpstreamError
    error = kind(type(exc).__name__)
    error.attempts = attempts
    return error


def _backoff(attempt: int) -> float:
    return float(min(0.25 * 2.0 ** (attempt - 1), 4.0))


def _retry_after(value: str | None, attempt: int) -> float:
    try:
        return min(max(float(value or ""), 0.0), MAX_RETRY_AFTER) if value else _backoff(attempt)
    except ValueError:
        return _backoff(attempt)
