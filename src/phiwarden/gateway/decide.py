"""Step 3: the policy decision for one request: tier x destination x identity -> action.

    public      -> any approved destination that takes public content
    internal    -> only destinations with a BAA (or local), identifiers sanitized when pseudonymizing
    restricted  -> never to a cloud destination: routed to the local model, or blocked

The action for a tier comes from the caller's group, else `[gateway.actions]`. `mask` and
`pseudonymize` are judged on what is left once the values are replaced (the residual tier): code that
is PHI-adjacent stays restricted whatever is masked in it. An action that the destination cannot take
falls back to `route` (to a local destination that is enabled, speaks the API, accepts the content and
is among the caller's destinations) or `block`. Images, documents and audio cannot be read for PHI:
they count as `[gateway] binary_tier` and go only where a destination's `content` lists them.

`monitor` mode relaxes only the tier's action: the decision is made and audited, and the request goes
as it came to the destination its model maps to. What the caller may do at all holds in every mode
(`binding`): the key's tiers and destinations, the vendor review date and the destination's `content`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from phiwarden.gateway.principal import Principal
from phiwarden.gateway.request import Binary
from phiwarden.policy.gateway import Action, Api, Destination, GatewayPolicy, Mode, Tier

# One rule id per outcome, for audit queries and for the developer's error message.
RULES = {
    "tier-action": "the action the policy sets for this tier",
    "destination-refuses-tier": "the destination may not receive this tier",
    "restricted-to-local": "restricted content goes to the local model only",
    "conversation-pinned": "this conversation was routed to the local model earlier",
    "content-type": "the destination's `content` does not list these images, documents or audio",
    "binary-tier": "images, documents and audio count as [gateway] binary_tier, which the destination "
    "may not receive",
    "key-scope": "the API key may not send this tier",
    "no-route": "no local destination this caller may use can take the content",
}
_ADVICE = {
    "key-scope": "use a key whose tiers include this content, or remove the sensitive content",
    "no-route": "remove the values (use synthetic data), or ask your administrator for a local route",
}
_DEFAULT_ADVICE = (
    "remove the values or replace them with synthetic data (placeholders such as [SSN] work), "
    "or work on this with the approved local model"
)


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
    # What the developer can do about a block.
    advice: str = _DEFAULT_ADVICE
    # Holds in monitor mode too: the caller's scopes and the destination's terms, not the tier's action.
    binding: bool = False

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce" or self.binding


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
            f"{shown_model(policy, model)} is not served by any approved destination in the vendor matrix "
            f"(models: {', '.join(known) or 'none'}); "
            "ask your administrator to add it to [[destination]] models",
        )
    speaking = [d for d in serving if api in d.apis]
    if not speaking:
        raise NoDestination(
            400,
            f"{shown_model(policy, model)} is served by {serving[0].id!r}, which does not speak this API "
            f"({api})",
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


def shown_model(policy: GatewayPolicy, model: str) -> str:
    """The requested model as a message may show it: by name when the vendor matrix names it, else
    described (the client can send any text as a model name, and messages never hold values)."""
    named = any(
        model in (*d.models, d.model) and not any(ch in model for ch in "*?[") for d in policy.destinations
    )
    return f"model {model!r}" if named else f"the requested model ({len(model)} characters)"


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
    """The stricter of the caller's groups and the repository it names, when the policy lets this
    caller claim that repository; the gateway's mode when neither sets one."""
    modes = [g.mode for g in (policy.group(n) for n in principal.groups) if g is not None and g.mode]
    rollout = policy.repository(repository) if repository else None
    if rollout is not None and rollout.admits(principal.id, principal.groups, principal.repositories):
        modes.append(rollout.mode)
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
    binaries: Sequence[Binary],
    counts: Counter[str],
    pinned: str | None,
    repository: str | None,
    today: dt.date,
) -> Decision:
    mode = mode_for(policy, principal, repository)
    requested = destination_for(policy, principal, api, model, today)
    allowed = allowed_destinations(policy, principal)
    groups = [g for g in (policy.group(n) for n in principal.groups) if g is not None]
    route_to = next((g.route_to for g in groups if g.route_to), None) or policy.settings.route_to
    action: Action = next(
        (a for a in (g.actions.get(tier) for g in groups) if a is not None),
        policy.settings.actions.get(tier) or "block",
    )
    found = _found(counts)
    content = _Content(policy, binaries, allowed, api, today)

    def decision(
        action: Action,
        destination: Destination | None,
        sent: Tier,
        rule: str,
        reason: str,
        *,
        advice: str = "",
        binding: bool = False,
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
            advice or _ADVICE.get(rule, _DEFAULT_ADVICE),
            binding,
        )

    def route(rule: str, why: str, target: Destination | None, binary_cause: str = "") -> Decision:
        if target is None:
            problem = (
                "no-route",
                "no local destination is configured to route it to ([gateway] route_to)",
                "",
            )
        else:
            unroutable = _unroutable(target, tier, content)
            if unroutable is None:
                return decision(
                    "route", target, tier, rule, f"{why}; routed to the local destination {target.id!r}"
                )
            problem = unroutable
        failed, because, advice = problem
        if binary_cause:
            return decision("block", None, tier, "binary-tier", f"{why}; {because}", advice=binary_cause)
        return decision("block", None, tier, failed, f"{why}; {because}", advice=advice)

    if tier not in principal.tiers:
        return decision(
            "block", None, tier, "key-scope",
            f"this API key may send only {', '.join(principal.tiers)} content, and this request is {tier}"
            + content.counted_as(tier),
            binding=True,
        )  # fmt: skip
    refused = content.refused_by(requested)
    if mode == "monitor" and refused:
        # Monitor mode forwards to the requested destination, so its content terms must hold there.
        return decision(
            "block", None, tier, "content-type", refused, advice=content.elsewhere(), binding=True
        )
    if pinned:
        target = policy.destination(pinned)
        if target is not None and target.local and api in target.apis:
            why = f"this conversation was routed to {target.id!r} earlier and stays there"
            return route("conversation-pinned", why, target)
    local = policy.destination(route_to) if route_to else None
    if action == "block":
        reason = f"{tier} content ({found}{content.counted_as(tier)}) is blocked by policy"
        return decision("block", None, tier, "tier-action", reason)
    if action == "route":
        return route("tier-action", f"{tier} content ({found}{content.counted_as(tier)})", local)
    sent: Tier = tier if action == "allow" else residual_tier
    if not requested.may_receive(sent):
        refusal = _refusal(requested, sent)
        if action != "allow":
            refusal += f" even after {'masking' if action == 'mask' else 'pseudonymizing'}"
        refusal += f" ({found})"
        binary_cause = ""
        if content.kinds and not requested.may_receive(content.binary_tier):
            refusal = content.explain(requested) + (f"; {refusal}" if counts else "")
            # The images alone decide it when the values are replaced or there are none: then what to
            # change is how images are treated, not the text.
            if action != "allow" or not counts:
                binary_cause = content.raise_tier_advice()
        if sent == "restricted" or tier == "restricted":
            return route("restricted-to-local", refusal, local, binary_cause)
        if binary_cause:
            return decision("block", None, sent, "binary-tier", refusal, advice=binary_cause)
        return decision("block", None, sent, "destination-refuses-tier", refusal)
    if refused:
        if sent == "restricted" or tier == "restricted":
            return route("restricted-to-local", refused, local)
        return decision("block", None, sent, "content-type", refused, advice=content.elsewhere())
    if action == "allow":
        reason = f"{tier} content may go to {requested.id!r}"
    else:
        reason = f"{tier} content ({found}) {action}d for {requested.id!r}; what is sent is {sent}"
    return decision(action, requested, sent, "tier-action", reason)


@dataclass(frozen=True, slots=True)
class _Content:
    """The request's images, documents and audio, and how the policy treats them."""

    policy: GatewayPolicy
    binaries: Sequence[Binary]
    allowed: set[str] | None
    api: Api
    today: dt.date

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(b.kind for b in self.binaries)

    @property
    def binary_tier(self) -> Tier:
        return self.policy.settings.binary_tier

    def where(self, kinds: frozenset[str] | None = None) -> str:
        """`images (messages[0].content[1])`: what and where, for the message."""
        items = [b for b in self.binaries if kinds is None or b.kind in kinds]
        # An item may be recorded at its block and at a field inside it: the block is where to look.
        located = dict.fromkeys(b.location for b in items)
        outer = [p for p in located if not any(p != o and p.startswith((f"{o}.", f"{o}[")) for o in located)]
        places = outer[:5] + ([f"+{len(outer) - 5} more"] if len(outer) > 5 else [])
        names = sorted({b.kind for b in items})
        return f"{' and '.join(names)} ({', '.join(places)})"

    def refused_by(self, destination: Destination) -> str:
        """Why `destination` may not receive this content, or "" when it may."""
        missing = self.kinds - set(destination.content)
        if not missing:
            return ""
        return (
            f"{self.where(missing)} may not go to {destination.id!r}: its vendor matrix entry "
            f"does not list {' or '.join(sorted(missing))} in content"
        )

    def counted_as(self, tier: Tier) -> str:
        if not self.kinds or self.binary_tier != tier:
            return ""
        return f'; {self.where()} count as {tier}: [gateway] binary_tier = "{tier}"'

    def explain(self, destination: Destination) -> str:
        tier = self.binary_tier
        if tier == "restricted" and not destination.local:
            rule = f"which never goes to a cloud destination ({destination.id!r})"
        else:
            rule = f"which {destination.id!r} may not receive"
        return (
            f'{self.where()} cannot be inspected for PHI; [gateway] binary_tier = "{tier}" treats them '
            f"as {tier}, {rule}"
        )

    def raise_tier_advice(self) -> str:
        """What lets these images go to a cloud destination that accepts them."""
        kinds = " and ".join(sorted(self.kinds))
        takers = [
            d
            for d in self._usable()
            if not d.local and self.kinds <= set(d.content) and d.may_receive("internal")
        ]
        if not takers:
            return (
                f"send the text instead of the {kinds}: no destination you may use accepts them "
                "(a destination's content lists what it may receive)"
            )
        listed = ", ".join(f"{d.id} (content = {_toml_list(d.content)})" for d in takers)
        if self.binary_tier == "restricted":
            return (
                f"send the text instead, or, to allow {kinds} to {listed}, your administrator can set "
                '[gateway] binary_tier = "internal"'
            )
        return f"send the text instead, or use a model served by {listed}"

    def elsewhere(self) -> str:
        takers = [d.id for d in self._usable() if self.kinds <= set(d.content)]
        kinds = " and ".join(sorted(self.kinds))
        if not takers:
            return f"send the text instead of the {kinds}: no destination you may use accepts them"
        return f"send the text instead, or use a model served by {', '.join(takers)} (content lists {kinds})"

    def _usable(self) -> list[Destination]:
        """Destinations the caller may use today, whatever API they speak (a client can switch)."""
        return [
            d
            for d in self.policy.destinations
            if d.apis and not d.expired(self.today) and (self.allowed is None or d.id in self.allowed)
        ]


def _unroutable(target: Destination, tier: Tier, content: _Content) -> tuple[str, str, str] | None:
    """(rule, why, what to do) when `target` cannot take the routed request; None when it can."""
    if target.expired(content.today):
        return (
            "no-route",
            f"the local destination {target.id!r} is disabled: its vendor review date {target.review_by} "
            "has passed",
            f"remove the values (use synthetic data), or ask your administrator to review {target.id!r} "
            "(review_by in phiwarden.toml)",
        )
    if content.api not in target.apis:
        return (
            "no-route",
            f"the local destination {target.id!r} does not speak this API ({content.api})",
            f"use a client that speaks {', '.join(target.apis)} for this work, or remove the values",
        )
    if content.allowed is not None and target.id not in content.allowed:
        return (
            "no-route",
            f"the local destination {target.id!r} is outside what you may use "
            f"(your key and groups allow {', '.join(sorted(content.allowed))})",
            f"remove the values (use synthetic data), or use a key that may use {target.id!r} "
            f"(phiwarden keys create --destination {target.id})",
        )
    refused = content.refused_by(target)
    if refused:
        return "content-type", refused, content.elsewhere()
    if not target.may_receive(tier):
        return "no-route", f"{target.id!r} does not list {tier!r} in its tiers", ""
    return None


def _refusal(destination: Destination, tier: Tier) -> str:
    if tier == "restricted" and not destination.local:
        return f"restricted content never goes to a cloud destination ({destination.id!r})"
    if tier == "internal" and not (destination.baa or destination.local):
        return f"{destination.id!r} has no BAA, so it may not receive internal content"
    return f"{destination.id!r} may receive only {', '.join(destination.tiers)} content, not {tier}"


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def _found(counts: Counter[str]) -> str:
    if not counts:
        return "no values detected"
    return ", ".join(f"{n} {c}" for c, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
