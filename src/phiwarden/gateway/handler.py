"""One request through the gateway: read -> authenticate -> parse -> detect -> classify -> decide ->
transform -> audit -> forward -> restore -> audit the outcome. Every failure before forwarding refuses
the request with an error in the API's own format; nothing is forwarded uninspected."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from phiwarden.audit import AuditError
from phiwarden.gateway import connectors, recorded, rewrite
from phiwarden.gateway.auditing import (
    MAX_HASHES,
    RequestFacts,
    counted_refusals_event,
    decision_event,
    outcome_event,
    refusal_event,
)
from phiwarden.gateway.clients import client_tool
from phiwarden.gateway.conversation import (
    Naming,
    ResponseLinks,
    conversation_id,
    item_count,
    prefix_digest,
)
from phiwarden.gateway.decide import Decision, NoDestination, decide
from phiwarden.gateway.errors import GatewayError, Style, error_body
from phiwarden.gateway.files import FileAccess, attach_paths, latest_accesses
from phiwarden.gateway.inspect import Inspection
from phiwarden.gateway.principal import Principal
from phiwarden.gateway.request import ParsedRequest, ShapeError, shown, unencodable
from phiwarden.gateway.restore_body import restore_response
from phiwarden.gateway.runtime import Runtime
from phiwarden.gateway.shapes import parse
from phiwarden.gateway.sse import SseParser, StreamFormatError, StreamRewriter
from phiwarden.gateway.upstream import (
    CredentialMissing,
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from phiwarden.identity.oidc import TokenError, looks_like_jwt
from phiwarden.policy.gateway import Api
from phiwarden.transform.restore import Restorer
from phiwarden.transform.vault import Entry, Vault, VaultError

OVERHEAD_HEADER = "x-phiwarden-overhead-ms"
logger = logging.getLogger("phiwarden.gateway")
_OPERATIONS = {
    ("messages", False): "anthropic.messages.create",
    ("messages", True): "anthropic.messages.count_tokens",
    ("chat_completions", False): "openai.chat.completions.create",
    ("responses", False): "openai.responses.create",
}
# Refusals without a rule of their own, by status (audit rule ids: auditing.REFUSALS).
_RULES = {
    400: "bad-request",
    401: "auth-failed",
    413: "body-too-large",
    415: "unsupported-media-type",
    500: "internal-error",
    503: "store-unavailable",
}


@dataclass(slots=True)
class Context:
    runtime: Runtime
    api: Api
    count_tokens: bool
    style: Style
    started: float = field(default_factory=time.perf_counter)
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    operation: str = ""  # outside the API routes (the model list); else the API's
    model: str = ""  # as requested (the audit trail records `facts.model`, see recorded.py)
    headers: dict[str, str] = field(default_factory=dict)
    client_ip: str | None = None
    principal: Principal | None = None
    facts: RequestFacts | None = None
    inspection: Inspection | None = None
    decision: Decision | None = None
    # What the outcome event records, once the decision event is written.
    applied: str = ""
    destination: Any = None
    upstream_model: str | None = None
    overhead: float | None = None
    attempts: int = 0
    # "new": nothing recorded yet; "decided": the decision event is written, not the outcome;
    # "closed": the request's last event is written (a block, an outcome).
    stage: str = "new"


async def handle(runtime: Runtime, request: Request, api: Api, *, count_tokens: bool = False) -> Response:
    ctx = Context(runtime, api, count_tokens, "anthropic" if api == "messages" else "openai")
    try:
        return await _handle(ctx, request)
    except GatewayError as exc:
        error = exc
    except ClientDisconnect:
        error = GatewayError(
            400, "the client disconnected before sending the whole request", rule="client-disconnected"
        )
    except Exception as exc:  # in the API's format, never a plain-text 500 or a traceback with values
        logger.error("request %s failed: %s at %s", ctx.correlation_id, type(exc).__name__, _origin(exc))
        error = GatewayError(
            500,
            f"phiwarden failed on this request ({type(exc).__name__}); it is recorded in the audit trail "
            f"under request id {ctx.correlation_id}",
            code="internal_error",
            rule="internal-error",
        )
    return await refuse(ctx, error)


async def refuse(ctx: Context, error: GatewayError) -> Response:
    """The answer to a request that ends in `error`, once its event is durable (or failed to be)."""
    await _record_failure(ctx, error)
    return _error(ctx, error)


def _origin(exc: BaseException) -> str:
    """Where an exception was raised (file, line, function): its message may quote the request."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rpartition('/')[2]}:{last.lineno} in {last.name}"


def _error(ctx: Context, exc: GatewayError) -> Response:
    overhead = ctx.overhead if ctx.overhead is not None else (time.perf_counter() - ctx.started) * 1000
    headers = {OVERHEAD_HEADER: f"{overhead:.3f}", "x-phiwarden-request-id": ctx.correlation_id}
    if ctx.decision is not None:
        headers["x-phiwarden-decision"] = _decision_header(ctx.decision, ctx.destination)
    return Response(
        error_body(ctx.style, exc), status_code=exc.status, media_type="application/json", headers=headers
    )


async def _record_failure(ctx: Context, error: GatewayError) -> None:
    """One event for a request that ends in `error`: a refusal before any decision, or the outcome
    of a forwarded one; none when an event already records its end, or when the audit store itself
    failed (its writer logs that). A refusal stands whether or not it could be recorded."""
    if ctx.stage == "closed" or error.code == "audit_unavailable":
        return
    try:
        if ctx.stage == "decided":
            await _failed_outcome(
                ctx, f"failed after the decision: {error.rule or _RULES.get(error.status, 'error')}"
            )
            return
        rule = _refusal_rule(ctx, error)
        if rule == "auth-failed" and not ctx.runtime.refusals.admit():
            return  # counted instead (auditing.RefusalLimiter)
        inspection = ctx.inspection
        event = refusal_event(
            _refusal_facts(ctx),
            rule=rule,
            status_code=error.status,
            latency_ms=_ms(ctx.started),
            tier=inspection.tier if inspection else None,
            counts=inspection.counts if inspection else None,
        )
        await ctx.runtime.writer.write(event)
    except AuditError as exc:
        logger.error("request %s: its refusal could not be audited: %s", ctx.correlation_id, exc)
    except Exception as exc:
        logger.error(
            "request %s: the audit event of its refusal could not be built: %s at %s",
            ctx.correlation_id,
            type(exc).__name__,
            _origin(exc),
        )


def _refusal_rule(ctx: Context, error: GatewayError) -> str:
    if error.rule:
        return error.rule
    if error.code == "model_not_available":
        if error.status == 404:
            return "unknown-model"
        if error.status == 400:
            return "api-mismatch"
        today = dt.date.today()
        expired = any(d.serves(ctx.model) and d.expired(today) for d in ctx.runtime.gateway.destinations)
        return "destination-expired" if expired else "destination-not-permitted"
    return _RULES.get(error.status, "refused")


def _refusal_facts(ctx: Context) -> RequestFacts:
    """The facts of a refused request: as far as it was read (its model as `recorded.py` names it),
    an unauthenticated caller as "anonymous" with the id of the key it presented, if any."""
    runtime = ctx.runtime
    if ctx.facts is not None:
        return ctx.facts
    principal = ctx.principal or Principal(
        id="anonymous", provider="unauthenticated", key_id=_presented_key_id(ctx.headers)
    )
    return RequestFacts(
        correlation_id=ctx.correlation_id,
        principal=principal,
        client_tool=client_tool(ctx.headers),
        session="",
        operation=ctx.operation or _OPERATIONS[(ctx.api, ctx.count_tokens)],
        model=runtime.models.recorded(ctx.model) if ctx.model else "",
        client_ip=ctx.client_ip,
        repository=None,
        policy_id=runtime.policy.policy_id,
        policy_revision=runtime.policy.revision,
    )


def record_counted_refusals(runtime: Runtime) -> None:
    """One event for the unauthenticated refusals the rate limit counted since the last one."""
    count = runtime.refusals.take_count()
    if not count:
        return
    facts = RequestFacts(
        correlation_id=str(uuid.uuid4()),
        principal=Principal(id="anonymous", provider="unauthenticated"),
        client_tool=None,
        session="",
        operation="phiwarden.gateway.refusals",
        model="",
        client_ip=None,
        repository=None,
        policy_id=runtime.policy.policy_id,
        policy_revision=runtime.policy.revision,
    )
    runtime.writer.submit(counted_refusals_event(facts, count, runtime.refusals.interval))


def _presented_key_id(headers: Mapping[str, str]) -> str | None:
    """The public id of a phiwarden key (pwk_<16 hex>_<secret>), never its secret."""
    authorization = headers.get("authorization", "")
    bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    token = headers.get("x-api-key") or bearer
    key_id = token[4:20]
    if token.startswith("pwk_") and token[20:21] == "_" and all(c in "0123456789abcdef" for c in key_id):
        return key_id if len(key_id) == 16 else None
    return None


async def _failed_outcome(ctx: Context, note: str) -> None:
    """The outcome event of a forwarded request that failed in the gateway."""
    facts, decision = ctx.facts, ctx.decision
    if facts is None or decision is None:
        return
    ctx.stage = "closed"
    await ctx.runtime.writer.write(
        outcome_event(
            facts, action=ctx.applied, mode=decision.mode, tier=decision.tier, destination=ctx.destination,
            upstream_model=ctx.upstream_model, status="failure", upstream_status=None, input_tokens=None,
            output_tokens=None, latency_ms=_ms(ctx.started), overhead_ms=ctx.overhead or 0.0,
            attempts=ctx.attempts, note=note,
        )
    )  # fmt: skip


async def authenticate(runtime: Runtime, headers: Mapping[str, str]) -> Principal:
    token = headers.get("x-api-key", "")
    authorization = headers.get("authorization", "")
    if not token and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise GatewayError(
            401,
            "missing credentials: send your phiwarden key (pwk_…) as x-api-key or Authorization: Bearer, "
            "or an OIDC token; `phiwarden keys create` makes a key",
            code="missing_api_key",
        )
    gateway = runtime.gateway
    if token.startswith("pwk_"):
        known, record = runtime.keys.verify_now(token)
        if not known:
            record = await asyncio.to_thread(runtime.keys.verify, token)
        if record is None:
            raise GatewayError(401, "invalid, expired or revoked phiwarden key", code="invalid_api_key")
        configured = gateway.identity(record.identity)
        return Principal(
            id=record.identity,
            kind=record.kind,
            provider="phiwarden-key",
            groups=configured.groups if configured else (),
            key_id=record.key_id,
            destinations=record.destinations,
            tiers=record.tiers,
            repositories=record.repositories,
        )
    if looks_like_jwt(token) and runtime.oidc:
        try:
            claims = await runtime.oidc.verify(token)
        except TokenError as exc:
            raise GatewayError(401, f"OIDC token rejected: {exc}", code="invalid_token") from None
        configured = gateway.identity(claims.subject)
        known_groups = {g.name for g in gateway.groups}
        groups = tuple(
            dict.fromkeys(
                (*(configured.groups if configured else ()), *(g for g in claims.groups if g in known_groups))
            )
        )
        return Principal(
            id=claims.subject,
            kind=configured.kind if configured else "person",
            provider=claims.issuer,
            groups=groups,
        )
    raise GatewayError(
        401,
        "unrecognized credentials: the gateway takes phiwarden keys (pwk_…) or OIDC tokens, never vendor "
        "API keys (the gateway holds those)",
        code="invalid_api_key",
    )


async def read_json(request: Request, limit: int) -> Any:
    """The body's JSON value: valid UTF-8 and JSON, no key twice in one object, every string text."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        # Never the header's value: it is the client's text.
        got = "another content type" if content_type else "no content type"
        raise GatewayError(415, f"the body must be application/json (Content-Type), got {got}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"the request body exceeds the gateway limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"request body exceeds the gateway limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise GatewayError(
            400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise GatewayError(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise GatewayError(400, "malformed JSON: nested too deeply") from None
    # JSON escapes can spell half a UTF-16 pair ("\ud800"), which is no character and cannot leave.
    where = unencodable(body)
    if where is not None:
        raise GatewayError(
            400,
            f"{where}: the text holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair), "
            "which is not a character; send valid Unicode",
            param=where,
        )
    return body


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object; a key given twice is refused (which value would the vendor read?)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {shown(key)!r} appears twice in one object")
            seen.add(key)
    return out


async def _handle(ctx: Context, request: Request) -> Response:
    runtime = ctx.runtime
    settings = runtime.gateway.settings
    headers = ctx.headers = {k.lower(): v for k, v in request.headers.items()}
    ctx.client_ip = request.client.host if request.client else None
    principal = ctx.principal = await authenticate(runtime, headers)
    if runtime.draining:
        raise GatewayError(
            503, "the gateway is shutting down; retry on another replica", rule="shutting-down"
        )
    forwarded = runtime.headers.forwarded(ctx.api, headers)
    body = await read_json(request, settings.max_request_bytes)
    try:
        parsed = parse(ctx.api, body, settings.extra_fields, count_tokens=ctx.count_tokens)
    except ShapeError as exc:
        raise GatewayError(400, f"request refused: {exc}", param=exc.location or None) from None
    ctx.model = parsed.model
    admitted = connectors.admitted(ctx.api, parsed.body, settings.vendor_connectors)
    attach_paths(parsed)
    naming = conversation_id(headers, parsed)
    if naming.previous is not None and runtime.needs_state:
        naming = await _continued(runtime, principal.id, naming)
    conversation = naming.name
    repository, repository_uid = recorded.repository(
        runtime.gateway, headers.get("x-phiwarden-repository"), runtime.writer.log.hash_value
    )
    row = runtime.vaults.keys.row_id(principal.id, conversation)
    # The conversation's pin and vault (from PostgreSQL: in a worker thread, while detection runs).
    loading = _load_state(runtime, row, principal.id, naming, parsed)
    facts = RequestFacts(
        correlation_id=ctx.correlation_id,
        principal=principal,
        client_tool=client_tool(headers),
        session=row[:32],
        operation=parsed.operation,
        model=runtime.models.recorded(parsed.model),
        client_ip=ctx.client_ip,
        repository=repository,
        policy_id=runtime.policy.policy_id,
        policy_revision=runtime.policy.revision,
        repository_uid=repository_uid,
        connectors=admitted,
    )
    ctx.facts = facts
    try:
        found = runtime.inspector.scan(parsed)
    except Exception as exc:  # a detection failure must not let content through
        _discard(loading)
        raise _inspect_failed(exc) from None
    pinned, vault = await _state(loading)
    try:
        inspection = runtime.inspector.judge(
            parsed, found, is_surrogate=vault.is_surrogate if vault else None
        )
    except Exception as exc:
        raise _inspect_failed(exc) from None
    ctx.inspection = inspection
    try:
        decision = decide(
            runtime.gateway,
            principal,
            api=ctx.api,
            model=parsed.model,
            tier=inspection.tier,
            residual_tier=inspection.residual_tier,
            binaries=parsed.binaries,
            counts=inspection.counts,
            pinned=pinned,
            repository=repository if repository_uid is None else None,
            today=dt.date.today(),
        )
    except NoDestination as exc:
        raise GatewayError(exc.status, str(exc), code="model_not_available") from None
    ctx.decision = decision
    files = _files(runtime, parsed)
    hashes = _hashes(runtime, parsed, inspection)
    where = inspection.by_location(parsed.parts)
    if decision.action == "block" and decision.enforced:
        message = _block_message(runtime, decision, where)
        event = decision_event(
            facts, action="block", rule=decision.rule, reason=decision.reason, mode=decision.mode,
            tier=inspection.tier, counts=inspection.counts, value_hashes=hashes, destination=None,
            upstream_model=None, files=files, status="failure", message="request blocked",
            latency_ms=_ms(ctx.started),
        )  # fmt: skip
        await _audit(runtime, event)
        ctx.stage = "closed"
        raise GatewayError(403, message, code="phi_policy_block")
    applied, destination, originals = _apply(runtime, parsed, inspection, decision, vault)
    if destination is None:
        raise GatewayError(500, "no destination resolved; refused")
    ctx.applied, ctx.destination = applied, destination
    # Recorded as the policy names it: a routed request's model is the local destination's.
    ctx.upstream_model = _recorded_model(
        runtime, decision.upstream_model if applied == "route" else None, facts
    )
    # Written beside the decision event: the vault's new entries, the pin of a routed conversation.
    beside: list[Awaitable[None]] = []
    if vault is not None and vault.added:
        beside.append(asyncio.to_thread(runtime.vaults.save, vault))
    if applied == "route" and decision.rule != "conversation-pinned" and runtime.needs_state:
        # A conversation named by its opening is pinned for the requests that repeat this one's items.
        count = item_count(parsed) if naming.by_opening else 0
        beside.append(
            asyncio.to_thread(
                runtime.store.pin_set, row, destination.id, time.time() + settings.pin_ttl_seconds,
                anchor=prefix_digest(parsed, count) if count else "", anchor_items=count,
            )
        )  # fmt: skip
    # Signed thinking means nothing to another model (and its signature nothing to a local server).
    dropped = rewrite.drop_signed_thinking(parsed) if applied == "route" else 0
    message = f"forwarded to {destination.id}" + (
        "" if decision.enforced else f" (monitor: enforce would {decision.action})"
    )
    if dropped:
        message += f"; {dropped} signed thinking block{'s' if dropped > 1 else ''} left out"
    event = decision_event(
        facts,
        action=applied,
        rule=decision.rule if decision.enforced else f"would-{decision.action}:{decision.rule}",
        reason=decision.reason,
        mode=decision.mode,
        tier=inspection.tier,
        counts=inspection.counts,
        value_hashes=hashes,
        destination=destination,
        upstream_model=ctx.upstream_model,
        files=files,
        status="unknown",
        message=message,
    )
    if beside:
        audited, *stored = await asyncio.gather(_audit(runtime, event), *beside, return_exceptions=True)
        if isinstance(audited, BaseException):
            raise audited
        ctx.stage = "decided"
        failed = next((r for r in stored if isinstance(r, BaseException)), None)
        if failed is not None:
            raise GatewayError(
                503,
                f"the pseudonymization vault is unavailable ({type(failed).__name__}); refused",
                rule="store-unavailable",
            )
    else:  # the common case, without gather's tasks and loop turns
        await _audit(runtime, event)
        ctx.stage = "decided"
    upstream_model = decision.upstream_model if applied == "route" else parsed.model
    if applied == "route" and upstream_model:
        parsed.body["model"] = upstream_model
    # Always the body as parsed and inspected, never the bytes as they came: those could hold what the
    # parser dropped (a key given twice).
    payload = parsed.serialize()
    return await _forward(
        ctx,
        headers=forwarded,
        facts=facts,
        decision=decision,
        applied=applied,
        destination=destination,
        upstream_model=ctx.upstream_model,
        payload=payload,
        originals=originals,
        remember=(
            (lambda response_id: _remember(runtime, principal.id, conversation, response_id))
            if ctx.api == "responses" and runtime.needs_state and parsed.body.get("store") is not False
            else None
        ),
    )


def _recorded_model(runtime: Runtime, routed: str | None, facts: RequestFacts) -> str:
    """The model a request goes to, as the audit trail records it."""
    return facts.model if routed is None else runtime.models.recorded(routed)


def _inspect_failed(exc: Exception) -> GatewayError:
    return GatewayError(
        500,
        f"phiwarden could not inspect this request ({type(exc).__name__}); refused",
        rule="inspection-failed",
    )


State = tuple[str | None, Vault]


def _load_state(
    runtime: Runtime, row: str, identity: str, naming: Naming, parsed: ParsedRequest
) -> asyncio.Future[State] | None:
    """Start reading the conversation's pin and vault from the store, fresh on every request (a pin
    another replica set must hold here too); None when no action of the policy needs them."""
    if not runtime.needs_state:
        return None

    def load() -> State:
        pins = runtime.store.pin_get(row, time.time())
        count = item_count(parsed) if naming.by_opening else 0
        pinned = next(
            (
                pin.destination
                for pin in pins
                if not naming.by_opening
                or not pin.anchor
                or (pin.anchor_items <= count and prefix_digest(parsed, pin.anchor_items) == pin.anchor)
            ),
            None,
        )
        return pinned, runtime.vaults.open(identity, naming.name)

    loop = asyncio.get_running_loop()
    if runtime.store.postgres:
        # A network round trip: in a worker thread, submitted now (not on the loop's next turn, since
        # the scan that follows does not yield), so that it overlaps the scan.
        return loop.run_in_executor(None, load)
    # Local SQLite answers two indexed reads in ~25 us, well under a hop to a worker thread (~0.1 ms
    # with its GIL hand-offs, which also slow the scan it would overlap): read here.
    loaded: asyncio.Future[State] = loop.create_future()
    try:
        loaded.set_result(load())
    except Exception as exc:
        loaded.set_exception(exc)
    return loaded


def _discard(loading: asyncio.Future[State] | None) -> None:
    """A load whose answer is no longer needed: its failure, if any, is not an unhandled one."""
    if loading is not None:
        loading.add_done_callback(lambda done: done.cancelled() or done.exception())


async def _continued(runtime: Runtime, identity: str, naming: Naming) -> Naming:
    """The conversation of the response a request continues (`previous_response_id`), if the gateway
    recorded it; else the request's own name for the chain."""
    links = ResponseLinks.of(runtime.vaults)
    previous = naming.previous or ""
    try:
        if runtime.store.postgres:
            found = await asyncio.to_thread(links.conversation, identity, previous)
        else:  # an indexed read of local SQLite: less than a hop to a thread
            found = links.conversation(identity, previous)
    except Exception as exc:
        raise GatewayError(503, f"the gateway store is unavailable ({type(exc).__name__}); refused") from None
    return naming if found is None else Naming(found)


async def _remember(runtime: Runtime, identity: str, conversation: str, response_id: str) -> None:
    """Record which conversation an upstream response belongs to, before the client can name it in
    `previous_response_id`. A failure costs the next turn its surrogates (a new vault), not a value:
    logged, the answer goes out."""
    try:
        links = ResponseLinks.of(runtime.vaults)
        await asyncio.to_thread(links.remember, identity, response_id, conversation)
    except Exception as exc:
        logger.error("the conversation of a response could not be recorded: %s", type(exc).__name__)


async def _state(loading: asyncio.Future[State] | None) -> tuple[str | None, Vault | None]:
    if loading is None:
        return None, None
    try:
        return await loading
    except VaultError as exc:
        raise GatewayError(
            500, f"the pseudonymization vault cannot be read: {exc}; refused", rule="store-unavailable"
        ) from None
    except Exception as exc:
        raise GatewayError(503, f"the gateway store is unavailable ({type(exc).__name__}); refused") from None


def _apply(
    runtime: Runtime, parsed: ParsedRequest, inspection: Inspection, decision: Decision, vault: Vault | None
) -> tuple[str, Any, dict[str, Entry]]:
    """(the action actually applied, the destination, the restore mapping). An answer in a
    conversation with surrogates is restored whatever this request's action (a stateful Responses
    turn carries no values, yet the vendor's answer names the surrogates it holds); a local model
    never saw one."""
    if not decision.enforced:
        # Monitor mode: forwarded as it came, to the destination the model maps to.
        return "allow", decision.requested, {}
    if decision.action == "mask":
        rewrite.mask(parsed, inspection)
        return "mask", decision.destination, rewrite.separate(parsed, vault) if vault else {}
    if decision.action == "allow" and vault is not None:
        return "allow", decision.destination, rewrite.separate(parsed, vault)
    if decision.action == "pseudonymize":
        if vault is None:
            raise GatewayError(500, "pseudonymization needs the vault; refused")
        originals = rewrite.pseudonymize(
            parsed, inspection, vault, sanitize_identifiers=runtime.gateway.settings.sanitize_identifiers
        )
        return "pseudonymize", decision.destination, originals
    return decision.action, decision.destination, {}


async def _audit(runtime: Runtime, event: Any) -> None:
    try:
        await runtime.writer.write(event)
    except AuditError as exc:
        raise GatewayError(
            503,
            f"the audit trail is unavailable, so the request was refused (fail closed): {exc}",
            code="audit_unavailable",
        ) from None


def _files(runtime: Runtime, parsed: ParsedRequest) -> list[FileAccess]:
    """The latest turn's file accesses; paths holding PHI are recorded with the values masked."""
    return [FileAccess(_mask(runtime, a.path), a.operation, a.tool) for a in latest_accesses(parsed)]


def _mask(runtime: Runtime, text: str) -> str:
    """`text` for the audit trail: each value detection finds replaced by its category."""
    for finding in sorted(runtime.inspector.engine.scan(text), key=lambda f: -f.start):
        text = text[: finding.start] + f"[{finding.category.upper()}]" + text[finding.end :]
    return text


def _hashes(runtime: Runtime, parsed: ParsedRequest, inspection: Inspection) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for category, value in inspection.values(parsed.parts)[:MAX_HASHES]:
        out.setdefault(category, []).append(runtime.writer.log.hash_value(value))
    return {k: tuple(v) for k, v in out.items()}


def _block_message(runtime: Runtime, decision: Decision, where: dict[str, Counter[str]]) -> str:
    found = "; ".join(
        f"{location}: "
        + ", ".join(f"{n} {c}" for c, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        for location, counts in list(where.items())[:12]
    )
    more = f" (+{len(where) - 12} more locations)" if len(where) > 12 else ""
    policy = runtime.policy
    return (
        f"phiwarden blocked this request: {decision.reason}. "
        + (f"Found {found}{more}. " if found else "")
        + f"Policy {policy.policy_id} revision {policy.revision}, rule {decision.rule}. "
        + f"What to do: {decision.advice}. "
        "Values are never shown or stored; the audit trail records categories and keyed hashes."
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def _forward(
    ctx: Context,
    *,
    headers: dict[str, str],
    facts: RequestFacts,
    decision: Decision,
    applied: str,
    destination: Any,
    upstream_model: str | None,
    payload: bytes,
    originals: Mapping[str, Entry],
    remember: Callable[[str], Awaitable[None]] | None = None,
) -> Response:
    runtime = ctx.runtime
    overhead = ctx.overhead = (time.perf_counter() - ctx.started) * 1000
    loop = asyncio.get_running_loop()

    def outcome(  # noqa: PLR0917 - a local helper called a dozen times with the same five facts
        status: str,
        upstream_status: int | None,
        usage: tuple[int | None, int | None],
        attempts: int,
        note: str = "",
        extra: float = 0.0,
    ) -> None:
        latency = _ms(ctx.started)
        ctx.stage = "closed"
        # Built on the loop's next turn, once the response is written: nothing waits for this event,
        # and building one costs about as much as the rest of the response.
        loop.call_soon(
            lambda: runtime.writer.submit(
                outcome_event(
                    facts, action=applied, mode=decision.mode, tier=decision.tier,
                    destination=destination, upstream_model=upstream_model, status=status,
                    upstream_status=upstream_status, input_tokens=usage[0], output_tokens=usage[1],
                    latency_ms=latency, overhead_ms=overhead + extra, attempts=attempts, note=note,
                )
            )
        )  # fmt: skip

    if ctx.count_tokens and destination.local:
        # Local servers rarely implement count_tokens: estimate here (nothing leaves the gateway).
        estimate = max(1, len(payload) // 4)
        outcome("success", None, (estimate, None), 0, "estimated locally")
        return Response(
            json.dumps({"input_tokens": estimate}),
            media_type="application/json",
            headers=_headers(ctx, decision, destination, overhead),
        )
    try:
        url = Upstream.url(destination, ctx.api, count_tokens=ctx.count_tokens)
        upstream_headers = Upstream.headers(destination, ctx.api, headers)
    except CredentialMissing as exc:
        outcome("failure", None, (None, None), 0, "no credential")
        raise GatewayError(503, str(exc), code="upstream_credential_missing") from None
    try:
        attempt = await runtime.upstream.send(url, upstream_headers, payload, destination.timeout_seconds)
    except UpstreamTimeout as exc:
        outcome("failure", None, (None, None), exc.attempts, "upstream timeout")
        raise GatewayError(
            504, f"the destination {destination.id!r} did not answer in time; try again"
        ) from None
    except UpstreamError as exc:
        outcome("failure", None, (None, None), exc.attempts, "upstream unreachable")
        raise GatewayError(502, f"the destination {destination.id!r} is unreachable ({exc})") from None
    response = attempt.response
    ctx.attempts = attempt.attempts
    restorer = Restorer.of(originals)
    json_restorer = Restorer.of(originals, json_strings=True)
    is_stream = response.content_type.startswith("text/event-stream")
    if not is_stream:
        try:
            raw = await response.read()
        except UpstreamTimeout:
            outcome("failure", response.status_code, (None, None), attempt.attempts, "upstream read timeout")
            raise GatewayError(
                504, f"the destination {destination.id!r} stopped answering; try again"
            ) from None
        except UpstreamError as exc:
            outcome("failure", response.status_code, (None, None), attempt.attempts, "upstream read failed")
            raise GatewayError(
                502, f"the destination {destination.id!r} broke the connection ({exc})"
            ) from None
        finally:
            response.close()
        started_post = time.perf_counter()
        try:
            data = json.loads(raw)
        except ValueError:
            outcome("failure", response.status_code, (None, None), attempt.attempts, "upstream sent non-JSON")
            raise GatewayError(
                502,
                f"the destination {destination.id!r} answered with HTTP {response.status_code} "
                "and a body that is not JSON",
            ) from None
        usage = _usage(data)
        response_id = data.get("id") if isinstance(data, dict) else None
        if response.status_code == 200 and remember is not None and isinstance(response_id, str):
            await remember(response_id)
        if response.status_code == 200 and restorer:
            data = restore_response(ctx.api, data, restorer, json_restorer)
            raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        extra = (time.perf_counter() - started_post) * 1000
        outcome(
            "success" if response.status_code < 400 else "failure",
            response.status_code,
            usage,
            attempt.attempts,
            extra=extra,
        )
        out_headers = {
            **response.forwarded_headers(),
            **_headers(ctx, decision, destination, overhead + extra),
        }
        out_headers.pop("content-type", None)
        return Response(
            raw, status_code=response.status_code, media_type="application/json", headers=out_headers
        )
    if response.status_code != 200:
        try:
            raw = await response.read()
        except UpstreamError as exc:
            raw = error_body(ctx.style, GatewayError(502, f"the destination broke the connection ({exc})"))
        finally:
            response.close()
        outcome("failure", response.status_code, (None, None), attempt.attempts)
        return Response(
            raw,
            status_code=response.status_code,
            media_type="application/json",
            headers=_headers(ctx, decision, destination, overhead),
        )
    rewriter = StreamRewriter.create(ctx.api, restorer, json_restorer)
    out_headers = {**response.forwarded_headers(), **_headers(ctx, decision, destination, overhead)}
    out_headers.pop("content-type", None)
    out_headers["cache-control"] = "no-cache"
    return RelayResponse(
        _relay(
            ctx,
            response,
            rewriter,
            lambda status, note: outcome(
                status,
                response.status_code,
                (rewriter.usage.input_tokens, rewriter.usage.output_tokens),
                attempt.attempts,
                note,
            ),
            remember,
        ),
        media_type="text/event-stream",
        headers=out_headers,
    )


class RelayResponse(StreamingResponse):
    """A streaming response that always closes its relay, so a client that disconnects mid-stream
    still closes the upstream connection and gets its outcome audited."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


async def _relay(
    ctx: Context,
    response: UpstreamResponse,
    rewriter: StreamRewriter,
    done: Any,
    remember: Callable[[str], Awaitable[None]] | None = None,
) -> AsyncIterator[bytes]:
    parser = SseParser()
    status, note = "failure", "client disconnected"
    # What one upstream read completes goes out in one write: nothing waits for more input, and a
    # burst of events costs the client one chunk, not one per event. When an event of the read is
    # broken, those before it still go out, then the error event.
    out: list[bytes] = []
    error: GatewayError | None = None
    try:
        try:
            async for chunk in response.chunks():
                for event in parser.feed(chunk):
                    out.extend(rewriter.rewrite(event))
                if remember is not None and rewriter.response_id:
                    # Recorded before the client can read the id and continue from it.
                    await remember(rewriter.response_id)
                    remember = None
                if out:
                    yield b"".join(out)
                    out.clear()
            for event in parser.close():
                out.extend(rewriter.rewrite(event))
            if remember is not None and rewriter.response_id:
                await remember(rewriter.response_id)
            if rewriter.done:
                status, note = "success", ""
            else:
                note = "upstream stream ended before its final event"
                error = GatewayError(502, "the destination ended the stream early; the answer is incomplete")
        except StreamFormatError as exc:
            note = "upstream sent broken SSE"
            error = GatewayError(
                502, f"the destination sent a broken stream ({exc}); the answer is incomplete"
            )
        except UpstreamTimeout:
            note = "upstream stream timeout"
            error = GatewayError(504, "the destination stopped streaming; the answer is incomplete")
        except UpstreamError as exc:
            note = "upstream stream failed"
            error = GatewayError(502, f"the destination broke the stream ({exc})")
        except Exception as exc:  # an error event and an outcome, never a stream cut without a word
            note = f"internal error ({type(exc).__name__})"
            logger.error(
                "request %s: relaying failed: %s at %s", ctx.correlation_id, type(exc).__name__, _origin(exc)
            )
            error = GatewayError(
                500,
                f"phiwarden failed while relaying the answer ({type(exc).__name__}); it is incomplete",
                code="internal_error",
            )
        if error is not None:
            out.append(rewriter.error_events(error))
        if out:
            yield b"".join(out)
    finally:
        # Recorded first: under cancellation (client gone) every later await may be interrupted.
        done(status, note)
        response.close()


def _usage(data: Any) -> tuple[int | None, int | None]:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return (
            (data.get("input_tokens"), None)
            if isinstance(data, dict) and isinstance(data.get("input_tokens"), int)
            else (None, None)
        )
    first = usage.get("input_tokens", usage.get("prompt_tokens"))
    second = usage.get("output_tokens", usage.get("completion_tokens"))
    return (first if isinstance(first, int) else None, second if isinstance(second, int) else None)


def _headers(ctx: Context, decision: Decision, destination: Any, overhead_ms: float) -> dict[str, str]:
    return {
        OVERHEAD_HEADER: f"{overhead_ms:.3f}",
        "x-phiwarden-request-id": ctx.correlation_id,
        "x-phiwarden-decision": _decision_header(decision, destination),
    }


def _decision_header(decision: Decision, destination: Any) -> str:
    """What was done: in monitor mode, what enforcement would have done ("would-pseudonymize"), as
    the audit rule says; the request went as it came."""
    target = destination.id if destination is not None else "none"
    action = decision.action if decision.enforced else f"would-{decision.action}"
    return f"{action}; tier={decision.tier}; destination={target}; mode={decision.mode}"
