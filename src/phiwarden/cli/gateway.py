"""`phiwarden gateway`: the OpenAI- and Anthropic-compatible LLM gateway."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phiwarden.policy.gateway import Destination, GatewayPolicy
    from phiwarden.policy.model import Policy

DESCRIPTION = """\
Serve the LLM gateway: every prompt (system prompt, messages, tool calls and results, files) is
inspected, classified and handled by the policy in phiwarden.toml ([[destination]], [gateway],
[[identity]], [[group]]) before it leaves; every request lands in the audit trail first.

The policy is the phiwarden.toml found from the current directory up to the repository root, or
--policy. A destination whose review_by date has passed is not used; the gateway warns about those and
about reviews due within 30 days, and refuses to start when no destination is usable. Before serving,
it opens the audit trail and the gateway store (creating them and their keys on first use) and exits
with status 2 when either is refused.

--check reads the policy, the stores, the key files and the destinations' credential variables
without changing anything, and says what starting would create. Exit status: 0 all is well; 1 a
destination is disabled by a passed review date; 2 an error (no usable destination, a credential
variable that is not set, a store or key that would be refused).

Point tools at it: ANTHROPIC_BASE_URL=http://HOST:PORT (Claude Code, Anthropic SDKs) or the OpenAI
base URL http://HOST:PORT/v1 (Cursor, Continue, aider, Codex, OpenAI SDKs), with a key from
`phiwarden keys create`.
"""

# A review due this soon is announced at start-up, before the destination silently stops working.
REVIEW_NOTICE_DAYS = 30


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="run the LLM gateway (OpenAI and Anthropic APIs, policy enforced, audited)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: phiwarden.toml found from here up to the git root)",
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default: [gateway] listen)"
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: [gateway] workers)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (default: info)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the policy, destinations, credentials, stores and keys without changing anything, "
        "then exit: 0 all is well, 1 a destination disabled by its review date, 2 an error",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.gateway.preflight import credential_problems, usable_destinations
    from phiwarden.policy import PolicyError, load_policy, require_policy

    try:
        path = require_policy(args.policy, Path.cwd())
        policy = load_policy(path)
    except PolicyError as exc:
        print(f"phiwarden gateway: {exc}", file=sys.stderr)
        return 2
    settings = policy.gateway.settings
    today = dt.date.today()
    for warning in warnings(policy.gateway, today):
        print(f"phiwarden gateway: warning: {warning}", file=sys.stderr)
    usable = usable_destinations(policy.gateway, today)
    if not usable:
        print(
            f"phiwarden gateway: no usable [[destination]] in {path}: each needs base_url, models and "
            "apis (or a provider the gateway speaks), and a review_by date not passed; nothing would be "
            "served",
            file=sys.stderr,
        )
        return 2
    if args.workers is not None and args.workers < 1:
        print("phiwarden gateway: --workers must be 1 or more", file=sys.stderr)
        return 2
    listen = args.listen or settings.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"phiwarden gateway: --listen must be HOST:PORT, got {listen!r}", file=sys.stderr)
        return 2
    if args.check:
        return _check(policy, path, usable, today)
    for missing in credential_problems(policy.gateway, today):
        print(f"phiwarden gateway: warning: {missing}; /readyz reports it", file=sys.stderr)
    refused = _open_stores(policy)
    if refused is not None:
        print(f"phiwarden gateway: cannot start: {refused}", file=sys.stderr)
        return 2
    from phiwarden.gateway.server import serve

    serve(
        path,
        host=host.strip("[]"),
        port=int(port),
        workers=args.workers or settings.workers,
        graceful_timeout=settings.graceful_timeout_seconds,
        log_level=args.log_level,
    )
    return 0


def _check(policy: Policy, path: Path, usable: list[Destination], today: dt.date) -> int:
    from phiwarden.gateway.preflight import check

    findings = check(policy, today)
    for item in findings.created:
        print(f"phiwarden gateway: starting would create {item}", file=sys.stderr)
    for error in findings.errors:
        print(f"phiwarden gateway: error: {error}", file=sys.stderr)
    if findings.errors:
        return 2
    disabled = [d.id for d in policy.gateway.destinations if d.apis and d.expired(today)]
    print(
        f"phiwarden gateway: policy {policy.policy_id} revision {policy.revision} ({path}) OK; "
        f"{len(usable)} usable destination(s): {', '.join(d.id for d in usable)}"
        + (f"; disabled by their review date: {', '.join(disabled)}" if disabled else "")
    )
    return 1 if disabled else 0


def _open_stores(policy: Policy) -> str | None:
    """Open the audit trail and the gateway store as a worker will (creating them and their keys on
    first use), then close them: why they are refused, or None."""
    from phiwarden.gateway.runtime import Runtime

    try:
        runtime = Runtime.build(policy)
    except Exception as exc:
        # The first line: drivers add the statement and a caret below it.
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    runtime.writer.close()
    runtime.store.close()
    return None


def warnings(gateway: GatewayPolicy, today: dt.date) -> list[str]:
    """What will refuse requests, or soon will: passed and coming reviews, unclaimable monitor modes."""
    out = []
    routes = {gateway.settings.route_to, *(g.route_to for g in gateway.groups)} - {None}
    for destination in gateway.destinations:
        if not destination.apis or destination.review_by is None:
            continue
        routed = " and restricted content cannot be routed to it" if destination.id in routes else ""
        if destination.expired(today):
            out.append(
                f"destination {destination.id!r} is disabled: its vendor review date "
                f"{destination.review_by} has passed; requests for its models are refused{routed} until "
                "the vendor matrix entry is reviewed (review_by)"
            )
        elif (destination.review_by - today).days <= REVIEW_NOTICE_DAYS:
            days = (destination.review_by - today).days
            out.append(
                f"destination {destination.id!r} is due for review on {destination.review_by} "
                f"(in {days} day{'' if days == 1 else 's'}); after that date the gateway stops using it"
            )
    for rollout in gateway.settings.repositories:
        if rollout.mode == "monitor" and not (rollout.groups or rollout.identities):
            out.append(
                f"repository {rollout.name!r} is in monitor mode but lists no groups or identities: "
                "only keys bound to it (phiwarden keys create --repository) get monitor mode there"
            )
    return out
