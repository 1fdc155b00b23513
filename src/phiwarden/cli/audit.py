"""`phiwarden audit`: verify, prove, search and export the audit trail."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DESCRIPTION = """\
The tamper-evident audit trail: every decision of an enforcement point as an OCSF API Activity event,
in a hash chain that is also an RFC 9162 Merkle tree, with Ed25519-signed checkpoints published to
witnesses outside the store. Events carry categories, counts and keyed hashes, never values.

Exit status: 0 ok, 1 verification failed or nothing found, 2 usage, policy, key or store error
(and verification that could not complete: a witness out of reach).
"""

EXAMPLES = """\
examples:
  phiwarden audit verify                         check the whole log against every checkpoint
  phiwarden audit checkpoint                     sign the current head and publish it
  phiwarden audit prove 1234 -o proof.json       inclusion proof of event 1234
  phiwarden audit check-proof proof.json --public-key audit-signing.pub
  phiwarden audit search --category ssn --since 7d --format json
  printf %s "$VALUE" | phiwarden audit lookup --value -
  phiwarden audit export --format cef --since 2025-01-01 -o audit.cef
  phiwarden audit forward --sink siem
  phiwarden audit prune --dry-run
  phiwarden audit verify-archive /mnt/archive/phiwarden --public-key audit-signing.pub
"""

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify, prove, search and export the audit trail",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="audit commands", metavar="ACTION")
    parser.set_defaults(run=lambda args: _help(parser))

    def command(
        name: str, help_text: str, run: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--policy", metavar="FILE", help="policy file (default: phiwarden.toml found from here)"
        )
        sub.add_argument("--store", metavar="URL", help="audit store (sqlite:///path or postgresql://…)")
        sub.set_defaults(run=run)
        return sub

    verify = command("verify", "detect modified, deleted, inserted, reordered or truncated events", _verify)
    verify.add_argument("--public-key", metavar="FILE", help="public key (default: the configured key's)")
    verify.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="also hold the log to this signed checkpoint (JSON or JSON lines; repeatable)",
    )
    verify.add_argument(
        "--witness", action="append", default=[], metavar="URL", help="read checkpoints from this witness too"
    )
    verify.add_argument("--jobs", type=int, metavar="N", help="processes (default: one per core)")
    _format(verify)

    checkpoint = command("checkpoint", "sign the current head and publish it to the witnesses", _checkpoint)
    _format(checkpoint)

    prove = command("prove", "write an inclusion proof of one event against a signed checkpoint", _prove)
    prove.add_argument("sequence", type=int, nargs="?", metavar="SEQ", help="sequence number of the event")
    prove.add_argument(
        "--consistency-from",
        type=int,
        metavar="SIZE",
        help="instead: a consistency proof from the checkpoint at SIZE to the latest one",
    )
    prove.add_argument("-o", "--output", metavar="FILE", help="write the proof here (default: stdout)")

    check = command("check-proof", "check a proof offline with only the public key", _check_proof)
    check.add_argument("proof", metavar="FILE", help="proof file (- for stdin)")
    check.add_argument("--public-key", metavar="FILE", required=True, help="the log's public key (PEM)")
    _format(check)

    search = command("search", "find events by actor, tool, destination, action, category, time", _search)
    _filters(search)
    search.add_argument(
        "--limit", type=int, default=100, metavar="N", help="the newest N matches (default 100)"
    )
    _archive_option(search)
    _format(search)

    stats = command("stats", "counts by action, tier, tool, destination, actor and category", _stats)
    _filters(stats)
    _format(stats)

    lookup = command("lookup", "was this value ever sent? (HMAC lookup; reads the value from stdin)", _lookup)
    lookup.add_argument(
        "--value", required=True, metavar="-", help="must be '-': the value is read from stdin"
    )
    _archive_option(lookup)
    _format(lookup)

    export = command("export", "write events as jsonl, OCSF JSON, CEF, syslog or Splunk HEC", _export)
    export.add_argument("--format", choices=("jsonl", "ocsf", "cef", "syslog", "hec"), default="ocsf")
    export.add_argument("--from-seq", type=int, default=1, metavar="SEQ", help="first sequence number")
    export.add_argument("--to-seq", type=int, metavar="SEQ", help="last sequence number")
    _filters(export)
    target = export.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", metavar="FILE", help="append to FILE (default: stdout)")
    target.add_argument("--sink", metavar="NAME", help="send to the [[audit.sink]] of this name")

    forward = command("forward", "forward new events to SIEM sinks continuously (at least once)", _forward)
    forward.add_argument("--sink", action="append", default=[], metavar="NAME", help="sink (default: all)")
    forward.add_argument("--once", action="store_true", help="send what is there, then exit")
    forward.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="idle poll interval")
    forward.add_argument(
        "--reset-cursor",
        type=int,
        metavar="SEQ",
        help="set the --sink's cursor to SEQ (the last event the SIEM holds) and exit; events after it "
        "are sent on the next run",
    )

    prune = command("prune", "remove sealed segments past retention, leaving a signed record", _prune)
    prune.add_argument("--dry-run", action="store_true", help="only say what would be pruned")
    _format(prune)

    archived = command(
        "verify-archive", "check archive files offline: hashes, chain, signed prune records", _verify_archive
    )
    archived.add_argument(
        "archive", nargs="+", metavar="PATH", help="archive file(s), or the archive directory"
    )
    archived.add_argument("--public-key", metavar="FILE", help="public key (default: the configured key's)")
    _format(archived)

    key = command(
        "public-key", "print the public key auditors use to check checkpoints and proofs", _public_key
    )
    key.add_argument("-o", "--output", metavar="FILE", help="write the PEM here")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", metavar="USER", help="actor user id")
    parser.add_argument("--tool", metavar="NAME", help='client tool, e.g. "Claude Code"')
    parser.add_argument(
        "--destination",
        metavar="NAME",
        help="the destination's name (anthropic-enterprise); an event whose destination has no name, "
        "by its host (then IP)",
    )
    parser.add_argument(
        "--action", choices=("allow", "mask", "pseudonymize", "route", "block", "hold"), help="decision"
    )
    parser.add_argument("--category", metavar="CAT", help="PHI category name, exactly, e.g. ssn")
    parser.add_argument("--tier", choices=("public", "internal", "restricted"))
    parser.add_argument("--since", type=_when, metavar="TIME", help="ISO date/time (UTC) or 30m, 24h, 7d ago")
    parser.add_argument("--until", type=_when, metavar="TIME", help="ISO date/time (UTC) or 30m, 24h, 7d ago")


_RELATIVE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _when(text: str) -> int:
    """Milliseconds since the epoch; argparse reports a bad value as "argument --since: …", exit 2."""
    match = _RELATIVE.fullmatch(text.strip())
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    try:
        if match:
            moment = datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
        else:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"out of range: {shown} (dates run from year 1 to 9999)") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {shown} (2025-01-31, 2025-01-31T12:00Z, 7d)") from None


class _Usage(Exception):
    """A usage or configuration problem: message for stderr, exit 2."""


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        from phiwarden.audit.errors import AuditError
        from phiwarden.policy import PolicyError

        try:
            return run(args)
        except (AuditError, PolicyError, _Usage) as exc:
            print(f"phiwarden audit: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return wrapped


def _settings(args: argparse.Namespace) -> Any:
    from phiwarden.policy import find_policy, load_policy

    path = Path(args.policy) if args.policy else find_policy(Path.cwd())
    return load_policy(path).audit


def _open(args: argparse.Namespace, settings: Any) -> Any:
    """The store in force for a command that writes it (cursors, prune); it must exist already."""
    from phiwarden.audit.log import store_url
    from phiwarden.audit.store import open_existing

    return open_existing(store_url(settings, args.store), read_only=False)


def _reader(args: argparse.Namespace, settings: Any) -> Any:
    """The store in force for a command that only reads it: never created, never written, so an
    auditor's read-only access (SELECT-only role, read-only file or mount) is enough."""
    from phiwarden.audit.log import store_url
    from phiwarden.audit.store import open_existing

    return open_existing(store_url(settings, args.store), read_only=True)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


@_guard
def _verify(args: argparse.Namespace) -> int:
    from phiwarden.audit.log import public_key, witnesses
    from phiwarden.audit.verify import verify_log
    from phiwarden.audit.witness import open_witness

    settings = _settings(args)
    # The store first: a mistyped store is the error to report, not a key missing on this machine.
    store = _reader(args, settings)
    try:
        key = public_key(settings, Path(args.public_key) if args.public_key else None)
        given = [c for name in args.checkpoint for c in _checkpoints_in(Path(name))]
        targets = [*witnesses(settings), *(open_witness(url) for url in args.witness)]
        report = verify_log(
            store,
            key,
            witnesses=targets,
            checkpoints=given,
            workers=args.jobs,
            checkpoint_every=settings.checkpoint_every,
        )
    finally:
        store.close()
    lines = [report.summary()]
    lines.extend(f"  [{p.kind}] {p.message}" for p in report.problems)
    if report.omitted:
        lines.append(f"  … and {report.omitted} more problem(s)")
    if report.problems:
        lines.extend(f"incomplete: {reason}" for reason in report.incomplete)
    lines.extend(f"warning: {w}" for w in report.warnings)
    _print(args, report.to_json(), "\n".join(lines))
    if report.ok:
        return EXIT_OK
    # Evidence of tampering is 1; a check that could not run (a witness out of reach) is 2.
    return EXIT_FAIL if report.problems else EXIT_USAGE


def _checkpoints_in(path: Path) -> list[Any]:
    """Signed checkpoints in a file: one JSON object, a JSON list, or JSON lines."""
    from phiwarden.audit.checkpoint import parse_checkpoint

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _Usage(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [parse_checkpoint(line) for line in text.splitlines() if line.strip()]
    return [parse_checkpoint(item) for item in (data if isinstance(data, list) else [data])]


@_guard
def _checkpoint(args: argparse.Namespace) -> int:
    from phiwarden.audit.log import AuditLog

    settings = _settings(args)
    # Nothing is created on the way to a failure: the store must exist (a mistyped --store must not
    # become a new, empty log), the keys must be the writers' (a new one would sign for no log), and
    # the store is opened for writing, which read-only access refuses before anything is signed.
    _reader(args, settings).close()
    log = AuditLog.open(settings, store=args.store, create=False)
    with log:
        signed = log.checkpoint(strict=True)
    if signed is None:
        _print(args, {"tree_size": 0}, "the log is empty: nothing to sign")
        return EXIT_OK
    body = signed.to_json()
    statement = signed.statement
    _print(args, body, f"checkpoint {statement.tree_size} root {statement.root_hash.hex()} published")
    return EXIT_OK


@_guard
def _prove(args: argparse.Namespace) -> int:
    from phiwarden.audit.proof import consistency_proof, inclusion_proof

    settings = _settings(args)
    store = _reader(args, settings)
    try:
        if (
            args.consistency_from is None
            and args.sequence is not None
            and store.record(args.sequence) is None
        ):
            print(f"phiwarden audit: {_no_event(store, args.sequence)}", file=sys.stderr)
            return EXIT_FAIL
        if args.consistency_from is not None:
            checkpoints = {c.statement.tree_size: c for c in store.checkpoints()}
            if args.consistency_from not in checkpoints or not checkpoints:
                raise _Usage(f"no stored checkpoint at size {args.consistency_from}")
            proof = consistency_proof(
                store, checkpoints[args.consistency_from], checkpoints[max(checkpoints)]
            )
        elif args.sequence is not None:
            proof = inclusion_proof(store, args.sequence)
        else:
            raise _Usage("give SEQ (inclusion proof) or --consistency-from SIZE")
    finally:
        store.close()
    text = json.dumps(proof, indent=2, sort_keys=True) + "\n"
    if args.output:
        _write_output(Path(args.output), text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _no_event(store: Any, seq: int) -> str:
    first, last = store.first_sequence(), store.last_sequence()
    if first is None:
        return f"no event {seq}: the log holds no events"
    if 1 <= seq < first and store.prunes():
        return f"event {seq} was pruned: the log holds events {first}..{last}"
    return f"no event {seq}: the log holds events {first}..{last}"


def _read_input(name: str) -> str:
    """A file the user named (- for stdin), or a one-line usage error."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Usage(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from None


def _write_output(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _Usage(f"cannot write {path}: {exc.strerror or exc}") from None


@_guard
def _check_proof(args: argparse.Namespace) -> int:
    from phiwarden.audit.keys import VerifyKey
    from phiwarden.audit.proof import check_proof

    key = VerifyKey.load(Path(args.public_key))
    result = check_proof(_read_input(args.proof), key)
    lines = [("OK" if result.ok else "FAILED") + ": " + "; ".join(result.messages)]
    if result.ok and result.event is not None:
        lines.append(_describe(result.event))
    _print(args, {"ok": result.ok, "messages": result.messages, "event": result.event}, "\n".join(lines))
    return EXIT_OK if result.ok else EXIT_FAIL


def _query(args: argparse.Namespace, limit: int | None = None) -> Any:
    from phiwarden.audit.search import Filter

    return Filter(
        actor=args.actor,
        tool=args.tool,
        destination=args.destination,
        action=args.action,
        category=args.category,
        tier=args.tier,
        since_ms=args.since,
        until_ms=args.until,
        limit=limit,
    )


def _describe(event: dict[str, Any]) -> str:
    extra = event.get("unmapped", {}).get("phiwarden", {})
    moment = datetime.fromtimestamp(event.get("time", 0) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    dst = event.get("dst_endpoint", {})
    categories = ",".join(
        f"{d['type']}:{d['count']}" for d in event.get("data_classification", {}).get("discovery_details", [])
    )
    return (
        f"#{event.get('metadata', {}).get('sequence')} {moment[:23]}Z "
        f"{event.get('actor', {}).get('user', {}).get('uid')} "
        f"[{event.get('actor', {}).get('app_name') or '-'}] {event.get('api', {}).get('operation')} -> "
        f"{dst.get('name') or dst.get('hostname') or '-'}: {extra.get('action')} ({extra.get('tier')}"
        f"{'; ' + categories if categories else ''})"
        f"{' — ' + extra['reason'] if extra.get('reason') else ''}"
    )


@_guard
def _search(args: argparse.Namespace) -> int:
    from phiwarden.audit.archive import search_archives
    from phiwarden.audit.event import enrich
    from phiwarden.audit.export import Exported

    query = _query(args, args.limit)
    pruned = None
    note = None
    if args.archive:
        archived, total = search_archives(_archive_paths(args.archive), query)
        events = [enrich(item.event) for item in archived]
        note = _expired_note(args.archive)
    else:
        settings = _settings(args)
        store = _reader(args, settings)
        try:
            found = store.search(query)
            total = len(found) if len(found) < args.limit else store.stats(query.unlimited)["events"]
            pruned = _pruned(store, settings)
        finally:
            store.close()
        events = [Exported.of(r).event for r in found]
    nothing = "no events found" + (
        " (--destination matches the destination's name; its host only when it has no name)"
        if args.destination
        else ""
    )
    _print(args, events, "\n".join(_describe(e) for e in events) or nothing)
    if total > len(events):
        print(
            f"phiwarden audit: showing the newest {len(events)} of {total} matches; --limit to see more",
            file=sys.stderr,
        )
    if pruned:
        note = _pruned_text(pruned)
    if note:
        print(f"phiwarden audit: {note}", file=sys.stderr)
    return EXIT_OK if events else EXIT_FAIL


def _pruned(store: Any, settings: Any) -> list[Any]:
    """Where the events the store pruned are now (`archive.pruned_ranges`); [] if it pruned none."""
    from phiwarden.audit.archive import pruned_ranges

    prunes = store.prunes()
    if not prunes:
        return []
    directory = settings.path(settings.archive_dir) if settings.archive_dir else None
    return pruned_ranges(prunes, directory, store.log_id)


_PRUNED_KINDS = {
    "archived": "are in archive files in {directory}",
    "expired": "were archived, then deleted past retention_days (signed records in {directory} say so)",
    "deleted": "were deleted past retention_days without an archive",
    "missing": "were archived, but {directory} does not hold their files",
}


def _pruned_text(pruned: list[Any]) -> str:
    """One line: which events were pruned from the store (so not searched there), and where they are."""
    parts = [
        f"{r.first}..{r.last} "
        + (
            "were archived (no archive_dir is configured here)"
            if r.directory is None and r.kind != "deleted"
            else _PRUNED_KINDS[r.kind].format(directory=r.directory)
        )
        for r in pruned
    ]
    text = f"events {pruned[0].first}..{pruned[-1].last} were pruned from the store, so not searched: "
    archived = sorted({str(r.directory) for r in pruned if r.kind == "archived"})
    hint = f" (search them with --archive {archived[0]})" if archived else ""
    return text + "; ".join(parts) + hint


def _pruned_json(pruned: list[Any]) -> list[dict[str, Any]]:
    return [
        {"first": r.first, "last": r.last, "where": r.kind, "archive_dir": r.directory and str(r.directory)}
        for r in pruned
    ]


def _archive_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        metavar="PATH",
        help="read archive files (a file or the archive directory), not the store",
    )


def _archive_paths(name: str) -> list[Path]:
    from phiwarden.audit.archive import archive_files

    paths = archive_files(Path(name))
    if not paths:
        raise _Usage(f"no archive files (phiwarden-audit-*.jsonl) in {name}")
    return paths


def _expired_note(name: str) -> str | None:
    """Which archived events were deleted past retention (so --archive cannot find them), if any."""
    from phiwarden.audit.archive import archive_range, expired_files

    spans: list[list[int]] = []
    for first, last in sorted(archive_range(path) for path in expired_files(Path(name))):
        if spans and spans[-1][1] + 1 == first:
            spans[-1][1] = last
        else:
            spans.append([first, last])
    if not spans:
        return None
    listed = ", ".join(f"{first}..{last}" for first, last in spans)
    return (
        f"events {listed} were deleted past retention_days (signed records in {name} say so), so not searched"
    )


@_guard
def _stats(args: argparse.Namespace) -> int:
    store = _reader(args, _settings(args))
    try:
        data = store.stats(_query(args))
    finally:
        store.close()
    if not data["events"]:
        _print(args, data, "no events match")
        return EXIT_FAIL
    lines = [f"events: {data['events']} (sequence {data['first_seq']}..{data['last_seq']})"]
    for key in ("by_action", "by_tier", "by_tool", "by_destination", "by_actor", "values_by_category"):
        if data.get(key):
            items = ", ".join(f"{k}={v}" for k, v in list(data[key].items())[:20])
            lines.append(f"{key.removeprefix('by_').replace('_', ' ')}: {items}")
    _print(args, data, "\n".join(lines))
    return EXIT_OK


@_guard
def _lookup(args: argparse.Namespace) -> int:
    from phiwarden.audit.archive import lookup_archives
    from phiwarden.audit.event import enrich
    from phiwarden.audit.export import Exported
    from phiwarden.audit.log import check_value_key, load_value_key, store_url

    if args.value != "-":
        # A value in argv ends up in shell history and process listings: refuse it.
        raise _Usage("--value takes only '-': pipe the value on stdin so it never appears in argv")
    value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise _Usage("no value on stdin")
    settings = _settings(args)
    key = load_value_key(settings, store_url(settings, args.store), create=False)
    digest = key.hash_value(value)
    del value
    pruned: list[Any] = []
    held: tuple[int | None, int | None] = (None, None)
    note = None
    if args.archive:
        archived = lookup_archives(_archive_paths(args.archive), digest, key.id)
        seqs = [item.seq for item in archived]
        events = [enrich(item.event) for item in archived]
        note = _expired_note(args.archive)
    else:
        store = _reader(args, settings)
        try:
            # Under another key every lookup misses: that must not read as "never recorded".
            check_value_key(store, key)
            seqs = store.lookup(digest)
            events = [Exported.of(r).event for s in seqs if (r := store.record(s)) is not None]
            pruned = _pruned(store, settings)
            if pruned:
                held = (store.first_sequence(), store.last_sequence())
        finally:
            store.close()
    if events:
        text = "\n".join(_describe(e) for e in events)
    elif args.archive:
        text = "not recorded in the archive files"
    elif not pruned:
        text = "never recorded"
    elif held[0] is None:
        text = "not in the store: it holds no events"
    else:
        text = f"not recorded in events {held[0]}..{held[1]}, the events the store holds"
    found = {"found": bool(seqs), "sequences": seqs, "events": events}
    _print(args, {**found, "pruned": _pruned_json(pruned)} if pruned else found, text)
    if pruned:
        note = _pruned_text(pruned)
    if note:
        print(f"phiwarden audit: {note}", file=sys.stderr)
    return EXIT_OK if seqs else EXIT_FAIL


@_guard
def _export(args: argparse.Namespace) -> int:
    from functools import partial

    from phiwarden.audit.export import render
    from phiwarden.audit.forward import open_transport, renderer
    from phiwarden.audit.oversize import Renderer
    from phiwarden.audit.sinks import FileTransport, Transport

    settings = _settings(args)
    transport: Transport
    to_bytes: Callable[[Any], bytes]
    limited: Renderer | None = None
    if args.sink:
        sink = next((s for s in settings.sinks if s.name == args.sink), None)
        if sink is None:
            raise _Usage(f"no [[audit.sink]] named {args.sink!r}")
        transport = open_transport(sink, Path(settings.base_dir) if settings.base_dir else None)
        # The sink's own format, and its size limit: an oversized event goes out truncated.
        to_bytes = limited = renderer(sink, transport)
    else:
        transport = FileTransport(args.output or "-")
        to_bytes = partial(render, fmt=args.format)
    filtered = any(
        getattr(args, k) is not None
        for k in ("actor", "tool", "destination", "action", "category", "tier", "since", "until")
    )
    store = _reader(args, settings)
    count = 0
    try:
        records = store.search(_query(args)) if filtered else store.records(args.from_seq, args.to_seq)
        batch: list[bytes] = []
        for record in records:
            if filtered and not (args.from_seq <= record.seq <= (args.to_seq or record.seq)):
                continue
            batch.append(to_bytes(record))
            if len(batch) >= 1000:
                transport.send(batch)
                count += len(batch)
                batch = []
        if batch:
            transport.send(batch)
            count += len(batch)
    finally:
        store.close()
        transport.close()
    truncated = limited.truncated if limited is not None else 0
    note = f" ({truncated} too large for the sink, sent truncated)" if truncated else ""
    print(f"phiwarden audit: exported {count} event(s){note}", file=sys.stderr)
    return EXIT_OK


def _reset_cursor(args: argparse.Namespace, settings: Any, sinks: list[Any]) -> int:
    from phiwarden.audit.forward import newest_sequence

    if len(args.sink) != 1:
        raise _Usage("--reset-cursor needs exactly one --sink NAME")
    store = _open(args, settings)
    try:
        newest = newest_sequence(store)
        if not 0 <= args.reset_cursor <= newest:
            raise _Usage(f"--reset-cursor {args.reset_cursor}: the log's events are numbered up to {newest}")
        store.set_cursor(sinks[0].name, args.reset_cursor)
    finally:
        store.close()
    print(
        f"phiwarden audit: {sinks[0].name}: cursor set to {args.reset_cursor}; the next run sends the "
        "events after it (at least once: the SIEM may get some twice)",
        file=sys.stderr,
    )
    return EXIT_OK


@_guard
def _forward(args: argparse.Namespace) -> int:
    import signal
    import threading

    from phiwarden.audit.forward import SinkForwarder, forward_all, open_transport

    settings = _settings(args)
    sinks = [s for s in settings.sinks if not args.sink or s.name in args.sink]
    unknown = set(args.sink) - {s.name for s in settings.sinks}
    if unknown or not sinks:
        raise _Usage(
            f"no such sink: {', '.join(sorted(unknown))}" if unknown else "no [[audit.sink]] in the policy"
        )
    if args.reset_cursor is not None:
        return _reset_cursor(args, settings, sinks)
    base = Path(settings.base_dir) if settings.base_dir else None
    # Every sink's settings are checked (a missing HEC token) before anything is sent anywhere.
    transports = [open_transport(sink, base) for sink in sinks]

    def report(forwarder: SinkForwarder) -> None:
        stats = forwarder.stats
        truncated = f", {stats.truncated} sent truncated" if stats.truncated else ""
        print(
            f"phiwarden audit: {forwarder.sink.name}: delivered {stats.delivered}, "
            f"cursor {stats.cursor}{truncated}",
            file=sys.stderr,
        )

    stop = threading.Event()
    stores: list[Any] = []
    # Restored on the way out: a handler left behind would outlive the command in a process that
    # runs it as a function (and in the processes that one forks, which would then ignore SIGTERM).
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        # Each sink runs in its own thread, on its own store connection.
        stores.extend(_open(args, settings) for _ in sinks)
        outcomes = forward_all(
            list(zip(stores, sinks, transports, strict=True)),
            once=args.once,
            max_failures=5 if args.once else None,
            stop=stop,
            poll_seconds=args.poll,
            caught_up=None if args.once else report,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        for store in stores:
            store.close()
    for outcome in outcomes:
        report(outcome.forwarder)
        if outcome.error:
            print(f"phiwarden audit: {outcome.forwarder.sink.name}: FAILED: {outcome.error}", file=sys.stderr)
    failed = [o.forwarder.sink.name for o in outcomes if o.error]
    if failed:
        others = " (the other sinks got everything)" if len(failed) < len(outcomes) else ""
        print(
            f"phiwarden audit: not everything was delivered to {', '.join(failed)}{others}; "
            "run again to resume from each sink's cursor",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK


@_guard
def _prune(args: argparse.Namespace) -> int:
    from phiwarden.audit.log import load_signing_key, store_url
    from phiwarden.audit.retention import prune

    settings = _settings(args)
    url = store_url(settings, args.store)
    key = load_signing_key(settings, url, create=False)
    store = _open(args, settings)
    try:
        result = prune(store, settings, key, dry_run=args.dry_run)
    finally:
        store.close()
    plan, finished = result.plan, result.finished
    would = args.dry_run or result.held
    lines = []
    if finished is not None:
        lines.append(
            f"{'would finish' if would else 'finished'} a prune interrupted after writing its archive: "
            f"{'would remove' if would else 'removed'} events {finished.first}..{finished.last} "
            f"({finished.count}; the archive in {finished.archive} kept as written)"
        )
    if plan is not None:
        where = f", archived to {plan.archive}" if plan.archive else ""
        lines.append(
            f"{'would remove' if would else 'removed'} events {plan.first}..{plan.last} "
            f"({plan.count}; {plan.reason}{where})"
        )
    for expiry in result.expired:
        newest = datetime.fromtimestamp(expiry.newest_ms / 1000, UTC).strftime("%Y-%m-%d")
        lines.append(
            f"{'would delete' if would else 'deleted'} archive {expiry.archive} (newest event {newest}; "
            f"past retention_days = {settings.retention_days}; a signed record stays beside it)"
        )
    if not lines:
        lines.append("nothing to prune: no sealed segment is past retention")
    if result.held:
        lines.append("a legal hold is in force ([audit] legal_hold = true): nothing is pruned")
    _print(
        args,
        {
            "first": plan.first if plan else None,
            "last": plan.last if plan else None,
            "count": plan.count if plan else 0,
            "removed": result.removed,
            "finished_interrupted": (
                {"first": finished.first, "last": finished.last, "count": finished.count}
                if finished
                else None
            ),
            "expired_archives": [str(e.archive) for e in result.expired],
            "dry_run": args.dry_run,
            "legal_hold": result.held,
        },
        "\n".join(lines),
    )
    return EXIT_OK


@_guard
def _verify_archive(args: argparse.Namespace) -> int:
    from phiwarden.audit.archive import archive_files, expired_files, verify_archives
    from phiwarden.audit.keys import VerifyKey
    from phiwarden.audit.log import public_key

    # With --public-key the auditor needs nothing else: no policy, no store, no private key.
    key = VerifyKey.load(Path(args.public_key)) if args.public_key else public_key(_settings(args))
    paths: list[Path] = []
    expired: list[Path] = []
    directories = False
    for name in args.archive:
        path = Path(name)
        if path.name.endswith(".expired.json"):
            expired.append(path)
            continue
        paths.extend(archive_files(path))
        if path.is_dir():
            directories = True
            expired.extend(expired_files(path))
    report = verify_archives(paths, key, expired)
    uncompared = _compare_archives(args, report, key, complete=directories)
    if report.ok:
        lines = [
            f"OK: {report.files} archive file(s), {report.events} events verified "
            f"(sequence {report.first}..{report.last}), {report.expired} deleted past retention "
            "under signed records" + ("; every range the store archived is there" if report.compared else "")
        ]
    else:
        lines = ["FAILED", *(f"  {problem}" for problem in report.problems)]
    lines.extend(f"warning: {w}" for w in report.warnings)
    if uncompared:
        lines.append(f"note: not compared with the store's prune records: {uncompared}")
    _print(args, report.to_json(), "\n".join(lines))
    return EXIT_OK if report.ok else EXIT_FAIL


def _compare_archives(args: argparse.Namespace, report: Any, key: Any, *, complete: bool) -> str | None:
    """Hold the archives to the store's prune records; returns why they were not, if they were not.

    With --public-key alone the store is the one of the policy found here, if any; one that cannot
    be read then is a note, not an error (an auditor may hold the files and the key only)."""
    from phiwarden.audit.archive import compare_with_store
    from phiwarden.audit.errors import AuditError
    from phiwarden.policy import PolicyError, find_policy

    explicit = args.store is not None or args.policy is not None or args.public_key is None
    if not explicit and find_policy(Path.cwd()) is None:
        return "no policy found here (--policy or --store names the store)"
    try:
        store = _reader(args, _settings(args))
    except (AuditError, PolicyError) as exc:
        if explicit:
            raise
        return str(exc)
    try:
        logs = {c.record.log_id for c in report.covered}
        if logs and store.log_id not in logs:
            return f"the files are of log {', '.join(sorted(logs))}, the store holds log {store.log_id}"
        compare_with_store(report, store.log_id, store.prunes(), key, complete=complete)
    finally:
        store.close()
    return None


@_guard
def _public_key(args: argparse.Namespace) -> int:
    from phiwarden.audit.log import public_key

    pem = public_key(_settings(args)).pem()
    if args.output:
        _write_output(Path(args.output), pem)
    else:
        sys.stdout.write(pem.decode("ascii"))
    return EXIT_OK
