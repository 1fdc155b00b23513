"""Fixtures of the gateway tests: a fake provider and real gateways, both uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phiwarden.audit import AuditEvent
from phiwarden.audit.store import Query
from phiwarden.gateway.app import create_app
from phiwarden.gateway.runtime import Runtime
from phiwarden.policy import load_policy
from tests.gateway.fake_upstream import FakeProvider, create_fake
from tests.gateway.servers import ServerThread

ANTHROPIC_ENV = "PHIWARDEN_TEST_ANTHROPIC_KEY"
OPENAI_ENV = "PHIWARDEN_TEST_OPENAI_KEY"
VENDOR_SECRET = "sk-vendor-secret-never-shown-0123456789"

# Values the detector finds in these prompts; none may reach a cloud destination unchanged.
PATIENT_NOTE = (
    "Patient: Maria Garcia\nDOB: 1984-07-12\nSSN: 478-22-9134\nMRN: MRN-00482913\n"
    "Email: jsmith61@gmail.com\nPlease draft a discharge summary."
)
PLANTED = ("Maria Garcia", "1984-07-12", "478-22-9134", "MRN-00482913", "jsmith61@gmail.com")
HL7_PID = "PID|1||00482913^^^HOSP^MR||SMITH^JOHN^A||19610304|M|||14 ELM ST^^BOSTON^MA^02118"
AWS_SECRET = "AWS_SECRET_ACCESS_KEY=Zx8kP2mQ9vR4tL7wN1bC5dF3gH6jK0sA2eY8uI4o"


def policy_text(
    upstream: str,
    *,
    restricted: str = "pseudonymize",
    internal: str = "pseudonymize",
    extra: str = "",
    gateway_extra: str = "",
    store: str = "data/gateway.db",
) -> str:
    return f"""
policy_id = "test-health"
revision = "7"

[audit]
store = "data/audit.db"
witnesses = []
hmac_key = "keys/audit-hmac.key"
signing_key = "keys/audit-signing.key"

[gateway]
route_to = "local-llm"
upstream_timeout = 2
connect_timeout = 2
retries = 1
max_request_size = "4MiB"
vault_key = "keys/vault.key"
key_secret = "keys/key-secret.key"
store = "{store}"
{gateway_extra}

[gateway.actions]
public = "allow"
internal = "{internal}"
restricted = "{restricted}"

[[destination]]
id = "anthropic-baa"
provider = "anthropic"
base_url = "{upstream}/anthropic"
models = ["claude-test-sonnet", "claude-*"]
baa = true
zero_data_retention = true
trains_on_prompts = false
region = "us"
review_by = 2099-01-01
tiers = ["public", "internal"]
content = ["images"]
api_key_env = "{ANTHROPIC_ENV}"

[[destination]]
id = "openai-baa"
provider = "openai"
base_url = "{upstream}/openai/v1"
models = ["gpt-5", "gpt-*", "o4-*"]
baa = true
zero_data_retention = true
trains_on_prompts = false
review_by = 2099-01-01
tiers = ["public", "internal"]
api_key_env = "{OPENAI_ENV}"

[[destination]]
id = "no-baa-cloud"
provider = "openai"
base_url = "{upstream}/nobaa"
models = ["cheap-*"]
baa = false
tiers = ["public"]
api_key_env = "{OPENAI_ENV}"

[[destination]]
id = "expired-vendor"
provider = "openai"
base_url = "{upstream}/expired"
models = ["old-*"]
baa = true
review_by = 2020-01-01
tiers = ["public", "internal"]
api_key_env = "{OPENAI_ENV}"

[[destination]]
id = "local-llm"
provider = "vllm"
apis = ["messages", "chat_completions", "responses"]
base_url = "{upstream}/local"
local = true
model = "llama-local"
models = ["llama-*"]
tiers = ["public", "internal", "restricted"]

[[identity]]
id = "ana@example.org"
groups = ["clinical-eng"]

[[identity]]
id = "rollout@example.org"
groups = ["pilot"]

[[group]]
name = "clinical-eng"

[[group]]
name = "pilot"
mode = "monitor"
{extra}
"""


@dataclass
class Gateway:
    server: ServerThread
    runtime: Runtime
    provider: FakeProvider
    key: str
    root: Path

    @property
    def url(self) -> str:
        return self.server.url

    def new_key(self, identity: str = "ana@example.org", **kwargs: Any) -> str:
        key, _ = self.runtime.keys.create(identity, **kwargs)
        return key

    def events(self) -> list[AuditEvent]:
        store = self.runtime.writer.log.store
        return [AuditEvent.from_ocsf(json.loads(r.record)["event"]) for r in store.search(Query())]

    def settled_events(self, timeout: float = 5.0) -> list[AuditEvent]:
        """The events so far, once every forwarded request has its outcome event.

        The outcome lands just after the client has its response, so a test that counts events
        from here on must not start while an earlier request's outcome is still on its way.
        """
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            per_request = Counter(e.correlation_id for e in events)
            waiting = any(e.status == "unknown" and per_request[e.correlation_id] < 2 for e in events)
            if not waiting or time.monotonic() > deadline:
                return events
            time.sleep(0.02)

    def wait_events(self, count: int, timeout: float = 5.0) -> list[AuditEvent]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.02)


@pytest.fixture(scope="session")
def provider() -> Iterator[tuple[FakeProvider, ServerThread]]:
    fake = FakeProvider()
    server = ServerThread(create_fake(fake)).start()
    yield fake, server
    server.stop()


def _isolate(root: Path, mp: pytest.MonkeyPatch) -> None:
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        mp.setenv(name, str(root / name.lower()))
    for name in list(os.environ):
        if name.startswith(("PHIWARDEN_AUDIT_", "PHIWARDEN_VAULT", "PHIWARDEN_GATEWAY")):
            mp.delenv(name)
    mp.setenv(ANTHROPIC_ENV, VENDOR_SECRET)
    mp.setenv(OPENAI_ENV, VENDOR_SECRET)


@pytest.fixture(scope="module")
def make_gateway(
    tmp_path_factory: pytest.TempPathFactory, provider: tuple[FakeProvider, ServerThread]
) -> Iterator[Any]:
    fake, upstream = provider
    started: list[Gateway] = []
    mp = pytest.MonkeyPatch()

    def make(**kwargs: Any) -> Gateway:
        root = tmp_path_factory.mktemp("gw")
        _isolate(root, mp)
        (root / "phiwarden.toml").write_text(policy_text(upstream.url, **kwargs))
        policy = load_policy(root / "phiwarden.toml")
        runtime = Runtime.build(policy)
        server = ServerThread(create_app(runtime)).start()
        key, _ = runtime.keys.create("ana@example.org", label="tests")
        gateway = Gateway(server, runtime, fake, key, root)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.server.stop()
    mp.undo()


@pytest.fixture(scope="module")
def gateway(make_gateway: Any) -> Gateway:
    """Restricted content pseudonymized (values replaced, restored in answers)."""
    gw: Gateway = make_gateway()
    return gw


@pytest.fixture(autouse=True)
def _reset(provider: tuple[FakeProvider, ServerThread]) -> None:
    provider[0].reset()


PG_BASE = os.environ.get("PHIWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test database for a gateway store shared by replicas, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_BASE}: {exc}")
    schema = f"phiwarden_gw_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    info = admin.info
    try:
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
