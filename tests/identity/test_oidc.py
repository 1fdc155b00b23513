"""OIDC bearer tokens checked against a local JWKS server with keys generated here."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from phiwarden.identity.oidc import OidcVerifier, TokenError
from phiwarden.policy.gateway import OidcIssuer
from tests.gateway.servers import ServerThread

ISSUER = "https://login.example.org"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": alg}


JWKS = {"keys": [_jwk(RSA_KEY, "rsa-1", "RS256"), _jwk(EC_KEY, "ec-1", "ES256")]}
FETCHES: list[float] = []


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    async def jwks(request: Request) -> JSONResponse:
        FETCHES.append(time.time())
        return JSONResponse(JWKS)

    server = ServerThread(Starlette(routes=[Route("/jwks", jwks)])).start()
    yield f"{server.url}/jwks"
    server.stop()


def _token(key: Any = RSA_KEY, kid: str = "rsa-1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "phiwarden", "sub": "u1", "email": "ana@example.org", "iat": now, "exp": now + 300,
            "groups": ["clinical-eng", "unknown-group"], **claims}  # fmt: skip
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid}
    )


def _verify(url: str, token: str) -> Any:
    verifier = OidcVerifier((OidcIssuer(ISSUER, "phiwarden", url),))
    return asyncio.run(verifier.verify(token))


def test_valid_tokens_name_the_user_and_groups(jwks_url: str) -> None:
    claims = _verify(jwks_url, _token())
    assert claims.subject == "ana@example.org" and claims.issuer == ISSUER
    assert claims.groups == ("clinical-eng", "unknown-group")
    assert _verify(jwks_url, _token(EC_KEY, "ec-1", "ES256")).subject == "ana@example.org"


@pytest.mark.parametrize(
    ("token_kwargs", "phrase"),
    [
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"iss": "https://evil.example.org"}, "(?i)issuer"),
        ({"exp": int(time.time()) - 3600}, "(?i)expired"),
        ({"exp": None}, "exp"),
        ({"key": OTHER_KEY}, "(?i)signature"),
        ({"kid": "unknown-kid", "key": OTHER_KEY}, "JWKS does not list"),
    ],
)
def test_bad_tokens_are_refused(jwks_url: str, token_kwargs: dict[str, Any], phrase: str) -> None:
    with pytest.raises(TokenError, match=phrase):
        _verify(jwks_url, _token(**token_kwargs))


@pytest.mark.parametrize(
    ("token_kwargs", "expected"),
    [
        (
            {"aud": "someone-else"},
            f'its "aud" claim does not include the audience expected for {ISSUER} ("phiwarden"); ask the '
            "issuer for a token for that audience, or check [[gateway.oidc]] audience",
        ),
        (
            {"iss": "https://evil.example.org"},
            f'its "iss" claim is not an issuer this gateway trusts ({ISSUER}); sign in with one of them, '
            "or add the issuer as a [[gateway.oidc]] issuer",
        ),
        (
            {"exp": int(time.time()) - 3600},
            'it has expired (its "exp" claim is past, beyond the 30 s leeway); sign in again for a new '
            "token, and check the gateway's clock if new tokens fail too",
        ),
        (
            {"nbf": int(time.time()) + 3600},
            'it is not valid yet (its "nbf" claim is in the future, beyond the 30 s leeway); check the '
            "clocks of the issuer and the gateway",
        ),
        (
            {"aud": None},
            'it has no "aud" claim, which the gateway requires (exp, iss, aud); ask the issuer to include it',
        ),
        (
            {"key": OTHER_KEY},
            "its signature does not verify with the key the JWKS lists for it ({jwks}); check that "
            f"[[gateway.oidc]] jwks_url is {ISSUER}'s, else the token was altered",
        ),
        (
            {"kid": "unknown-kid", "key": OTHER_KEY},
            'its "kid" header names a key the JWKS does not list ({jwks}, fetched at most every 30 s); '
            f"check that [[gateway.oidc]] jwks_url is {ISSUER}'s and that the issuer publishes the key "
            "it signs with",
        ),
    ],
)
def test_a_refusal_says_what_was_expected_and_what_to_check(
    jwks_url: str, token_kwargs: dict[str, Any], expected: str
) -> None:
    """One sentence naming the expected value and the setting; never what the token holds."""
    token = _token(**token_kwargs)
    with pytest.raises(TokenError) as refused:
        _verify(jwks_url, token)
    message = str(refused.value)
    assert message == expected.replace("{jwks}", jwks_url)
    assert "token rejected" not in message  # the gateway's 401 adds "OIDC token rejected: " once
    for value in ("someone-else", "evil.example.org", "unknown-kid", "u1", "clinical-eng"):
        assert value not in message


def test_a_refusal_of_what_is_not_a_jwt_says_what_to_send(jwks_url: str) -> None:
    with pytest.raises(TokenError) as refused:
        _verify(jwks_url, "eyJhbGciOi.not-a-token.x")
    assert str(refused.value).startswith("it is not a JWT (three base64url parts")


def test_unsigned_and_symmetric_tokens_are_refused(jwks_url: str) -> None:
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": "phiwarden", "exp": int(time.time()) + 60}, "", algorithm="none"
    )
    with pytest.raises(TokenError, match="algorithm"):
        _verify(jwks_url, unsigned)
    hmac_token = jwt.encode(
        {"iss": ISSUER, "aud": "phiwarden", "exp": int(time.time()) + 60}, "x" * 32, algorithm="HS256"
    )
    with pytest.raises(TokenError, match="algorithm"):
        _verify(jwks_url, hmac_token)


def test_the_jwks_is_cached(jwks_url: str) -> None:
    verifier = OidcVerifier((OidcIssuer(ISSUER, "phiwarden", jwks_url),))
    before = len(FETCHES)

    async def many() -> None:
        for _ in range(5):
            await verifier.verify(_token())

    asyncio.run(many())
    assert len(FETCHES) - before == 1
