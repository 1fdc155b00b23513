"""The caller of one request: an identity with its groups and the scopes of the key it used."""

from __future__ import annotations

from dataclasses import dataclass

from phiwarden.policy.gateway import TIERS


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    kind: str = "person"  # or "agent"
    # "phiwarden-key" or the OIDC issuer.
    provider: str = "phiwarden-key"
    groups: tuple[str, ...] = ()
    key_id: str | None = None
    # Key scopes: destinations (empty: any the groups allow) and tiers it may send.
    destinations: tuple[str, ...] = ()
    tiers: tuple[str, ...] = TIERS
    # Repositories whose rollout mode the key may claim (x-phiwarden-repository).
    repositories: tuple[str, ...] = ()
