"""`phiwarden audit verify` and the read commands end to end: exit codes, messages, JSON, witnesses
over HTTP, stores that do not exist, and auditors with read-only access on both stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from phiwarden.audit import AuditLog, Classification
from phiwarden.cli import main

from .conftest import _pg_connect, make_event

READ_COMMANDS = [
    ["verify"],
    ["search", "--actor", "dev1@example.org"],
    ["stats"],
    ["prove", "3"],
    ["export", "--format", "jsonl"],
]


def _policy(directory: Path, store: str, witnesses: list[str]) -> Path:
    policy = directory / "phiwarden.toml"
    policy.write_text(
        f'[audit]\nstore = "{store}"\nwitnesses = {json.dumps(witnesses)}\ncheckpoint_every = 5\n',
        encoding="utf-8",
    )
    return policy


def _fill(policy: Path, count: int = 12) -> None:
    from phiwarden.policy import load_policy

    with AuditLog.open(load_policy(policy).audit) as log:
        for start in range(0, count, 4):
            digest = log.hash_value("518-42-7731")
            log.append_batch(
                [
                    make_event(i, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
                    for i in range(start, min(count, start + 4))
                ]
            )


def run(policy: Path, *args: str) -> int:
    return main(["audit", *args, "--policy", str(policy)])


@pytest.fixture
def witnessed(tmp_path: Path, store_url: str) -> Path:
    policy = _policy(tmp_path, store_url, [f"file://{tmp_path / 'worm' / 'w.jsonl'}"])
    _fill(policy)
    return policy


def test_a_changed_column_fails_with_its_sequence_in_text_and_json(
    witnessed: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.audit.store import open_existing

    store = open_existing(store_url, read_only=False)
    with store._write() as cur:
        cur.execute(store._sql("UPDATE audit_events SET action = 'block', actor = 'x' WHERE seq = 7"))
    store.close()
    assert run(witnessed, "verify") == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED: first bad sequence number 7\n") and "None" not in out
    assert run(witnessed, "verify", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_bad_sequence"] == 7 and report["first_bad_range"] is None
    assert report["problems"][0] == {
        "sequence": 7,
        "last_sequence": None,
        "kind": "derived",
        "message": report["problems"][0]["message"],
    }
    assert "actor, action" in report["problems"][0]["message"]


@pytest.mark.parametrize("exact", [True, False], ids=["after-a-checkpoint", "before-it"])
def test_a_truncation_in_text_and_json(
    witnessed: Path, store_url: str, exact: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.audit.store import open_existing

    store = open_existing(store_url, read_only=False)
    first = store.checkpoint_rows()[0][0]
    keep = first - 1 if exact else first - 2
    with store._write() as cur:
        cur.execute(store._sql("DELETE FROM audit_events WHERE seq > ?"), (keep,))
        cur.execute(store._sql("DELETE FROM audit_value_hashes WHERE seq > ?"), (keep,))
    store.close()
    assert run(witnessed, "verify", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    if exact:
        # The first checkpoint holds the hash of its last event: with it, 1..keep are proven.
        assert report["first_bad_sequence"] == first and report["first_bad_range"] is None
    else:
        assert report["first_bad_range"] == [1, first] and report["first_bad_sequence"] == 1
        assert report["pinpointed_sequence"] == keep + 1  # the head still records 12 events
    assert run(witnessed, "verify") == 1
    out = capsys.readouterr().out
    assert out.startswith(
        f"FAILED: first bad sequence number {first}\n"
        if exact
        else f"FAILED: first bad sequence in 1..{first} (exact evidence first at event {keep + 1})\n"
    )


def test_a_bad_signature_names_what_failed_and_no_sequence(
    witnessed: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from phiwarden.audit.store import open_existing

    store = open_existing(store_url, read_only=False)
    size = store.checkpoint_rows()[0][0]
    with store._write() as cur:
        cur.execute(
            store._sql("UPDATE audit_checkpoints SET statement = replace(statement, ?, ?)"),
            (f'"tree_size":{size}', f'"tree_size":{size - 1}'),
        )
    store.close()
    assert run(witnessed, "verify") == 1
    out = capsys.readouterr().out
    assert (
        out.startswith(f"FAILED: stored checkpoint at size {size - 1}: bad signature") and "None" not in out
    )


@pytest.fixture
def http_witness() -> Iterator[tuple[str, list[bytes]]]:
    """A witness that takes POSTed checkpoints and serves what it holds (the list can be emptied)."""
    held: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            held.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = b"\n".join(held)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/witness", held
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_witness_with_an_empty_body_fails_a_sealed_log(
    tmp_path: Path, http_witness: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, held = http_witness
    policy = _policy(tmp_path, f"sqlite:///{tmp_path / 'db' / 'a.db'}", [url])
    _fill(policy)
    assert run(policy, "verify") == 0 and held
    capsys.readouterr()
    held.clear()
    assert run(policy, "verify") == 1
    out = capsys.readouterr().out
    assert f"the witness {url} holds no checkpoint of this log (is empty)" in out


def test_an_unreachable_witness_leaves_verification_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, f"sqlite:///{tmp_path / 'db' / 'a.db'}", [f"file://{tmp_path / 'w.jsonl'}"])
    _fill(policy)
    dead = "http://127.0.0.1:9/witness"
    assert run(policy, "verify", "--witness", dead) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"INCOMPLETE: cannot read the witness {dead}:")
    assert run(policy, "verify", "--witness", dead, "--format", "json") == 2
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and not report["complete"] and report["first_bad_sequence"] is None


def test_an_unreadable_witness_file_leaves_verification_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "w.jsonl"
    policy = _policy(tmp_path, f"sqlite:///{tmp_path / 'db' / 'a.db'}", [f"file://{witness}"])
    _fill(policy)
    witness.unlink()
    witness.mkdir()  # a directory where the file was: it exists but cannot be read
    assert run(policy, "verify") == 2
    assert f"cannot read the witness {witness}" in capsys.readouterr().out


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_refuse_a_sqlite_store_that_does_not_exist(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "audit.db"
    policy = _policy(tmp_path, f"sqlite:///{missing}", [])
    assert run(policy, *command) == 2
    assert f"no audit store at {missing}; check --store / [audit] store" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_lookup_refuses_a_store_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    missing = tmp_path / "typo" / "audit.db"
    policy = _policy(tmp_path, f"sqlite:///{missing}", [])
    monkeypatch.setattr(sys, "stdin", io.StringIO("518-42-7731"))
    assert run(policy, "lookup", "--value", "-") == 2
    assert not missing.exists()


def test_checkpoint_refuses_a_store_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, f"sqlite:///{tmp_path / 'db' / 'a.db'}", [])
    new = tmp_path / "new" / "path.db"
    assert run(policy, "checkpoint", "--store", f"sqlite:///{new}") == 2
    assert "no audit store at" in capsys.readouterr().err and not new.exists()


@pytest.fixture
def pg_schema_url() -> Iterator[tuple[str, str]]:
    """A URL whose schema does not exist (as after a typo), and its name; dropped afterwards."""
    try:
        admin = _pg_connect()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    schema = f"phiwarden_typo_{uuid.uuid4().hex[:10]}"
    info = admin.info
    url = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    try:
        yield url, schema
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.mark.parametrize("command", [*READ_COMMANDS, ["checkpoint"]], ids=lambda c: c[0])
def test_read_commands_never_create_a_postgres_schema(
    tmp_path: Path, pg_schema_url: tuple[str, str], command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, schema = pg_schema_url
    policy = _policy(tmp_path, url, [])
    assert run(policy, *command) == 2
    assert "no audit store at" in capsys.readouterr().err
    admin = _pg_connect()
    try:
        found = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    finally:
        admin.close()
    assert found is None


def test_an_auditor_role_with_select_only_reads_postgres(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, pg_url, [f"file://{tmp_path / 'w.jsonl'}"])
    _fill(policy)
    schema = pg_url.rsplit("%3D", 1)[1]
    role = f"phiwarden_auditor_{uuid.uuid4().hex[:10]}"
    admin = _pg_connect()
    try:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        info = admin.info
        auditor = _policy(
            tmp_path,
            f"postgresql://{role}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}",
            [f"file://{tmp_path / 'w.jsonl'}"],
        )
        assert run(auditor, "verify", "--jobs", "2") == 0, capsys.readouterr()
        assert run(auditor, "search", "--actor", "dev1@example.org") == 0
        assert run(auditor, "stats") == 0
        capsys.readouterr()
        assert run(auditor, "checkpoint") == 2  # writing needs more than SELECT
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
@pytest.mark.parametrize("live", [False, True], ids=["closed", "writer-open"])
def test_an_auditor_reads_sqlite_in_a_read_only_directory(tmp_path: Path, live: bool) -> None:
    """Read-only file and directory, with and without the WAL files a live writer keeps beside it."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("root ignores permissions and setpriv is not there to drop that")
    # Not under pytest's tmp_path, which is private to its owner.
    root = Path(tempfile.mkdtemp(prefix="phiwarden-ro-"))
    try:
        data = root / "data"
        data.mkdir()
        policy = _policy(root, f"sqlite:///{data / 'audit.db'}", [f"file://{root / 'w.jsonl'}"])
        _fill(policy)
        from phiwarden.policy import load_policy

        writer = AuditLog.open(load_policy(policy).audit) if live else None
        try:
            if writer is not None:
                writer.append(make_event(99))
            before = sorted(p.name for p in data.iterdir())
            for path in data.iterdir():
                path.chmod(0o444)
            data.chmod(0o555)
            command = [sys.executable, "-m", "phiwarden", "audit"]
            # As root, drop the capabilities that bypass file permissions: then they apply.
            prefix = (
                ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
            )
            env = {**os.environ, "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"]}
            for args in (["verify"], ["search", "--actor", "dev1@example.org"], ["stats"]):
                done = subprocess.run(
                    [*prefix, *command, *args, "--policy", str(policy)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                    timeout=120,
                )
                assert done.returncode == 0, done.stdout + done.stderr
            assert sorted(p.name for p in data.iterdir()) == before
        finally:
            data.chmod(0o755)
            if writer is not None:
                for path in data.iterdir():
                    path.chmod(0o644)
                writer.close()
    finally:
        for path in root.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(root)
