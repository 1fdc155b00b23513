"""`phiwarden gateway`: the OpenAI- and Anthropic-compatible LLM gateway."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Serve the LLM gateway: every prompt (system prompt, messages, tool calls and results, files) is
inspected, classified and handled by the policy in phiwarden.toml ([[destination]], [gateway],
[[identity]], [[group]]) before it leaves; every request lands in the audit trail first.

Point tools at it: ANTHROPIC_BASE_URL=http://HOST:PORT (Claude Code, Anthropic SDKs) or the OpenAI
base URL http://HOST:PORT/v1 (Cursor, Continue, aider, Codex, OpenAI SDKs), with a key from
`phiwarden keys create`.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway",
        help="run the LLM gateway (OpenAI and Anthropic APIs, policy enforced, audited)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--policy", metavar="FILE", help="policy file (default: ./phiwarden.toml)")
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help="address to listen on (default: [gateway] listen)"
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: [gateway] workers)")
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    parser.add_argument("--check", action="store_true", help="validate the policy and stores, then exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.policy import PolicyError, load_policy

    path = Path(args.policy) if args.policy else Path("phiwarden.toml")
    if args.policy and not path.is_file():
        print(f"phiwarden gateway: no policy file {path}", file=sys.stderr)
        return 2
    try:
        policy = load_policy(path if path.is_file() else None)
    except PolicyError as exc:
        print(f"phiwarden gateway: {exc}", file=sys.stderr)
        return 2
    settings = policy.gateway.settings
    usable = [d for d in policy.gateway.destinations if d.apis]
    if not usable:
        print(
            "phiwarden gateway: the policy has no [[destination]] the gateway can call "
            "(add base_url, models and apis/provider); nothing would be served",
            file=sys.stderr,
        )
        return 2
    listen = args.listen or settings.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"phiwarden gateway: --listen must be HOST:PORT, got {listen!r}", file=sys.stderr)
        return 2
    if args.check:
        from phiwarden.gateway.runtime import Runtime

        try:
            runtime = Runtime.build(policy)
        except Exception as exc:
            print(f"phiwarden gateway: not ready: {exc}", file=sys.stderr)
            return 1
        runtime.writer.close()
        runtime.store.close()
        print(
            f"phiwarden gateway: policy {policy.policy_id} revision {policy.revision} OK; "
            f"{len(usable)} destination(s)"
        )
        return 0
    from phiwarden.gateway.server import serve

    serve(
        path if path.is_file() else None,
        host=host.strip("[]"),
        port=int(port),
        workers=args.workers or settings.workers,
        graceful_timeout=settings.graceful_timeout_seconds,
        log_level=args.log_level,
    )
    return 0
