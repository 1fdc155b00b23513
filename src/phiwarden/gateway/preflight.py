"""`phiwarden gateway --check`: what would stop the gateway, read without changing anything.

The check writes nothing and generates no key: it reads what exists (the audit store and the ids of
its keys, the gateway store and the ids of the vault key and key secret it was written with, the key
files, the credentials of the enabled destinations) and says what starting would create. Starting
does the same work for real (`Runtime.build`), once in the parent process before any worker starts,
so that a refused store or key stops it with the reason instead of workers dying and being respawned.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phiwarden.audit.errors import AuditError
from phiwarden.audit.keys import HMAC_KEY_ENV, HmacKey, SigningKey, check_apart, resolve_hmac_key_path
from phiwarden.audit.log import signing_key_path, sqlite_path, store_url
from phiwarden.audit.redact import redact_url, scrub
from phiwarden.audit.store import AuditStore
from phiwarden.gateway import keyclaims
from phiwarden.gateway.keyclaims import KEY_SECRET, VAULT_KEY, Claims, KeyClaimError, KeyKind
from phiwarden.gateway.runtime import gateway_store_url, key_secret_path, vault_key_path
from phiwarden.identity.keys import KeyStore
from phiwarden.policy.gateway import Destination, GatewayPolicy
from phiwarden.policy.model import Policy
from phiwarden.transform.vault import VaultError, VaultKeys


@dataclass(slots=True)
class Findings:
    errors: list[str] = field(default_factory=list)
    # What starting the gateway would create: stores, their tables, keys.
    created: list[str] = field(default_factory=list)


def usable_destinations(gateway: GatewayPolicy, today: dt.date) -> list[Destination]:
    """Destinations the gateway can call today."""
    return [d for d in gateway.destinations if d.apis and not d.expired(today)]


def credential_problems(
    gateway: GatewayPolicy, today: dt.date, environ: Mapping[str, str] = os.environ
) -> list[str]:
    """Enabled destinations whose credential variable is not set: every request for them would fail."""
    return [
        f"destination {d.id!r}: ${d.api_key_env} is not set on the gateway host, so every request for "
        "its models would fail"
        for d in usable_destinations(gateway, today)
        if d.api_key_env and not environ.get(d.api_key_env)
    ]


def check(policy: Policy, today: dt.date) -> Findings:
    out = Findings()
    out.errors.extend(credential_problems(policy.gateway, today))
    _audit(policy, out)
    _gateway(policy, out)
    return out


def _tables(url: str, table: str, what: str, out: Findings) -> bool | None:
    """Whether the store at `url` has `table`; False when starting would create it (noted), None
    when it cannot be read (an error)."""
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            out.created.append(f"{what} {path}")
            return False
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            out.errors.append(f"cannot read {what} {path}: {exc}")
            return None
        if found is None:
            out.created.append(f"the tables of {what} in {path}")
            return False
        return True
    import psycopg

    shown = redact_url(url)
    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as pg:
            found_table: Any = pg.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if found_table[0] is not None:
                return True
            # A schema on the search path that does not exist yet is created (which needs CREATE on
            # the database), else the tables go into the first one (CREATE on that schema).
            allowed: Any = pg.execute(
                "SELECT CASE WHEN current_schema() IS NULL "
                "THEN has_database_privilege(current_database(), 'CREATE') "
                "ELSE has_schema_privilege(current_schema(), 'CREATE') END"
            ).fetchone()
            may_create = bool(allowed[0])
    except psycopg.Error as exc:
        said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.errors.append(f"cannot reach {what} {shown}: {scrub(said, url)}")
        return None
    if may_create:
        out.created.append(f"the tables of {what} in {shown}")
    else:
        out.errors.append(
            f"{what} {shown} has no tables yet and this role may not create them (CREATE on the schema): "
            "create them once as a role that may (start the gateway as that role), or grant CREATE"
        )
    return False


def _key(
    out: Findings,
    what: str,
    where: str,
    *,
    present: bool,
    store: str,
    recorded: str | None,
    key_id: Callable[[], str],
) -> None:
    """One key against the id the store recorded for it."""
    if not present:
        if recorded is not None:
            out.errors.append(
                f"{store} was written with {what} {recorded}, which this host does not have ({where})"
            )
        else:
            out.created.append(f"the {what} {where}")
        return
    found = key_id()
    if recorded is not None and recorded != found:
        out.errors.append(
            f"{store} was written with {what} {recorded}, but the {what} here ({where}) is {found}"
        )


def _audit(policy: Policy, out: Findings) -> None:
    settings = policy.audit
    url = store_url(settings)
    shown, database = redact_url(url), sqlite_path(url)
    meta: dict[str, str | None] = {}
    exists = _tables(url, "audit_meta", "the audit store", out)
    if exists is None:
        return
    try:
        if exists:
            if database is not None:
                from phiwarden.audit.store_sqlite import SQLiteStore

                store: AuditStore = SQLiteStore(database, read_only=True)
            else:
                from phiwarden.audit.store_postgres import PostgresStore

                store = PostgresStore(url, read_only=True)
            try:
                meta = {name: store.meta(name) for name in ("signing_key_id", "hmac_key_id")}
            finally:
                store.close()
        signing = signing_key_path(settings)
        check_apart(signing, database, "signing key")
        _key(
            out,
            "audit signing key",
            str(signing),
            present=signing.exists(),
            store=shown,
            recorded=meta.get("signing_key_id"),
            key_id=lambda: SigningKey.load(signing, create=False).public.id,
        )
        text = os.environ.get(HMAC_KEY_ENV)
        if text:
            _key(
                out,
                "audit HMAC key",
                f"${HMAC_KEY_ENV}",
                present=True,
                store=shown,
                recorded=meta.get("hmac_key_id"),
                key_id=lambda: HmacKey.from_text(text, source=HMAC_KEY_ENV).id,
            )
        else:
            path = resolve_hmac_key_path(settings.path(settings.hmac_key) if settings.hmac_key else None)
            check_apart(path, database, "HMAC key")
            _key(
                out,
                "audit HMAC key",
                str(path),
                present=path.exists(),
                store=shown,
                recorded=meta.get("hmac_key_id"),
                key_id=lambda: HmacKey.load(path, create=False).id,
            )
    except AuditError as exc:
        out.errors.append(str(exc))


def _gateway(policy: Policy, out: Findings) -> None:
    url = gateway_store_url(policy)
    database = sqlite_path(url)
    exists = _tables(url, "gateway_vault", "the gateway store", out)
    if exists is None:
        return
    claims: Claims | None = None
    try:
        claims = Claims(url, create=False) if exists else None
        vault_path, secret_path = vault_key_path(policy), key_secret_path(policy)
        check_apart(vault_path, database, "gateway vault key")
        check_apart(secret_path, database, "gateway key secret")
        keys: list[tuple[KeyKind, Path, Callable[[], str]]] = [
            (VAULT_KEY, vault_path, lambda: keyclaims.vault_key_id(VaultKeys.load(vault_path, create=False))),
            (
                KEY_SECRET,
                secret_path,
                lambda: keyclaims.key_secret_id(KeyStore.load_secret(secret_path, create=False)),
            ),
        ]
        for kind, configured, key_id in keys:
            where, present = keyclaims.source(kind, configured)
            if claims is None:
                _key(
                    out,
                    kind.what,
                    where,
                    present=present,
                    store=redact_url(url),
                    recorded=None,
                    key_id=key_id,
                )
            elif not present:
                problem = keyclaims.missing_problem(claims, kind, where)
                if problem is None:
                    out.created.append(f"the {kind.what} {where}")
                else:
                    out.errors.append(problem)
            else:
                found, recorded = key_id(), claims.get(kind.claim)
                if recorded is not None and recorded != found:
                    out.errors.append(keyclaims.mismatch_problem(claims, kind, where, found, recorded))
    except (AuditError, VaultError, KeyClaimError) as exc:
        out.errors.append(str(exc))
    finally:
        if claims is not None:
            claims.close()


__all__ = ["Findings", "check", "credential_problems", "usable_destinations"]
