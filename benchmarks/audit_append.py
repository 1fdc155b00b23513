"""Append throughput of the audit log: single and batched, SQLite and PostgreSQL, 1 and 8 writers.

Every append is durable when it returns (SQLite synchronous=FULL, PostgreSQL committed), seals a
signed checkpoint every 1000 events and publishes it to a witness file. Events are built before
timing starts; `event_build_us` reports what building one costs the caller.

    python -m benchmarks.audit_append [--batch 1000] [--events 20000]   # last line: JSON figures
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from typing import Any

from benchmarks.audit_common import event, isolated_home, pg_schema
from benchmarks.common import emit
from phiwarden.audit import AuditLog
from phiwarden.policy.audit import AuditSettings


def _settings(url: str, witness: str) -> AuditSettings:
    return AuditSettings(store=url, witnesses=(f"file://{witness}",), checkpoint_every=1000)


def _writer(
    url: str, witness: str, offset: int, *, events: int, batch: int, ready: Any, start: Any, done: Any
) -> None:
    items = [event(offset + i) for i in range(events)]
    with AuditLog.open(_settings(url, witness)) as log:
        ready.put(True)
        start.wait()
        for i in range(0, events, batch):
            log.append_batch(items[i : i + batch])
    done.put(events)


def run(url: str, witness: str, *, writers: int, events: int, batch: int) -> int:
    """Events per second over all writers, from the start signal to the last durable append."""
    AuditLog.open(_settings(url, witness)).close()
    context = multiprocessing.get_context("fork")
    ready, start, done = context.Queue(), context.Event(), context.Queue()
    procs = [
        context.Process(
            target=_writer,
            args=(url, witness, n * 10_000_000),
            kwargs={"events": events, "batch": batch, "ready": ready, "start": start, "done": done},
        )
        for n in range(writers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=600)  # every writer has built its events and opened the store
    began = time.perf_counter()
    start.set()
    total = sum(int(done.get(timeout=600)) for _ in procs)
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    return round(total / elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="batched events per writer")
    parser.add_argument("--single", type=int, default=300, help="single appends per writer")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with isolated_home() as home:
        began = time.perf_counter()
        for i in range(2000):
            event(i)
        figures["event_build_us"] = round((time.perf_counter() - began) / 2000 * 1e6, 1)
        witness = str(home / "witness.jsonl")
        with pg_schema() as pg_one, pg_schema() as pg_eight:
            urls = {
                ("sqlite", 1): f"sqlite:///{home}/one.db",
                ("sqlite", 8): f"sqlite:///{home}/eight.db",
                ("postgres", 1): pg_one,
                ("postgres", 8): pg_eight,
            }
            for (name, writers), url in urls.items():
                if url is None:
                    print(f"{name}: not reachable, skipped", file=sys.stderr)
                    continue
                key = f"{name}_{writers}w"
                figures[f"{key}_single_eps"] = run(url, witness, writers=writers, events=args.single, batch=1)
                figures[f"{key}_batched_eps"] = run(
                    url, witness, writers=writers, events=args.events // writers, batch=args.batch
                )
                print(key, figures[f"{key}_single_eps"], figures[f"{key}_batched_eps"], file=sys.stderr)
    figures["batch_size"] = args.batch
    emit(figures)


if __name__ == "__main__":
    main()
