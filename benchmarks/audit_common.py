"""Shared set-up of the audit benchmarks: isolated key directories, stores, realistic events."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from phiwarden.audit import Actor, AuditEvent, Classification, Decision, Endpoint, Resource
from phiwarden.audit.keys import HmacKey

PG_BASE = os.environ.get("PHIWARDEN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_VALUE_KEY = HmacKey(bytes(range(32)))
_START = datetime(2025, 1, 1, tzinfo=UTC)


def event(i: int) -> AuditEvent:
    """A gateway decision as the LLM gateway records it: every field filled, two value hashes."""
    return AuditEvent(
        actor=Actor(
            user_id=f"dev{i % 40}@example.org",
            identity_provider="okta",
            session_id=f"sess-{i % 400}",
            client_tool=("Claude Code", "Cursor", "Continue", "aider")[i % 4],
            agent="coding-agent",
            model="claude-sonnet-4",
        ),
        operation="anthropic.messages.create",
        activity="create",
        decision=Decision(
            ("allow", "mask", "pseudonymize", "block")[i % 4], "acme", "12", "restricted", "PHI"
        ),
        classification=Classification(
            "restricted",
            {"ssn": 1, "name": 2},
            {"ssn": (_VALUE_KEY.hash_value(f"{i:09d}"),), "name": (_VALUE_KEY.hash_value(f"n{i}"),)},
        ),
        src_endpoint=Endpoint(hostname=f"laptop-{i % 40}", ip="10.0.0.7"),
        dst_endpoint=Endpoint(hostname="api.anthropic.com", port=443, name="anthropic-enterprise"),
        resources=(Resource("file", f"src/service/module_{i % 1000}.py"),),
        latency_ms=35,
        correlation_id=f"req-{i}",
        time=_START + timedelta(milliseconds=i),
    )


@contextmanager
def isolated_home() -> Iterator[Path]:
    """Keys, data and witness in a throwaway directory (never the user's)."""
    with tempfile.TemporaryDirectory(prefix="phiwarden-bench-") as tmp:
        root = Path(tmp)
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            os.environ[name] = str(root / name.lower())
        yield root


@contextmanager
def pg_schema() -> Iterator[str | None]:
    """A PostgreSQL URL on a fresh schema (None when the server is not reachable)."""
    try:
        admin = psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError:
        yield None
        return
    schema = f"phiwarden_bench_{uuid.uuid4().hex[:10]}"
    info = admin.info
    try:
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
