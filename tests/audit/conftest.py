"""Fixtures of the audit tests: isolated key/data directories, real SQLite files, real PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from phiwarden.audit import Actor, AuditEvent, AuditLog, Classification, Decision, Endpoint, Resource
from phiwarden.policy.audit import AuditSettings

PG_BASE = os.environ.get("PHIWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

Raw = Callable[[str, Sequence[Any]], None]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, data and the default witness go to this test's directory, never the user's."""
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    for name in list(os.environ):
        if name.startswith("PHIWARDEN_AUDIT_"):
            monkeypatch.delenv(name)


def _pg_connect() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError:
        user = os.environ.get("USER", "root")
        return psycopg.connect(PG_BASE.replace("postgres@", f"{user}@"), connect_timeout=3, autocommit=True)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    try:
        admin = _pg_connect()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    schema = f"phiwarden_test_{uuid.uuid4().hex[:12]}"
    info = admin.info
    url = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'db' / 'audit.db').as_posix()}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def witness_file(tmp_path: Path) -> Path:
    return tmp_path / "worm" / "checkpoints.jsonl"


@pytest.fixture
def settings(store_url: str, witness_file: Path) -> AuditSettings:
    return AuditSettings(
        store=store_url, witnesses=(f"file://{witness_file.as_posix()}",), checkpoint_every=10
    )


@pytest.fixture
def raw(store_url: str) -> Iterator[Raw]:
    """Run SQL against the store behind the log's back (the attacker with database access)."""
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)

        def run_sqlite(sql: str, params: Sequence[Any] = ()) -> None:
            conn.execute(sql, params)

        yield run_sqlite
        conn.close()
    else:
        pg = psycopg.connect(store_url, autocommit=True)

        def run_pg(sql: str, params: Sequence[Any] = ()) -> None:
            pg.execute(sql.replace("?", "%s"), params)

        yield run_pg
        pg.close()


def make_event(index: int = 0, **changes: Any) -> AuditEvent:
    base = AuditEvent(
        actor=Actor(
            user_id=f"dev{index % 3}@example.org",
            identity_provider="okta",
            session_id=f"s-{index % 5}",
            client_tool=("Claude Code", "Cursor")[index % 2],
            agent="coder",
            model="claude-sonnet-4",
        ),
        operation="anthropic.messages.create",
        activity="create",
        decision=Decision(
            action=("allow", "mask", "block")[index % 3],
            policy_id="acme",
            policy_version="7",
            rule="restricted-to-cloud",
            reason="PHI in prompt",
        ),
        classification=Classification("restricted", {"ssn": 1, "name": 2} if index % 2 else {}),
        src_endpoint=Endpoint(hostname="laptop-7", ip="10.1.2.3"),
        dst_endpoint=Endpoint(
            hostname="api.anthropic.com", name=("anthropic-enterprise", "openai-zdr")[index % 2]
        ),
        resources=(Resource("file", f"src/module_{index}.py"),),
        latency_ms=index % 50,
        correlation_id=f"req-{index}",
        time=datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=index),
    )
    return replace(base, **changes) if changes else base


def fill(log: AuditLog, count: int, start: int = 0) -> None:
    log.append_batch([make_event(i) for i in range(start, start + count)])
