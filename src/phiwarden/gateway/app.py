"""The ASGI application: the API routes, model listing, health and readiness.

    POST /v1/messages, /v1/messages/count_tokens     Anthropic (Claude Code, Anthropic SDKs)
    POST /v1/chat/completions, /v1/responses         OpenAI (Cursor, Continue, aider, Codex, SDKs)
    GET  /v1/models, /v1/models/{id}                 in the Anthropic or OpenAI shape
    GET  /healthz (process up), /readyz (audit trail and store reachable, credentials set)

Any other path is a 404, and another method on one of these paths a 405 (with `Allow`), in the
caller's API format: there is no generic proxying. Every answer carries `x-phiwarden-request-id` and
`x-phiwarden-overhead-ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from phiwarden.gateway.auditing import probe_event
from phiwarden.gateway.decide import allowed_destinations, shown_model
from phiwarden.gateway.errors import GatewayError, Style, error_body
from phiwarden.gateway.handler import (
    OVERHEAD_HEADER,
    Context,
    authenticate,
    handle,
    record_counted_refusals,
    refuse,
)
from phiwarden.gateway.preflight import credential_problems
from phiwarden.gateway.principal import Principal
from phiwarden.gateway.runtime import Runtime
from phiwarden.policy.gateway import Api, Destination

POLICY_ENV = "PHIWARDEN_GATEWAY_POLICY"
PURGE_EVERY_SECONDS = 600.0
logger = logging.getLogger("phiwarden.gateway")
# The APIs of each shape: a model list in the Anthropic shape names only models of destinations that
# speak the Messages API, one in the OpenAI shape those of destinations that speak OpenAI's.
_FAMILIES: dict[Style, frozenset[Api]] = {
    "anthropic": frozenset({"messages"}),
    "openai": frozenset({"chat_completions", "responses"}),
}
Endpoint = Callable[[Request], Awaitable[Response]]
_SERVED = (
    "POST /v1/messages, /v1/messages/count_tokens, /v1/chat/completions and /v1/responses, "
    "GET /v1/models, /healthz and /readyz"
)


def _style(request: Request) -> Style:
    headers = request.headers
    if (
        "anthropic-version" in headers
        or "x-api-key" in headers
        or request.url.path.startswith("/v1/messages")
    ):
        return "anthropic"
    return "openai"


def _error(request: Request, error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(_style(request), error),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


def _answered(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose every answer carries the request id and the gateway's time, and whose
    failures are errors in the caller's API format (never a plain-text 500 or a traceback)."""

    async def answer(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await endpoint(request)
        except Exception as exc:
            logger.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
            response = _error(
                request, GatewayError(500, f"phiwarden failed on this request ({type(exc).__name__})")
            )
        if "x-phiwarden-request-id" not in response.headers:
            response.headers["x-phiwarden-request-id"] = str(uuid.uuid4())
            response.headers[OVERHEAD_HEADER] = f"{(time.perf_counter() - started) * 1000:.3f}"
        return response

    return answer


def create_app(runtime: Runtime, *, own_runtime: bool = True) -> Starlette:
    async def messages(request: Request) -> Response:
        return await handle(runtime, request, "messages")

    async def count_tokens(request: Request) -> Response:
        return await handle(runtime, request, "messages", count_tokens=True)

    async def chat(request: Request) -> Response:
        return await handle(runtime, request, "chat_completions")

    async def responses(request: Request) -> Response:
        return await handle(runtime, request, "responses")

    async def models(request: Request) -> Response:
        style = _style(request)
        ctx = Context(
            runtime,
            "messages" if style == "anthropic" else "chat_completions",
            False,
            style,
            operation=f"{style}.models.list",
            headers={k.lower(): v for k, v in request.headers.items()},
            client_ip=request.client.host if request.client else None,
        )
        try:
            principal = await authenticate(runtime, ctx.headers)
        except GatewayError as exc:
            return await refuse(ctx, exc)
        names = _offered(runtime, principal, style)
        wanted = request.path_params.get("model_id")
        if wanted is not None:
            if wanted not in names:
                owner = _serving(runtime, principal, style, wanted)
                if owner is None:
                    shown = shown_model(runtime.gateway, wanted)
                    return _error(request, GatewayError(404, f"{shown} is not offered by this gateway"))
                names = {wanted: owner}
            return JSONResponse(_model(style, wanted, names[wanted]))
        data = [_model(style, name, owner) for name, owner in names.items()]
        if style == "anthropic":
            try:
                data, more = _page(data, request.query_params)
            except GatewayError as exc:
                return _error(request, exc)
            return JSONResponse(
                {
                    "data": data,
                    "has_more": more,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        return JSONResponse({"object": "list", "data": data})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems = []
        if runtime.draining:
            problems.append("shutting down")
        policy = runtime.policy
        if not await runtime.writer.ready(lambda: probe_event(policy.policy_id, policy.revision)):
            problems.append("audit store failing")
        store = await runtime.store_problem()
        if store:
            problems.append(store)
        # A destination without its credential fails every request for its models.
        problems.extend(credential_problems(runtime.gateway, dt.date.today()))
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def not_found(request: Request) -> Response:
        allowed = sorted(
            {
                method
                for route in routes
                if isinstance(route, Route) and route.endpoint is not not_found_endpoint
                and route.matches(request.scope)[0] == Match.PARTIAL
                for method in route.methods or ()
            }
        )  # fmt: skip
        # The path is the client's text: never repeated (the method is one of the routes' few).
        if allowed:
            return _error(
                request,
                GatewayError(405, f"{request.method} is not allowed on this path; use {', '.join(allowed)}"),
                headers={"allow": ", ".join(allowed)},
            )
        return _error(
            request,
            GatewayError(
                404,
                f"the phiwarden gateway has no such route; it serves {_SERVED} (any other path is a 404)",
            ),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_purge(runtime)), asyncio.create_task(_count_refusals(runtime))]
        try:
            yield
        finally:
            runtime.draining = True
            for task in tasks:
                task.cancel()
            record_counted_refusals(runtime)
            if own_runtime:
                await runtime.close()

    not_found_endpoint = _answered(not_found)
    routes = [
        Route("/v1/messages", _answered(messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", _answered(count_tokens), methods=["POST"]),
        Route("/v1/chat/completions", _answered(chat), methods=["POST"]),
        Route("/v1/responses", _answered(responses), methods=["POST"]),
        # Clients configured with a base URL that lacks /v1 (some OpenAI-compatible settings).
        Route("/chat/completions", _answered(chat), methods=["POST"]),
        Route("/responses", _answered(responses), methods=["POST"]),
        Route("/v1/models", _answered(models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _answered(models), methods=["GET"]),
        Route("/models", _answered(models), methods=["GET"]),
        Route("/healthz", _answered(healthz), methods=["GET"]),
        Route("/readyz", _answered(readyz), methods=["GET"]),
        Route(
            "/{path:path}",
            not_found_endpoint,
            methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"],
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


def _permitted(runtime: Runtime, principal: Principal, style: Style) -> list[Destination]:
    """The destinations the caller may use that speak the APIs of `style`, in policy order."""
    allowed = allowed_destinations(runtime.gateway, principal)
    today = dt.date.today()
    return [
        d
        for d in runtime.gateway.destinations
        if _FAMILIES[style] & set(d.apis) and not d.expired(today) and (allowed is None or d.id in allowed)
    ]


def _offered(runtime: Runtime, principal: Principal, style: Style) -> dict[str, str]:
    """Model -> the destination serving it. Globs (`claude-*`) cannot be listed: a destination
    named only by globs is listed by its `model` (the name sent when a request is routed there)
    when its globs take it, else not at all."""
    names: dict[str, str] = {}
    for destination in _permitted(runtime, principal, style):
        listed = [m for m in destination.models if not any(ch in m for ch in "*?[")]
        if not listed and destination.model and destination.serves(destination.model):
            listed = [destination.model]
        for model in listed:
            names.setdefault(model, destination.id)
    return names


def _serving(runtime: Runtime, principal: Principal, style: Style, model: str) -> str | None:
    """The destination serving `model` (globs included) for a caller, or None."""
    return next((d.id for d in _permitted(runtime, principal, style) if d.serves(model)), None)


def _model(style: Style, name: str, owner: str) -> dict[str, Any]:
    if style == "anthropic":
        return {"type": "model", "id": name, "display_name": name, "created_at": "2024-01-01T00:00:00Z"}
    return {"id": name, "object": "model", "created": 1704067200, "owned_by": owner}


async def _purge(runtime: Runtime) -> None:
    """Drop expired vault rows and pins now and then (their contents are gone once expired)."""
    while True:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(runtime.store.vault_purge, time.time())
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def _count_refusals(runtime: Runtime) -> None:
    """Record, once per interval, the unauthenticated refusals the audit rate limit only counted."""
    while True:
        await asyncio.sleep(runtime.refusals.interval)
        record_counted_refusals(runtime)


def app_from_environment() -> Starlette:
    """The uvicorn factory of each worker process: the policy file named by $PHIWARDEN_GATEWAY_POLICY."""
    from pathlib import Path

    from phiwarden.policy import load_policy

    path = os.environ.get(POLICY_ENV)
    policy = load_policy(Path(path) if path else None)
    return create_app(Runtime.build(policy))


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _page(data: list[dict[str, Any]], query: Mapping[str, str]) -> tuple[list[dict[str, Any]], bool]:
    """One page of Anthropic's model list: `limit` (1-1000, default 20) models after `after_id` or
    before `before_id`, and whether more lie beyond it."""
    text = query.get("limit", "20")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise GatewayError(400, "limit: expected an integer from 1 to 1000")
    limit = int(text)
    ids = [model["id"] for model in data]
    for name in ("after_id", "before_id"):
        if name in query and query[name] not in ids:
            raise GatewayError(400, f"{name}: no such model in this list")
    if "before_id" in query:
        end = ids.index(query["before_id"])
        start = max(0, end - limit)
        return data[start:end], start > 0
    start = ids.index(query["after_id"]) + 1 if "after_id" in query else 0
    return data[start : start + limit], start + limit < len(data)
