"""Step 5: the audit trail. One event per request, durable BEFORE the upstream call; a second event,
linked by the correlation id, records the outcome (upstream status, tokens, latency).

`AuditWriter` commits in groups: events from concurrent requests that arrive while a commit is on disk
go into the next transaction together, so the gateway pays one fsync per group, not per request, and
each request still waits until its own event is durable. If the store fails, every waiting request
gets the error and is refused (fail closed).

Outcome events, which nobody waits for, linger (up to `LINGER_SECONDS`) to ride along with the next
decision event's commit instead of taking a commit of their own: a commit of its own, started just as
the response left, put its fsync in front of the next request's decision event (on a quiet gateway,
the one event per request that is on the critical path). An outcome is still committed within the
linger time when no request follows, and on shutdown; what a crash can lose is at most that window
of outcome events, never a decision event.

A request refused before a decision (credentials, shape, size, model, scope, an internal error) gets
one event too (`refusal_event`): action block, a rule naming why, never the request's values. Refusals
of unauthenticated requests are rate-limited per process (`RefusalLimiter`): a flood of bad keys is
recorded one by one up to a burst, then as one counted event per interval, so it cannot fill the store.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from phiwarden.audit import (
    Actor,
    AuditError,
    AuditEvent,
    AuditLog,
    Classification,
    Decision,
    Endpoint,
    Resource,
)
from phiwarden.audit.event import Action as AuditAction
from phiwarden.audit.event import Status
from phiwarden.gateway.files import FileAccess
from phiwarden.gateway.principal import Principal
from phiwarden.policy.gateway import Destination, Tier

logger = logging.getLogger("phiwarden.gateway")
MAX_BATCH = 256
MAX_HASHES = 256
LINGER_SECONDS = 0.1
# A failed store is re-checked by /readyz at most this often, each check given this long.
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0

# Why a request was refused before a decision: the rule (recorded as "enforce:<rule>") and its reason.
REFUSALS = {
    "auth-failed": "no valid phiwarden key or OIDC token",
    "auth-failed-counted": "unauthenticated requests beyond the audit rate limit, recorded as a count",
    "bad-request": "not a valid request of its API (JSON, UTF-8, fields or content blocks)",
    "bad-header": "a header the gateway would forward is not in its expected form, or holds PHI",
    "vendor-connector": "the request asks the vendor to fetch data itself (MCP, web fetch, uploaded files), "
    "which [gateway] vendor_connectors does not list",
    "body-too-large": "the body exceeds [gateway] max_request_size",
    "unsupported-media-type": "the body is not application/json",
    "unknown-model": "no approved destination serves the model",
    "api-mismatch": "the destination serving the model does not speak this API",
    "destination-not-permitted": "the caller's groups or key scope do not include the destination",
    "destination-expired": "the destination's vendor review date has passed",
    "shutting-down": "the gateway is shutting down",
    "store-unavailable": "the gateway store or the pseudonymization vault is unavailable",
    "inspection-failed": "detection or classification failed",
    "internal-error": "the gateway failed on this request",
    "client-disconnected": "the client went away before its request was read",
}


@dataclass(slots=True)
class _Job:
    event: AuditEvent
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None


class AuditWriter:
    def __init__(self, log: AuditLog, *, linger: float = LINGER_SECONDS) -> None:
        self.log = log
        self.linger = linger
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="phiwarden-audit", daemon=True)
        self._probe: asyncio.Future[None] | None = None
        self._probed = 0.0
        self.healthy = True
        self._thread.start()

    async def write(self, event: AuditEvent) -> None:
        """Return once `event` is durable; raise `AuditError` otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job(event, future, loop))
        await future

    def submit(self, event: AuditEvent) -> None:
        """Record `event` without waiting (outcome events): committed with the next event that is
        waited for, or within `linger` seconds."""
        self._queue.put(_Job(event, None, None))

    def _run(self) -> None:
        held: list[_Job] = []  # received, not committed yet
        deadline = 0.0  # when the oldest held event stops waiting for company
        stop = False
        while not stop:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()) if held else None)
            except queue.Empty:  # no decision event came to ride along with
                self._commit(held)
                held = []
                continue
            if not held:
                deadline = time.monotonic() + self.linger
            stop = job is None
            if job is not None:
                held.append(job)
                stop = self._take_queued(held)
            waited_for = any(j.future is not None for j in held)
            if held and (stop or waited_for or len(held) >= MAX_BATCH or time.monotonic() >= deadline):
                self._commit(held)
                held = []

    def _take_queued(self, jobs: list[_Job]) -> bool:
        """Add the jobs already queued to `jobs` (up to a batch); True when the stop mark came."""
        while len(jobs) < MAX_BATCH:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return False
            if more is None:
                return True
            jobs.append(more)
        return False

    def _commit(self, jobs: Sequence[_Job]) -> None:
        error: BaseException | None = None
        try:
            self.log.append_batch([j.event for j in jobs])
            self.healthy = True
        except AuditError as exc:
            error, self.healthy = exc, False
        except Exception as exc:  # any store failure is an audit failure: fail closed
            error, self.healthy = AuditError(f"audit store failure: {exc}"), False
        if error is not None:
            logger.error("audit append failed for %d event(s): %s", len(jobs), error)
        for job in jobs:
            if job.future is not None and job.loop is not None:
                job.loop.call_soon_threadsafe(_settle, job.future, error)

    async def ready(self, probe: Callable[[], AuditEvent]) -> bool:
        """Whether the store takes events. Once a commit failed, each call (at most once per
        `PROBE_INTERVAL_SECONDS`) writes the event `probe` makes: a worker with nothing else to write
        does not stay unready once the store is back, and only a write shows that it is (a full disk
        still reads). The event that succeeds marks, in the trail, where this worker's outage ended."""
        if self.healthy:
            return True
        now = time.monotonic()
        if (
            self._probe is not None and not self._probe.done()
        ) or now - self._probed < PROBE_INTERVAL_SECONDS:
            return False
        self._probed = now
        self._probe = asyncio.ensure_future(self.write(probe()))
        self._probe.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            # Shielded: a write that outlives the timeout still completes, and no second probe
            # starts meanwhile.
            await asyncio.wait_for(asyncio.shield(self._probe), PROBE_TIMEOUT_SECONDS)
        except Exception:  # still failing, or too slow to count as working
            return False
        return self.healthy

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self.log.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the audit events of one request share."""

    correlation_id: str
    principal: Principal
    client_tool: str | None
    session: str
    operation: str
    model: str
    client_ip: str | None
    # A repository the policy lists, or "unlisted" with a keyed hash of the name (`recorded.py`).
    repository: str | None
    policy_id: str
    policy_revision: str
    repository_uid: str | None = None
    # Vendor-side connectors the policy admitted: (its `vendor_connectors` entry, where in the body).
    connectors: tuple[tuple[str, str], ...] = ()


def decision_event(
    facts: RequestFacts,
    *,
    action: str,
    rule: str,
    reason: str,
    mode: str,
    tier: Tier,
    counts: Counter[str],
    value_hashes: dict[str, tuple[str, ...]],
    destination: Destination | None,
    upstream_model: str | None,
    files: Sequence[FileAccess],
    status: str,
    message: str,
    latency_ms: int | None = None,
) -> AuditEvent:
    return AuditEvent(
        actor=_actor(facts, upstream_model),
        operation=facts.operation,
        decision=Decision(
            cast(AuditAction, action),
            facts.policy_id,
            facts.policy_revision,
            rule=f"{mode}:{rule}",
            reason=reason,
        ),
        classification=Classification(tier, dict(counts), value_hashes),
        src_endpoint=Endpoint(ip=facts.client_ip),
        dst_endpoint=_endpoint(destination),
        resources=_resources(facts, files),
        status=cast(Status, status),
        latency_ms=latency_ms,
        activity="create",
        correlation_id=facts.correlation_id,
        message=message,
    )


def outcome_event(
    facts: RequestFacts,
    *,
    action: str,
    mode: str,
    tier: Tier,
    destination: Destination | None,
    upstream_model: str | None,
    status: str,
    upstream_status: int | None,
    input_tokens: int | None,
    output_tokens: int | None,
    latency_ms: int,
    overhead_ms: float,
    attempts: int,
    note: str = "",
) -> AuditEvent:
    fields = {
        "outcome": "response",
        "mode": mode,
        "upstream_status": upstream_status,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "overhead_ms": round(overhead_ms, 3),
        "attempts": attempts,
    }
    message = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    return AuditEvent(
        actor=_actor(facts, upstream_model),
        operation=facts.operation,
        decision=Decision(
            cast(AuditAction, action), facts.policy_id, facts.policy_revision, rule=f"{mode}:outcome"
        ),
        classification=Classification(tier),
        src_endpoint=Endpoint(ip=facts.client_ip),
        dst_endpoint=_endpoint(destination),
        status=cast(Status, status),
        latency_ms=latency_ms,
        activity="create",
        correlation_id=facts.correlation_id,
        message=f"{message} {note}".strip(),
    )


def refusal_event(
    facts: RequestFacts,
    *,
    rule: str,
    status_code: int,
    latency_ms: int,
    tier: Tier | None = None,
    counts: Counter[str] | None = None,
    value_hashes: dict[str, tuple[str, ...]] | None = None,
) -> AuditEvent:
    """A request refused before any decision: `rule` is one of `REFUSALS`. `tier` and the counts are
    given when the content was inspected before the refusal (an unknown model); otherwise the event
    says so, with tier public and no categories (nothing was read, nothing was sent)."""
    inspected = tier is not None
    return AuditEvent(
        actor=_actor(facts, None),
        operation=facts.operation,
        decision=Decision(
            "block", facts.policy_id, facts.policy_revision, rule=f"enforce:{rule}", reason=REFUSALS[rule]
        ),
        classification=Classification(tier or "public", dict(counts or {}), value_hashes or {}),
        src_endpoint=Endpoint(ip=facts.client_ip),
        resources=_resources(facts, ()),
        status="failure",
        latency_ms=latency_ms,
        activity="create",
        correlation_id=facts.correlation_id,
        message=f"refused with HTTP {status_code}"
        + ("" if inspected else " before its content was inspected"),
    )


def counted_refusals_event(facts: RequestFacts, count: int, seconds: float) -> AuditEvent:
    """The unauthenticated refusals the rate limit did not record one by one, as one event."""
    return AuditEvent(
        actor=_actor(facts, None),
        operation=facts.operation,
        decision=Decision(
            "block",
            facts.policy_id,
            facts.policy_revision,
            rule="enforce:auth-failed-counted",
            reason=REFUSALS["auth-failed-counted"],
        ),
        classification=Classification("public"),
        status="failure",
        activity="create",
        correlation_id=facts.correlation_id,
        message=f"{count} more unauthenticated requests refused with HTTP 401 in the last {seconds:.0f} s",
    )


def probe_event(policy_id: str, policy_revision: str) -> AuditEvent:
    """Written by /readyz on a worker whose last commit failed: when it succeeds, the store is back."""
    return AuditEvent(
        actor=Actor(user_id="phiwarden-gateway"),
        operation="phiwarden.gateway.readiness",
        decision=Decision("allow", policy_id, policy_revision, rule="audit-store-probe"),
        classification=Classification("public"),
        activity="other",
        message="the audit store takes events again on this worker after a failed write",
    )


class RefusalLimiter:
    """A token bucket, per process, for the refusals of unauthenticated requests: recorded one by one
    while they come at most `rate` per second (bursts of up to `burst`); beyond that only counted,
    the count recorded every `interval` seconds (`take_count`). Authenticated refusals are never
    limited: their caller is known and its key can be revoked."""

    def __init__(self, *, burst: int = 30, rate: float = 0.5, interval: float = 60.0) -> None:
        self.burst = burst
        self.rate = rate
        self.interval = interval
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._counted = 0

    def admit(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self._counted += 1
        return False

    def take_count(self) -> int:
        count, self._counted = self._counted, 0
        return count


def _actor(facts: RequestFacts, upstream_model: str | None) -> Actor:
    principal = facts.principal
    return Actor(
        user_id=principal.id,
        identity_provider=principal.provider,
        session_id=facts.session,
        client_tool=facts.client_tool,
        agent=principal.id if principal.kind == "agent" else None,
        model=upstream_model or facts.model,
    )


def _endpoint(destination: Destination | None) -> Endpoint | None:
    if destination is None:
        return None
    host = destination.base_url.split("://", 1)[-1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    return Endpoint(
        hostname=hostname or None,
        port=int(port) if port.isdigit() else None,
        name=destination.id,
        service=destination.provider or None,
    )


def _resources(facts: RequestFacts, files: Sequence[FileAccess]) -> tuple[Resource, ...]:
    out = [Resource(type=f"file.{f.operation}", name=f.path, uid=f.tool) for f in files]
    if facts.repository:
        out.append(Resource(type="repository", name=facts.repository, uid=facts.repository_uid))
    out.extend(Resource(type="vendor_connector", name=entry, uid=where) for entry, where in facts.connectors)
    if facts.principal.key_id:
        out.append(Resource(type="api_key", uid=facts.principal.key_id))
    return tuple(out)
