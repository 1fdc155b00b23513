"""OIDC bearer tokens (JWTs) checked against the issuer's JWKS: signature, issuer, audience, expiry.

The JWKS is fetched over HTTPS from the URL in the policy (never from the token), cached, and fetched
again when a token names a key id the cache does not have (key rotation), at most once per
`refetch_seconds` so that forged key ids cannot make the gateway hammer the issuer.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from phiwarden.policy.gateway import OidcIssuer

JWKS_TTL_SECONDS = 3600.0
REFETCH_SECONDS = 30.0


class TokenError(Exception):
    """A token that does not prove an identity. The message, shown in the 401 after "OIDC token
    rejected: ", is one sentence: what was expected and what to check. It names claims, never what the
    token holds (the client's; a token may carry anything)."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    issuer: str
    groups: tuple[str, ...]


@dataclass(slots=True)
class _Jwks:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0
    attempted_at: float = 0.0


class OidcVerifier:
    def __init__(self, issuers: tuple[OidcIssuer, ...], client: httpx.AsyncClient | None = None) -> None:
        self.issuers = {i.issuer: i for i in issuers}
        self.client = client
        self._jwks: dict[str, _Jwks] = {}
        self._lock = asyncio.Lock()

    def __bool__(self) -> bool:
        return bool(self.issuers)

    async def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError(
                "it is not a JWT (three base64url parts: header, claims, signature); send the ID or "
                "access token the issuer gave, whole"
            ) from None
        issuer = self.issuers.get(str(unverified.get("iss", "")))
        if issuer is None:
            trusted = ", ".join(self.issuers)
            raise TokenError(
                f'its "iss" claim is not an issuer this gateway trusts ({trusted}); sign in with one '
                "of them, or add the issuer as a [[gateway.oidc]] issuer"
            )
        algorithm = header.get("alg")
        if algorithm not in issuer.algorithms:
            # The header is the client's: named by what is allowed, never echoed.
            allowed = ", ".join(issuer.algorithms)
            raise TokenError(
                f'its "alg" header is not a signing algorithm {issuer.issuer} may use ({allowed}); '
                "check [[gateway.oidc]] algorithms"
            )
        key = await self._key(issuer, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(_rejected(exc, issuer)) from None
        subject = claims.get(issuer.user_claim) or claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenError(f"token has no {issuer.user_claim!r} claim to name the user")
        raw_groups = claims.get(issuer.groups_claim, [])
        groups = tuple(g for g in raw_groups if isinstance(g, str)) if isinstance(raw_groups, list) else ()
        return Claims(subject, issuer.issuer, groups)

    async def _key(self, issuer: OidcIssuer, kid: object) -> jwt.PyJWK:
        cache = self._jwks.setdefault(issuer.issuer, _Jwks())
        now = time.monotonic()
        key = cache.keys.get(str(kid)) if kid is not None else _only(cache.keys)
        stale = now - cache.fetched_at > JWKS_TTL_SECONDS
        if key is not None and not stale:
            return key
        async with self._lock:
            if now - cache.attempted_at >= REFETCH_SECONDS or stale:
                cache.attempted_at = now
                await self._fetch(issuer, cache)
        key = cache.keys.get(str(kid)) if kid is not None else _only(cache.keys)
        if key is None:
            raise TokenError(
                f'its "kid" header names a key the JWKS does not list ({issuer.jwks_url}, fetched at most '
                f"every {REFETCH_SECONDS:.0f} s); check that [[gateway.oidc]] jwks_url is "
                f"{issuer.issuer}'s and that the issuer publishes the key it signs with"
            )
        return key

    async def _fetch(self, issuer: OidcIssuer, cache: _Jwks) -> None:
        client = self.client or httpx.AsyncClient(timeout=10.0)
        try:
            response = await client.get(issuer.jwks_url, timeout=10.0)
            response.raise_for_status()
            data = json.loads(response.content)
            keys: dict[str, jwt.PyJWK] = {}
            for entry in data.get("keys", []):
                if entry.get("use", "sig") != "sig":
                    continue
                try:
                    keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            if cache.keys:
                return  # keep the keys we have; the issuer is briefly unreachable
            raise TokenError(f"cannot fetch the issuer's JWKS: {exc}") from None
        finally:
            if self.client is None:
                await client.aclose()
        cache.keys = keys
        cache.fetched_at = time.monotonic()


def _rejected(exc: jwt.PyJWTError, issuer: OidcIssuer) -> str:
    """One sentence for a token whose signature or claims failed: PyJWT's own messages name neither
    what the gateway expected nor the setting to check."""
    leeway = f"beyond the {issuer.leeway_seconds} s leeway"
    if isinstance(exc, jwt.InvalidAudienceError):
        return (
            f'its "aud" claim does not include the audience expected for {issuer.issuer} '
            f'("{issuer.audience}"); ask the issuer for a token for that audience, or check '
            "[[gateway.oidc]] audience"
        )
    if isinstance(exc, jwt.InvalidIssuerError):
        return f'its "iss" claim is not {issuer.issuer}; check [[gateway.oidc]] issuer'
    if isinstance(exc, jwt.ExpiredSignatureError):
        return (
            f'it has expired (its "exp" claim is past, {leeway}); sign in again for a new token, '
            "and check the gateway's clock if new tokens fail too"
        )
    if isinstance(exc, jwt.ImmatureSignatureError):
        claim = "iat" if "(iat)" in str(exc) else "nbf"
        return (
            f'it is not valid yet (its "{claim}" claim is in the future, {leeway}); check the clocks '
            "of the issuer and the gateway"
        )
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return (
            f'it has no "{exc.claim}" claim, which the gateway requires (exp, iss, aud); ask the issuer '
            "to include it"
        )
    if isinstance(exc, jwt.InvalidSignatureError):
        return (
            f"its signature does not verify with the key the JWKS lists for it ({issuer.jwks_url}); "
            f"check that [[gateway.oidc]] jwks_url is {issuer.issuer}'s, else the token was altered"
        )
    return (
        f"it could not be verified against {issuer.issuer} ({type(exc).__name__}); check the token "
        "came from that issuer unchanged"
    )


def _only(keys: dict[str, jwt.PyJWK]) -> jwt.PyJWK | None:
    return next(iter(keys.values())) if len(keys) == 1 else None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")
