"""`phiwarden keys`: personal and agent API keys for the gateway (create, list, revoke, rotate)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phiwarden.identity.keys import KeyStore
    from phiwarden.policy import Policy

DESCRIPTION = """\
Keys identify a person or an agent to the phiwarden gateway. A key is shown once, at creation or
rotation; the store keeps only a keyed hash (HMAC under the gateway's key secret). Scopes limit which
destinations a key may use, which tiers of content it may send and which repositories' rollout mode
it may claim.

The key store is the one the gateway uses: it is named by the phiwarden.toml found from the current
directory up to the repository root (or --policy). Every gateway request reads its key's record, so a
revoked key is refused from the next request on, on every replica.
"""

TIERS = ("public", "internal", "restricted")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, list, revoke and rotate gateway API keys",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: phiwarden.toml found from here up to the git root)",
    )
    commands = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    create = commands.add_parser("create", help="create a key for an identity (printed once)")
    create.add_argument("identity", help="the person (email) or agent name the key identifies")
    create.add_argument("--agent", action="store_true", help="the key is an agent's, not a person's")
    create.add_argument("--label", default="", help="what the key is for (shown in lists)")
    create.add_argument(
        "--expires-days", type=_days, default=90.0, metavar="DAYS",
        help="days until the key expires: a positive number, or never (default: 90)",
    )  # fmt: skip
    create.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="NAME",
        help="allow only this [[destination]] (repeat; default: whatever the identity's groups allow)",
    )
    create.add_argument(
        "--tier",
        action="append",
        choices=TIERS,
        default=[],
        help="allow only content of this tier (repeat; default: all tiers)",
    )
    create.add_argument(
        "--repository",
        action="append",
        default=[],
        metavar="NAME",
        help="let the key claim this [[gateway.repository]]'s rollout mode with the "
        "x-phiwarden-repository header (repeat)",
    )
    create.add_argument("--format", choices=("text", "json"), default="text", help="output (default: text)")
    listing = commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output (default: text)")
    revoke = commands.add_parser(
        "revoke", help="revoke a key: refused by every gateway replica from its next request on"
    )
    revoke.add_argument(
        "key", type=_key_id, metavar="KEY", help="the key id (from `keys list`) or the pwk_… key"
    )
    rotate = commands.add_parser("rotate", help="replace a key: same identity and scopes, old one revoked")
    rotate.add_argument(
        "key", type=_key_id, metavar="KEY", help="the key id (from `keys list`) or the pwk_… key"
    )
    rotate.add_argument(
        "--grace-seconds", type=_seconds, default=0.0, metavar="SECONDS",
        help="keep the old key valid this long, for clients to switch (default: 0, revoked at once)",
    )  # fmt: skip
    rotate.add_argument(
        "--expires-days", type=_days, default=90.0, metavar="DAYS",
        help="days until the new key expires: a positive number, or never (default: 90)",
    )  # fmt: skip
    rotate.add_argument("--format", choices=("text", "json"), default="text", help="output (default: text)")
    parser.set_defaults(run=run)


def _days(text: str) -> float | None:
    if text.strip().lower() == "never":
        return None
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of days or never, got {text!r}")
    return days


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive number of seconds, got {text!r}")
    return seconds


def _key_id(text: str) -> str:
    from phiwarden.identity.keys import KeyStoreError, key_id_of

    try:
        return key_id_of(text)
    except KeyStoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from phiwarden.gateway.runtime import open_key_store
    from phiwarden.identity.keys import KeyStoreError
    from phiwarden.policy import PolicyError, load_policy, require_policy

    if args.action is None:
        print("phiwarden keys: choose an action: create, list, revoke, rotate", file=sys.stderr)
        return 2
    try:
        path = require_policy(args.policy, Path.cwd())
        policy = load_policy(path)
        store = open_key_store(policy)
    except PolicyError as exc:
        print(f"phiwarden keys: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"phiwarden keys: cannot open the key store: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            return _create(args, policy, path, store)
        if args.action == "list":
            records = [r.to_dict() for r in store.backend.key_list()]
            if args.format == "json":
                print(json.dumps(records, indent=2))
            else:
                for r in records:
                    print(_line(r))
        elif args.action == "revoke":
            record = store.revoke(args.key)
            print(f"revoked {record.key_id} ({record.identity})")
        else:
            key, record = store.rotate(
                args.key, expires_in_days=args.expires_days, grace_seconds=args.grace_seconds
            )
            _show(args.format, key, record.to_dict())
    except KeyStoreError as exc:
        print(f"phiwarden keys: {exc}", file=sys.stderr)
        return 1
    return 0


def _create(args: argparse.Namespace, policy: Policy, path: Path, store: KeyStore) -> int:
    gateway = policy.gateway
    known = {d.id for d in gateway.destinations}
    unknown = [d for d in args.destination if d not in known]
    if unknown:
        print(f"phiwarden keys: no [[destination]] named {unknown[0]!r} in {path}", file=sys.stderr)
        return 2
    repositories = {r.name for r in gateway.settings.repositories}
    unnamed = [r for r in args.repository if r not in repositories]
    if unnamed:
        print(f"phiwarden keys: no [[gateway.repository]] named {unnamed[0]!r} in {path}", file=sys.stderr)
        return 2
    kind = "agent" if args.agent else "person"
    configured = gateway.identity(args.identity)
    if configured is None:
        print(
            f"phiwarden keys: warning: {args.identity!r} is not in [[identity]] of {path}: the key works, "
            "but no group applies to it (mode, destinations, actions)",
            file=sys.stderr,
        )
    elif configured.kind != kind:
        print(
            f"phiwarden keys: warning: {args.identity!r} is {_article(configured.kind)} in [[identity]]; "
            f"this key says {_article(kind)}" + ("" if args.agent else " (use --agent)"),
            file=sys.stderr,
        )
    key, record = store.create(
        args.identity,
        kind=kind,
        label=args.label,
        expires_in_days=args.expires_days,
        destinations=tuple(args.destination),
        tiers=tuple(args.tier) or TIERS,
        repositories=tuple(args.repository),
    )
    _show(args.format, key, record.to_dict())
    return 0


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _line(record: dict[str, Any]) -> str:
    scopes = ",".join(record["destinations"]) or "all destinations"
    expires = record["expires_at"] or "never"
    if record["state"] == "retiring":
        expires = f"{record['revoked_at']} (rotated; grace period)"
    repositories = f"  repositories {','.join(record['repositories'])}" if record["repositories"] else ""
    return (
        f"{record['key_id']}  {record['state']:<8} {record['kind']:<6} {record['identity']}  "
        f"expires {expires}  {scopes}  tiers {','.join(record['tiers'])}{repositories}  {record['label']}"
    )


def _show(fmt: str, key: str, record: dict[str, object]) -> None:
    if fmt == "json":
        print(json.dumps({"key": key, **record}, indent=2))
        return
    print(key)
    expires = record["expires_at"] or "never"
    print(
        f"# key {record['key_id']} for {record['identity']} ({record['kind']}), expires {expires}; "
        "shown once: store it now",
        file=sys.stderr,
    )
