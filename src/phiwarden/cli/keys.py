"""`phiwarden keys`: personal and agent API keys for the gateway (create, list, revoke, rotate)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Keys identify a person or an agent to the phiwarden gateway. A key is shown once, at creation or
rotation; the store keeps only a keyed hash (HMAC under the gateway's key secret). Scopes limit which
destinations a key may use and which tiers of content it may send.
"""

TIERS = ("public", "internal", "restricted")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, list, revoke and rotate gateway API keys",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--policy", metavar="FILE", help="policy file (default: ./phiwarden.toml if present)")
    commands = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    create = commands.add_parser("create", help="create a key for an identity (printed once)")
    create.add_argument("identity", help="the person (email) or agent name the key identifies")
    create.add_argument("--agent", action="store_true", help="the key is an agent's, not a person's")
    create.add_argument("--label", default="", help="what the key is for (shown in lists)")
    create.add_argument("--expires-days", type=float, default=90.0, help="days until it expires (0: never)")
    create.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="NAME",
        help="allow only this destination (repeat)",
    )
    create.add_argument(
        "--tier", action="append", choices=TIERS, default=[], help="allow only this tier (repeat)"
    )
    create.add_argument("--format", choices=("text", "json"), default="text")
    listing = commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    revoke = commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    rotate = commands.add_parser("rotate", help="replace a key: same identity and scopes, old one revoked")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace-seconds", type=float, default=0.0, help="keep the old key valid this long")
    rotate.add_argument("--expires-days", type=float, default=90.0)
    rotate.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.gateway.runtime import open_key_store
    from phiwarden.identity.keys import KeyStoreError
    from phiwarden.policy import PolicyError, load_policy

    if args.action is None:
        print("phiwarden keys: choose an action: create, list, revoke, rotate", file=sys.stderr)
        return 2
    path = Path(args.policy) if args.policy else Path("phiwarden.toml")
    try:
        policy = load_policy(path if path.is_file() else None)
        store = open_key_store(policy)
    except PolicyError as exc:
        print(f"phiwarden keys: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"phiwarden keys: cannot open the key store: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            known = {d.id for d in policy.gateway.destinations}
            unknown = [d for d in args.destination if d not in known]
            if unknown:
                print(f"phiwarden keys: no [[destination]] named {unknown[0]!r}", file=sys.stderr)
                return 2
            key, record = store.create(
                args.identity,
                kind="agent" if args.agent else "person",
                label=args.label,
                expires_in_days=args.expires_days or None,
                destinations=tuple(args.destination),
                tiers=tuple(args.tier) or TIERS,
            )
            _show(args.format, key, record.to_dict())
        elif args.action == "list":
            records = [r.to_dict() for r in store.backend.key_list()]
            if args.format == "json":
                print(json.dumps(records, indent=2))
            else:
                for r in records:
                    print(_line(r))
        elif args.action == "revoke":
            store.revoke(args.key_id)
            print(f"revoked {args.key_id}")
        else:
            key, record = store.rotate(
                args.key_id, expires_in_days=args.expires_days or None, grace_seconds=args.grace_seconds
            )
            _show(args.format, key, record.to_dict())
    except KeyStoreError as exc:
        print(f"phiwarden keys: {exc}", file=sys.stderr)
        return 1
    return 0


def _line(record: dict[str, Any]) -> str:
    scopes = ",".join(record["destinations"]) or "all destinations"
    expires = record["expires_at"] or "never"
    return (
        f"{record['key_id']}  {record['state']:<8} {record['kind']:<6} {record['identity']}  "
        f"expires {expires}  {scopes}  tiers {','.join(record['tiers'])}  {record['label']}"
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
