"""What a gateway process holds: compiled detection, the audit writer, the store, keys, the upstream
client. Built once at start-up (detection compiles in milliseconds, which a request must not pay)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from phiwarden.audit import AuditLog
from phiwarden.audit.keys import check_apart
from phiwarden.audit.log import sqlite_path, store_url
from phiwarden.audit.paths import config_dir
from phiwarden.gateway import keyclaims
from phiwarden.gateway.auditing import PROBE_INTERVAL_SECONDS, AuditWriter, RefusalLimiter
from phiwarden.gateway.headers import HeaderCheck
from phiwarden.gateway.inspect import Inspector
from phiwarden.gateway.recorded import ModelNames
from phiwarden.gateway.store import GatewayStore, default_store_url
from phiwarden.gateway.upstream import Upstream
from phiwarden.identity.keys import KeyStore
from phiwarden.identity.oidc import OidcVerifier
from phiwarden.policy.gateway import GatewayPolicy
from phiwarden.policy.model import Policy
from phiwarden.transform.vault import VaultStore


def gateway_store_url(policy: Policy) -> str:
    settings = policy.gateway.settings
    if settings.store:
        if settings.store.startswith(("postgresql://", "postgres://", "sqlite:///")):
            return settings.store
        return f"sqlite:///{settings.path(settings.store).resolve().as_posix()}"
    return default_store_url(store_url(policy.audit))


def vault_key_path(policy: Policy) -> Path:
    settings = policy.gateway.settings
    return (
        settings.path(settings.vault_key)
        if settings.vault_key
        else config_dir() / "keys" / "gateway-vault.key"
    )


def key_secret_path(policy: Policy) -> Path:
    settings = policy.gateway.settings
    return (
        settings.path(settings.key_secret)
        if settings.key_secret
        else config_dir() / "keys" / "gateway-keys.key"
    )


def open_key_store(policy: Policy, store: GatewayStore | None = None) -> KeyStore:
    url = gateway_store_url(policy)
    path = key_secret_path(policy)
    check_apart(path, sqlite_path(url), "gateway key secret")
    opened = store or GatewayStore(url)
    return KeyStore(opened, keyclaims.key_secret(url, path))


@dataclass(slots=True)
class Runtime:
    policy: Policy
    inspector: Inspector
    writer: AuditWriter
    store: GatewayStore
    vaults: VaultStore
    keys: KeyStore
    oidc: OidcVerifier
    upstream: Upstream
    # The model names the audit trail records (`recorded.py`).
    models: ModelNames
    # The client headers a request may pass to the vendor (`headers.py`).
    headers: HeaderCheck
    # Whether requests need the conversation's vault and pin (any pseudonymize or route action).
    needs_state: bool = True
    started: float = 0.0
    draining: bool = False
    refusals: RefusalLimiter = field(default_factory=RefusalLimiter)
    _store_checked: float = -PROBE_INTERVAL_SECONDS
    _store_problem: str | None = None

    @property
    def gateway(self) -> GatewayPolicy:
        return self.policy.gateway

    @classmethod
    def build(
        cls,
        policy: Policy,
        *,
        audit_log: AuditLog | None = None,
    ) -> Runtime:
        settings = policy.gateway.settings
        url = gateway_store_url(policy)
        store = GatewayStore(url)
        try:
            key_path = vault_key_path(policy)
            check_apart(key_path, sqlite_path(url), "gateway vault key")
            vaults = VaultStore(store, keyclaims.vault_keys(url, key_path), settings.vault_ttl_seconds)
            keys = open_key_store(policy, store)
            log = audit_log or AuditLog.open(policy.audit)
        except BaseException:
            store.close()
            raise
        actions = {
            *settings.actions.values(),
            *(a for g in policy.gateway.groups for a in g.actions.values()),
        }
        inspector = Inspector(policy, binary_tier=settings.binary_tier)
        return cls(
            policy=policy,
            inspector=inspector,
            writer=AuditWriter(log),
            store=store,
            vaults=vaults,
            keys=keys,
            oidc=OidcVerifier(settings.oidc),
            upstream=Upstream(settings),
            models=ModelNames(policy.gateway, lambda text: bool(inspector.engine.scan(text))),
            headers=HeaderCheck(lambda text: [f.category for f in inspector.engine.scan(text)]),
            needs_state=bool(actions & {"pseudonymize", "route"}),
        )

    async def store_problem(self) -> str | None:
        """What is wrong with the gateway store (pins, vaults), or None: two indexed reads, at most
        once per `PROBE_INTERVAL_SECONDS` (/readyz is polled by every load balancer)."""
        now = time.monotonic()
        if now - self._store_checked >= PROBE_INTERVAL_SECONDS:
            self._store_checked = now
            try:
                await asyncio.to_thread(self._read_store, time.time())
                self._store_problem = None
            except Exception as exc:
                self._store_problem = f"gateway store: {type(exc).__name__}"
        return self._store_problem

    def _read_store(self, now: float) -> None:
        self.store.pin_get("readyz", now)
        self.store.vault_load("readyz", now)

    async def close(self) -> None:
        await self.upstream.close()
        self.writer.close()
        self.store.close()
