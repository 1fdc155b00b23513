"""Verification throughput and proof cost of the audit log at scale.

Builds a log of --events events (default 1,000,000; SQLite, batches of 5000, a signed checkpoint per
batch published to a witness file), then measures `verify` (every record re-hashed, chain, Merkle
roots at every checkpoint, witness), inclusion proofs (size and time) and their offline check.
PostgreSQL is measured on --pg-events events.

    python -m benchmarks.audit_verify [--events 1000000] [--pg-events 100000]   # last line: JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from benchmarks.audit_common import event, isolated_home, pg_schema
from benchmarks.common import emit
from phiwarden.audit import AuditLog
from phiwarden.audit.log import open_store, public_key, witnesses
from phiwarden.audit.proof import check_proof, inclusion_proof
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings

BATCH = 5000
SPAN = 100_000


def build(settings: AuditSettings, count: int, prefix: str) -> dict[str, int]:
    """Build rate (events built and appended), and the append rate alone over the first and the
    last SPAN events: how much appends slow down as the store grows."""
    spans: list[list[float]] = []  # [events, seconds in append_batch] per SPAN events
    began = time.perf_counter()
    with AuditLog.open(settings) as log:
        for start in range(0, count, BATCH):
            batch = [event(i) for i in range(start, min(count, start + BATCH))]
            appending = time.perf_counter()
            log.append_batch(batch)
            if start % SPAN == 0:
                spans.append([0, 0.0])
                print(f"  built {start + BATCH} events", file=sys.stderr)
            spans[-1][0] += len(batch)
            spans[-1][1] += time.perf_counter() - appending
    return {
        f"{prefix}_build_eps": round(count / (time.perf_counter() - began)),
        f"{prefix}_append_eps_first_{SPAN // 1000}k": round(spans[0][0] / spans[0][1]),
        f"{prefix}_append_eps_last_{SPAN // 1000}k": round(spans[-1][0] / spans[-1][1]),
    }


def measure(settings: AuditSettings, count: int, prefix: str) -> dict[str, Any]:
    figures: dict[str, Any] = {f"{prefix}_events": count}
    figures.update(build(settings, count, prefix))
    store = open_store(str(settings.store))
    key = public_key(settings)
    try:
        for workers in sorted({1, os.cpu_count() or 1}):
            began = time.perf_counter()
            report = verify_log(store, key, witnesses=witnesses(settings), workers=workers)
            elapsed = time.perf_counter() - began
            if not report.ok:
                raise SystemExit(f"verification failed: {report.problems[:3]}")
            figures[f"{prefix}_verify_eps_{workers}proc"] = round(report.events_checked / elapsed)
            print(f"  verify with {workers} process(es): {elapsed:.1f}s", file=sys.stderr)
        sizes, times, checks = [], [], []
        for seq in (1, count // 3, count // 2 + 1, count):
            began = time.perf_counter()
            proof = inclusion_proof(store, seq)
            times.append(time.perf_counter() - began)
            sizes.append(len(proof["inclusion_path"]))
            text = json.dumps(proof)
            began = time.perf_counter()
            assert check_proof(text, key).ok
            checks.append(time.perf_counter() - began)
        figures[f"{prefix}_proof_hashes_max"] = max(sizes)
        figures[f"{prefix}_proof_path_bytes_max"] = max(sizes) * 32
        figures[f"{prefix}_proof_ms_max"] = round(max(times) * 1000, 2)
        figures[f"{prefix}_check_proof_ms_max"] = round(max(checks) * 1000, 2)
    finally:
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pg-events", type=int, default=100_000)
    args = parser.parse_args()
    figures: dict[str, Any] = {"cpus": os.cpu_count()}
    with isolated_home() as home:
        witness = f"file://{home}/witness.jsonl"
        sqlite = AuditSettings(
            store=f"sqlite:///{home}/audit.db", witnesses=(witness,), checkpoint_every=BATCH
        )
        figures.update(measure(sqlite, args.events, "sqlite"))
        figures["sqlite_db_bytes_per_event"] = round((home / "audit.db").stat().st_size / args.events)
        with pg_schema() as url:
            if url is None or args.pg_events <= 0:
                print("postgres: skipped", file=sys.stderr)
            else:
                pg = AuditSettings(store=url, witnesses=(witness,), checkpoint_every=BATCH)
                figures.update(measure(pg, args.pg_events, "postgres"))
    emit(figures)


if __name__ == "__main__":
    main()
