"""Who is calling the gateway: personal and agent API keys, and OIDC bearer tokens."""

from phiwarden.identity.keys import KeyRecord, KeyStore
from phiwarden.identity.oidc import Claims, OidcVerifier, TokenError

__all__ = ["Claims", "KeyRecord", "KeyStore", "OidcVerifier", "TokenError"]
