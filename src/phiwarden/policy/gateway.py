"""The LLM gateway's sections: `[[destination]]` (vendor matrix), `[gateway]`, `[[identity]]`, `[[group]]`.

[[destination]]                       # one approved AI destination (doctor reads the same keys)
id = "anthropic-enterprise"           # alias: name
provider = "anthropic"                # anthropic, openai, azure-openai, ollama, vllm, …
apis = ["messages"]                   # messages, chat_completions, responses (default by provider)
base_url = "https://api.anthropic.com"  # alias: url
models = ["claude-*"]                 # model names (globs) clients may ask for here
baa = true
zero_data_retention = true            # alias: retention = "zero"
trains_on_prompts = false
region = "us"
subprocessors = ["AWS", "Google Cloud"]
evidence = ["https://trust.example.com/baa.pdf"]
review_by = 2027-06-30                # alias: review_date; once passed, the gateway stops using it
tiers = ["public", "internal"]        # what it may receive (a cloud destination never gets restricted)
content = ["images"]                  # non-text content it may receive: images, documents, audio
api_key_env = "ANTHROPIC_API_KEY"     # the variable holding the vendor credential (never the value)
organization = "org-…"                # OpenAI: the organization and project the terms cover (sent
project = "proj_…"                    # by the gateway; a client's own headers are not forwarded)
local = false                         # true: runs on the company's machines (Ollama, vLLM)
model = "llama3.1:70b"                # model name sent when a request is routed here

[gateway]
listen = "127.0.0.1:8787"
mode = "enforce"                      # or "monitor": decide and audit, forward as allowed
route_to = "local-llama"              # the local destination of the `route` action
vendor_connectors = ["mcp:https://docs.example.com/*"]  # vendor-side connectors admitted (else refused)
[gateway.actions]                     # per tier: allow, mask, pseudonymize, route, block
public = "allow"
internal = "pseudonymize"
restricted = "route"

[[gateway.repository]]                # x-phiwarden-repository names it; the client sets that header, so
name = "acme/ehr-legacy"              # a monitor mode applies only to the callers it lists (and keys
mode = "monitor"                      # bound to it: `phiwarden keys create --repository`)
groups = ["clinical-eng"]
identities = ["ana@example.org"]

[[identity]]                          # people and agents; keys are made with `phiwarden keys`
id = "ana@example.org"
kind = "person"                       # or "agent"
groups = ["clinical-eng"]

[[group]]
name = "clinical-eng"
mode = "monitor"
destinations = ["anthropic-enterprise", "local-llama"]
actions = { restricted = "block" }
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast, get_args

from phiwarden.policy.reader import Table

Tier = Literal["public", "internal", "restricted"]
Action = Literal["allow", "mask", "pseudonymize", "route", "block"]
Api = Literal["messages", "chat_completions", "responses"]
Mode = Literal["enforce", "monitor"]

TIERS: tuple[Tier, ...] = get_args(Tier)
ACTIONS: tuple[Action, ...] = get_args(Action)
APIS: tuple[Api, ...] = get_args(Api)
MODES: tuple[Mode, ...] = get_args(Mode)
CONTENT_TYPES = ("images", "documents", "audio")
# What makes a vendor fetch data itself (gateway/data/connectors.toml), as `vendor_connectors` names it.
CONNECTOR_KINDS = ("mcp", "web_fetch", "file_search", "code_interpreter")
KINDS = ("person", "agent")

# The wire protocols each provider speaks when `apis` is not given. Providers missing here (Cursor,
# Copilot) are vendor-matrix entries for `phiwarden doctor` only: the gateway never sends to them.
_PROVIDER_APIS: dict[str, tuple[Api, ...]] = {
    "anthropic": ("messages",),
    "openai": ("chat_completions", "responses"),
    "azure-openai": ("chat_completions", "responses"),
    "ollama": ("chat_completions",),
    "vllm": ("chat_completions", "responses"),
    "lmstudio": ("chat_completions",),
    "llamacpp": ("chat_completions",),
}
_LOCAL_PROVIDERS = ("ollama", "vllm", "lmstudio", "llamacpp")
_DEFAULT_ACTIONS: dict[Tier, Action] = {"public": "allow", "internal": "pseudonymize", "restricted": "block"}

_DESTINATION_KEYS = (
    "id", "name", "provider", "account", "apis", "base_url", "url", "models", "model", "baa",
    "zero_data_retention", "retention", "trains_on_prompts", "region", "subprocessors", "evidence",
    "review_by", "review_date", "tiers", "content", "api_key_env", "local", "timeout", "organization",
    "project",
)  # fmt: skip
_GATEWAY_KEYS = (
    "listen", "workers", "mode", "actions", "route_to", "store", "max_request_size", "upstream_timeout",
    "connect_timeout", "retries", "vault_ttl", "vault_key", "key_secret", "sanitize_identifiers",
    "binary_tier", "extra_fields", "oidc", "repository", "graceful_timeout", "pin_ttl", "vendor_connectors",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Destination:
    """One vendor-matrix entry: where prompts may go, on what terms, with which credential."""

    id: str
    provider: str
    base_url: str
    apis: tuple[Api, ...] = ()
    models: tuple[str, ...] = ()
    model: str | None = None
    account: str | None = None
    baa: bool = False
    zero_data_retention: bool = False
    trains_on_prompts: bool = True
    region: str | None = None
    subprocessors: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    review_by: dt.date | None = None
    tiers: tuple[Tier, ...] = ("public",)
    content: tuple[str, ...] = ()
    api_key_env: str | None = None
    local: bool = False
    timeout_seconds: float | None = None
    # The OpenAI organization and project requests are billed to and governed by (the ones the BAA
    # and zero-retention terms cover), set here because a client's header could pick another.
    organization: str | None = None
    project: str | None = None

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def expired(self, today: dt.date) -> bool:
        return self.review_by is not None and self.review_by < today

    def may_receive(self, tier: Tier) -> bool:
        """The matrix rule: restricted only to local models, internal only under a BAA."""
        if tier not in self.tiers:
            return False
        if tier == "restricted":
            return self.local
        if tier == "internal":
            return self.local or self.baa
        return True


@dataclass(frozen=True, slots=True)
class Actions:
    """The action per tier; None where a group does not override the gateway's default."""

    public: Action | None = None
    internal: Action | None = None
    restricted: Action | None = None

    def get(self, tier: Tier) -> Action | None:
        value: Action | None = getattr(self, tier)
        return value

    def values(self) -> tuple[Action, ...]:
        return tuple(a for a in (self.public, self.internal, self.restricted) if a is not None)


DEFAULT_ACTIONS = Actions(**_DEFAULT_ACTIONS)


@dataclass(frozen=True, slots=True)
class OidcIssuer:
    issuer: str
    audience: str
    jwks_url: str
    user_claim: str = "email"
    groups_claim: str = "groups"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    leeway_seconds: int = 30


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    kind: str = "person"
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    mode: Mode | None = None
    # Destinations members may use (empty: all of the matrix).
    destinations: tuple[str, ...] = ()
    actions: Actions = field(default_factory=Actions)
    route_to: str | None = None


@dataclass(frozen=True, slots=True)
class RepositoryRollout:
    """A repository (named by the `x-phiwarden-repository` header) with its own rollout mode.

    The client sets that header, so naming a repository proves nothing: its mode applies to the callers
    listed here (identities, members of groups) and to keys bound to it. An `enforce` repository needs
    no list, since claiming it can only make a caller stricter.
    """

    name: str
    mode: Mode
    groups: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()

    def admits(self, identity: str, groups: tuple[str, ...], repositories: tuple[str, ...]) -> bool:
        """Whether a caller (its identity, groups and the repositories its key is bound to) may claim it."""
        return (
            self.mode == "enforce"
            or identity in self.identities
            or bool(set(groups) & set(self.groups))
            or self.name in repositories
        )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    listen: str = "127.0.0.1:8787"
    workers: int = 1
    mode: Mode = "enforce"
    actions: Actions = DEFAULT_ACTIONS
    route_to: str | None = None
    # Vault, keys and pins; None: next to the audit store (same PostgreSQL, or gateway.db beside audit.db).
    store: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    upstream_timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 10.0
    retries: int = 2
    vault_ttl_seconds: int = 24 * 3600
    pin_ttl_seconds: int = 24 * 3600
    vault_key: str | None = None
    key_secret: str | None = None
    sanitize_identifiers: bool = True
    # Images and PDFs cannot be read for PHI: they count as this tier. When in doubt, restricted.
    binary_tier: Tier = "restricted"
    # Request fields the gateway does not know but inspects as text instead of refusing the request.
    extra_fields: tuple[str, ...] = ()
    # Vendor-side connectors admitted: "KIND" or "KIND:GLOB" (gateway/connectors.py); others are refused.
    vendor_connectors: tuple[str, ...] = ()
    graceful_timeout_seconds: float = 30.0
    oidc: tuple[OidcIssuer, ...] = ()
    repositories: tuple[RepositoryRollout, ...] = ()
    base_dir: str | None = field(default=None, compare=False)

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else Path(self.base_dir) / path


@dataclass(frozen=True, slots=True)
class GatewayPolicy:
    """Everything the gateway reads from the policy, cross-checked."""

    settings: GatewaySettings = field(default_factory=GatewaySettings)
    destinations: tuple[Destination, ...] = ()
    identities: tuple[Identity, ...] = ()
    groups: tuple[Group, ...] = ()

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.id == name), None)

    def identity(self, name: str) -> Identity | None:
        return next((i for i in self.identities if i.id == name), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def repository(self, name: str) -> RepositoryRollout | None:
        return next((r for r in self.settings.repositories if r.name == name), None)


def parse(root: Table) -> GatewayPolicy:
    """Read `[gateway]`, `[[destination]]`, `[[identity]]` and `[[group]]` from the policy root."""
    destinations = tuple(_destination(entry) for entry in root.tables("destination"))
    for entry, destination in zip(root.tables("destination"), destinations, strict=True):
        if sum(1 for d in destinations if d.id == destination.id) > 1:
            raise entry.error("id", f"destination {destination.id!r} is defined twice")
    names = {d.id for d in destinations}
    groups = tuple(_group(entry, names, destinations) for entry in root.tables("group"))
    group_names = [g.name for g in groups]
    for entry, group in zip(root.tables("group"), groups, strict=True):
        if group_names.count(group.name) > 1:
            raise entry.error("name", f"group {group.name!r} is defined twice")
    settings = _settings(root.table("gateway"), names, destinations, set(group_names))
    identities = tuple(_identity(entry, set(group_names)) for entry in root.tables("identity"))
    ids = [i.id for i in identities]
    for entry, identity in zip(root.tables("identity"), identities, strict=True):
        if ids.count(identity.id) > 1:
            raise entry.error("id", f"identity {identity.id!r} is defined twice")
    return GatewayPolicy(settings, destinations, identities, groups)


def _destination(table: Table) -> Destination:
    table.only(_DESTINATION_KEYS)
    name_key = "id" if table.has("id") else "name"
    name = table.string(name_key, "").strip()
    if not name:
        raise table.error("id", "every [[destination]] needs an id (or name)")
    provider = table.string("provider", "").strip().lower()
    url_key = "base_url" if table.has("base_url") else "url"
    base_url = table.string(url_key, "").strip().rstrip("/")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise table.error(url_key, f"expected an http(s) URL, got {base_url!r}")
    local = table.boolean("local", provider in _LOCAL_PROVIDERS)
    apis = _choices(table, "apis", APIS, _PROVIDER_APIS.get(provider, ()))
    if apis and not base_url:
        raise table.error("base_url", f"destination {name!r} speaks {', '.join(apis)} and needs a base_url")
    tiers = cast(tuple[Tier, ...], _choices(table, "tiers", TIERS, ("public",)))
    if "restricted" in tiers and not local:
        raise table.error(
            "tiers",
            f"{name!r} is a cloud destination: restricted content never goes to a cloud vendor; "
            "route it to a local destination (local = true) instead",
        )
    baa = table.boolean("baa", False)
    if "internal" in tiers and not (baa or local):
        raise table.error("tiers", f"{name!r} has no BAA (baa = true): it may not receive internal content")
    if table.has("zero_data_retention"):
        zero = table.boolean("zero_data_retention", False)
    else:
        zero = table.string("retention", "").strip().lower() in ("zero", "none", "0", "0d")
    review_key = "review_by" if table.has("review_by") else "review_date"
    models = table.strings("models")
    return Destination(
        id=name,
        provider=provider,
        base_url=base_url,
        apis=cast(tuple[Api, ...], apis),
        models=models,
        model=table.optional_string("model"),
        account=table.optional_string("account"),
        baa=baa,
        zero_data_retention=zero,
        trains_on_prompts=table.boolean("trains_on_prompts", True),
        region=table.optional_string("region"),
        subprocessors=table.strings("subprocessors"),
        evidence=table.strings("evidence"),
        review_by=_date(table, review_key),
        tiers=tiers,
        content=_choices(table, "content", CONTENT_TYPES, ()),
        api_key_env=table.optional_string("api_key_env"),
        local=local,
        timeout_seconds=table.number("timeout", 600.0, minimum=0.1, maximum=3600.0)
        if table.has("timeout")
        else None,
        organization=table.optional_string("organization"),
        project=table.optional_string("project"),
    )


def _settings(
    table: Table, names: set[str], destinations: tuple[Destination, ...], groups: set[str]
) -> GatewaySettings:
    table.only(_GATEWAY_KEYS)
    listen = table.string("listen", "127.0.0.1:8787")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise table.error("listen", f'expected "HOST:PORT", got {listen!r}')
    actions = _actions(table.table("actions"), complete=True)
    route_to = _route_to(table, names, destinations)
    if "route" in actions.values() and route_to is None:
        raise table.error("route_to", 'the "route" action needs route_to: the name of a local destination')
    size = table.size("max_request_size", 32 * 1024 * 1024)
    source = table.document.source
    return GatewaySettings(
        listen=listen,
        workers=table.integer("workers", 1, minimum=1, maximum=256),
        mode=cast(Mode, table.choice("mode", "enforce", MODES)),
        actions=actions,
        route_to=route_to,
        store=table.optional_string("store"),
        max_request_bytes=size,
        upstream_timeout_seconds=table.number("upstream_timeout", 600.0, minimum=0.1, maximum=3600.0),
        connect_timeout_seconds=table.number("connect_timeout", 10.0, minimum=0.1, maximum=600.0),
        retries=table.integer("retries", 2, minimum=0, maximum=10),
        vault_ttl_seconds=table.integer("vault_ttl", 24 * 3600, minimum=60, maximum=90 * 86400),
        pin_ttl_seconds=table.integer("pin_ttl", 24 * 3600, minimum=60, maximum=90 * 86400),
        vault_key=table.optional_string("vault_key"),
        key_secret=table.optional_string("key_secret"),
        sanitize_identifiers=table.boolean("sanitize_identifiers", True),
        binary_tier=cast(Tier, table.choice("binary_tier", "restricted", TIERS)),
        extra_fields=table.strings("extra_fields"),
        vendor_connectors=_connectors(table),
        graceful_timeout_seconds=table.number("graceful_timeout", 30.0, minimum=0.0, maximum=3600.0),
        oidc=tuple(_oidc(entry) for entry in table.tables("oidc")),
        repositories=_repositories(table, groups),
        base_dir=str(Path(source).parent) if source and Path(source).suffix == ".toml" else None,
    )


def _connectors(table: Table) -> tuple[str, ...]:
    entries = table.strings("vendor_connectors")
    for index, entry in enumerate(entries):
        kind, colon, pattern = entry.partition(":")
        if kind not in CONNECTOR_KINDS or (colon and not pattern):
            raise table.document.error(
                (*table.path, "vendor_connectors", index),
                f'expected "KIND" or "KIND:PATTERN" with KIND one of {", ".join(CONNECTOR_KINDS)}, '
                f"got {entry!r}",
            )
    return entries


def _route_to(table: Table, names: set[str], destinations: tuple[Destination, ...]) -> str | None:
    route_to = table.optional_string("route_to")
    if route_to is None:
        return None
    if route_to not in names:
        raise table.error(
            "route_to", f"no [[destination]] named {route_to!r} (known: {', '.join(sorted(names))})"
        )
    target = next(d for d in destinations if d.id == route_to)
    if not target.local:
        raise table.error(
            "route_to", f"{route_to!r} is not local (local = true): restricted work stays in-house"
        )
    if not target.apis:
        raise table.error("route_to", f"{route_to!r} speaks no API the gateway can call (set apis)")
    return route_to


def _actions(table: Table, *, complete: bool) -> Actions:
    table.only(TIERS)
    out: dict[Tier, Action] = dict(_DEFAULT_ACTIONS) if complete else {}
    for tier in TIERS:
        if table.has(tier):
            out[tier] = cast(Action, table.choice(tier, "block", ACTIONS))
    if out.get("restricted") == "allow":
        raise table.error("restricted", 'restricted content is never forwarded as is: use "route", "block", '
                          '"pseudonymize" or "mask"')  # fmt: skip
    return Actions(**out)


def _group(table: Table, names: set[str], destinations: tuple[Destination, ...]) -> Group:
    table.only(("name", "mode", "destinations", "actions", "route_to"))
    name = table.string("name", "").strip()
    if not name:
        raise table.error("name", "every [[group]] needs a name")
    allowed = table.strings("destinations")
    for index, destination in enumerate(allowed):
        if destination not in names:
            raise table.document.error(
                (*table.path, "destinations", index), f"no [[destination]] named {destination!r}"
            )
    actions = _actions(table.table("actions"), complete=False)
    route_to = _route_to(table, names, destinations)
    mode = cast(Mode, table.choice("mode", "enforce", MODES)) if table.has("mode") else None
    return Group(name, mode, allowed, actions, route_to)


def _identity(table: Table, groups: set[str]) -> Identity:
    table.only(("id", "name", "kind", "groups"))
    key = "id" if table.has("id") else "name"
    name = table.string(key, "").strip()
    if not name:
        raise table.error("id", "every [[identity]] needs an id (an email or an agent name)")
    member_of = table.strings("groups")
    for index, group in enumerate(member_of):
        if group not in groups:
            raise table.document.error((*table.path, "groups", index), f"no [[group]] named {group!r}")
    return Identity(name, table.choice("kind", "person", KINDS), member_of)


def _oidc(table: Table) -> OidcIssuer:
    table.only(("issuer", "audience", "jwks_url", "user_claim", "groups_claim", "algorithms", "leeway"))
    for key in ("issuer", "audience", "jwks_url"):
        if not table.string(key, "").strip():
            raise table.error(key, f"every [[gateway.oidc]] needs {key}")
    jwks = table.string("jwks_url", "")
    if not jwks.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise table.error("jwks_url", "the JWKS must be fetched over https (http only for localhost)")
    return OidcIssuer(
        issuer=table.string("issuer", ""),
        audience=table.string("audience", ""),
        jwks_url=jwks,
        user_claim=table.string("user_claim", "email"),
        groups_claim=table.string("groups_claim", "groups"),
        algorithms=_choices(
            table,
            "algorithms",
            ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"),
            ("RS256", "ES256", "EdDSA"),
        ),
        leeway_seconds=table.integer("leeway", 30, minimum=0, maximum=600),
    )


def _repositories(table: Table, groups: set[str]) -> tuple[RepositoryRollout, ...]:
    out = tuple(_repository(entry, groups) for entry in table.tables("repository"))
    names = [r.name for r in out]
    for entry, rollout in zip(table.tables("repository"), out, strict=True):
        if names.count(rollout.name) > 1:
            raise entry.error("name", f"repository {rollout.name!r} is defined twice")
    return out


def _repository(table: Table, groups: set[str]) -> RepositoryRollout:
    table.only(("name", "mode", "groups", "identities"))
    name = table.string("name", "").strip()
    if not name:
        raise table.error("name", "every [[gateway.repository]] needs a name")
    members = table.strings("groups")
    for index, group in enumerate(members):
        if group not in groups:
            raise table.document.error((*table.path, "groups", index), f"no [[group]] named {group!r}")
    return RepositoryRollout(
        name, cast(Mode, table.choice("mode", "enforce", MODES)), members, table.strings("identities")
    )


def _choices(table: Table, key: str, options: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    values = table.strings(key, default)
    for index, value in enumerate(values):
        if value not in options:
            raise table.document.error(
                (*table.path, key, index),
                f"must be one of {', '.join(repr(o) for o in options)}, got {value!r}",
            )
    return values


def _date(table: Table, key: str) -> dt.date | None:
    value = table.data.get(key)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise table.error(key, f"expected a date such as 2026-06-30, got {value!r}")


__all__ = [
    "ACTIONS",
    "APIS",
    "CONNECTOR_KINDS",
    "TIERS",
    "Action",
    "Api",
    "Destination",
    "GatewayPolicy",
    "GatewaySettings",
    "Group",
    "Identity",
    "Mode",
    "OidcIssuer",
    "RepositoryRollout",
    "Tier",
    "parse",
]
