"""Step 3: the policy decision for one request: tier x destination x identity -> action.

    public      -> any approved destination that takes public content
    internal    -> only destinations with a BAA (or local), identifiers sanitized when pseudonymizing
    restricted  -> never to a cloud destination: routed to the local model, or blocked

The action for a tier comes from the caller's group, else `[gateway.actions]`. `mask` and
`pseudonymize` are judged on what is left once the values are replaced (the residual tier): code that
is PHI-adjacent stays restricted whatever is masked in it. An action that the destination cannot take
falls back to `route` (when a local destination is configured) or `block`. In `monitor` mode the
decision is made and audited, and the request is forwarded as it came.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from phiwarden.gateway.principal import Principal
from phiwarden.policy.gateway import Action, Api, Destination, GatewayPolicy, Mode, Tier

# One rule id per outcome, for audit queries and for the developer's error message.
RULES = {
    "tier-action": "the action the policy sets for this tier",
    "destination-refuses-tier": "the destination may not receive this tier",
    "restricted-to-local": "restricted content goes to the local model only",
    "conversation-pinned": "this conversation was routed to the local model earlier",
    "content-type": "the destination may not receive images, documents or audio",
    "key-scope": "the API key may not send this tier",
    "no-route": "nothing local to route restricted content to",
}


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    mode: Mode
    tier: Tier
    # The tier of what leaves: the residual tier after masking or pseudonymizing.
    sent_tier: Tier
    destination: Destination | None
    upstream_model: str | None
    rule: str
    reason: str
    # The destination the model maps to (where monitor mode forwards).
    requested: Destination

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"


class NoDestination(Exception):
    """The model is not served by any destination this caller may use (the message says why)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def destination_for(
    policy: GatewayPolicy, principal: Principal, api: Api, model: str, today: dt.date
) -> Destination:
    serving = [d for d in policy.destinations if d.serves(model)]
    if not serving:
        known = sorted({m for d in policy.destinations if d.apis for m in d.models})
        raise NoDestination(
            404,
            f"model {model!r} is not served by any approved destination in the vendor matrix "
            f"(models: {', '.join(known) or 'none'}); "
            "ask your administrator to add it to [[destination]] models",
        )
    speaking = [d for d in serving if api in d.apis]
    if not speaking:
        raise NoDestination(
            400, f"model {model!r} is served by {serving[0].id!r}, which does not speak this API ({api})"
        )
    allowed = allowed_destinations(policy, principal)
    permitted = [d for d in speaking if allowed is None or d.id in allowed]
    if not permitted:
        raise NoDestination(
            403,
            f"your identity {principal.id!r} may not use {speaking[0].id!r} "
            "(group destinations or key scope); ask for access or pick another model",
        )
    current = [d for d in permitted if not d.expired(today)]
    if not current:
        stale = permitted[0]
        raise NoDestination(
            403,
            f"destination {stale.id!r} is disabled: its vendor review date {stale.review_by} has passed; "
            "the vendor matrix entry must be reviewed (review_by in phiwarden.toml)",
        )
    return current[0]


def allowed_destinations(policy: GatewayPolicy, principal: Principal) -> set[str] | None:
    """Destinations the caller may use; None: all."""
    allowed: set[str] | None = None
    groups = [g for g in (policy.group(name) for name in principal.groups) if g is not None]
    if groups and all(g.destinations for g in groups):
        allowed = {d for g in groups for d in g.destinations}
    if principal.destinations:
        scope = set(principal.destinations)
        allowed = scope if allowed is None else allowed & scope
    return allowed


def mode_for(policy: GatewayPolicy, principal: Principal, repository: str | None) -> Mode:
    """Repository setting first, then the caller's groups (monitor only if none says enforce)."""
    if repository:
        for rollout in policy.settings.repositories:
            if rollout.name == repository:
                return rollout.mode
    modes = [g.mode for g in (policy.group(n) for n in principal.groups) if g is not None and g.mode]
    if modes:
        return "enforce" if "enforce" in modes else "monitor"
    return policy.settings.mode


def decide(
    policy: GatewayPolicy,
    principal: Principal,
    *,
    api: Api,
    model: str,
    tier: Tier,
    residual_tier: Tier,
    binary_kinds: frozenset[str],
    counts: Counter[str],
    pinned: str | None,
    repository: str | None,
    today: dt.date,
) -> Decision:
    mode = mode_for(policy, principal, repository)
    requested = destination_for(policy, principal, api, model, today)
    groups = [g for g in (policy.group(n) for n in principal.groups) if g is not None]
    route_to = next((g.route_to for g in groups if g.route_to), None) or policy.settings.route_to
    action: Action = next(
        (a for a in (g.actions.get(tier) for g in groups) if a is not None),
        policy.settings.actions.get(tier) or "block",
    )
    found = _found(counts)

    def decision(
        action: Action, destination: Destination | None, sent: Tier, rule: str, reason: str
    ) -> Decision:
        upstream_model = model
        if destination is not None and destination.id != requested.id:
            upstream_model = destination.model or model
        return Decision(
            action,
            mode,
            tier,
            sent,
            destination,
            upstream_model if destination else None,
            rule,
            reason,
            requested,
        )

    def route(rule: str, why: str) -> Decision:
        target = policy.destination(route_to) if route_to else None
        if target is None:
            return decision(
                "block", None, tier, "no-route",
                f"{why}; no local destination is configured to route it to ([gateway] route_to)",
            )  # fmt: skip
        if api not in target.apis:
            return decision(
                "block", None, tier, "no-route",
                f"{why}; the local destination {target.id!r} does not speak this API ({api}) — use a client "
                f"that speaks {', '.join(target.apis)} for this work",
            )  # fmt: skip
        missing = binary_kinds - set(target.content)
        if missing:
            kinds = ", ".join(sorted(missing))
            return decision(
                "block",
                None,
                tier,
                "content-type",
                f"{why}; the local destination {target.id!r} does not accept {kinds}",
            )
        if not target.may_receive(tier):
            return decision(
                "block", None, tier, "no-route", f"{why}; {target.id!r} does not list {tier!r} in its tiers"
            )  # fmt: skip
        return decision("route", target, tier, rule, f"{why}; routed to the local destination {target.id!r}")

    def fallback(sent: Tier, why: str) -> Decision:
        if sent == "restricted" or tier == "restricted":
            return route("restricted-to-local", why)
        return decision("block", None, sent, "destination-refuses-tier", why)

    if tier not in principal.tiers:
        return decision(
            "block", None, tier, "key-scope",
            f"this API key may send only {', '.join(principal.tiers)} content, and this request is {tier}",
        )  # fmt: skip
    if pinned:
        target = policy.destination(pinned)
        if target is not None and target.local and api in target.apis:
            why = f"this conversation was routed to {target.id!r} earlier and stays there"
            return decision("route", target, tier, "conversation-pinned", why)
    if action == "block":
        return decision("block", None, tier, "tier-action", f"{tier} content ({found}) is blocked by policy")
    if action == "route":
        return route("tier-action", f"{tier} content ({found})")
    sent: Tier = tier if action == "allow" else residual_tier
    if not requested.may_receive(sent):
        refusal = _refusal(requested, sent)
        if action != "allow":
            refusal += f" even after {'masking' if action == 'mask' else 'pseudonymizing'} ({found})"
        return fallback(sent, refusal)
    missing = binary_kinds - set(requested.content)
    if missing:
        return fallback(
            sent, f"{requested.id!r} may not receive {', '.join(sorted(missing))} (vendor matrix content)"
        )
    if action == "allow":
        reason = f"{tier} content may go to {requested.id!r}"
    else:
        reason = f"{tier} content ({found}) {action}d for {requested.id!r}; what is sent is {sent}"
    return decision(action, requested, sent, "tier-action", reason)


def _refusal(destination: Destination, tier: Tier) -> str:
    if tier == "restricted" and not destination.local:
        return f"restricted content never goes to a cloud destination ({destination.id!r})"
    if tier == "internal" and not (destination.baa or destination.local):
        return f"{destination.id!r} has no BAA, so it may not receive internal content"
    return f"{destination.id!r} may receive only {', '.join(destination.tiers)} content, not {tier}"


def _found(counts: Counter[str]) -> str:
    if not counts:
        return "no values detected"
    return ", ".join(f"{n} {c}" for c, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
