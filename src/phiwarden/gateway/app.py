"""The ASGI application: the API routes, model listing, health and readiness.

    POST /v1/messages, /v1/messages/count_tokens     Anthropic (Claude Code, Anthropic SDKs)
    POST /v1/chat/completions, /v1/responses         OpenAI (Cursor, Continue, aider, Codex, SDKs)
    GET  /v1/models, /v1/models/{id}                 in the Anthropic or OpenAI shape
    GET  /healthz (process up), /readyz (audit trail and store reachable)

Any other path is a 404 in the caller's API format: there is no generic proxying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from phiwarden.gateway.decide import allowed_destinations
from phiwarden.gateway.errors import GatewayError, Style, error_body
from phiwarden.gateway.handler import authenticate, handle
from phiwarden.gateway.runtime import Runtime

POLICY_ENV = "PHIWARDEN_GATEWAY_POLICY"
PURGE_EVERY_SECONDS = 600.0


def _style(request: Request) -> Style:
    headers = request.headers
    if (
        "anthropic-version" in headers
        or "x-api-key" in headers
        or request.url.path.startswith("/v1/messages")
    ):
        return "anthropic"
    return "openai"


def _error(request: Request, error: GatewayError) -> Response:
    return Response(
        error_body(_style(request), error), status_code=error.status, media_type="application/json"
    )


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
        try:
            principal = await authenticate(runtime, {k.lower(): v for k, v in request.headers.items()})
        except GatewayError as exc:
            return _error(request, exc)
        allowed = allowed_destinations(runtime.gateway, principal)
        today = runtime.today
        names: dict[str, str] = {}
        for destination in runtime.gateway.destinations:
            if not destination.apis or destination.expired(today):
                continue
            if allowed is not None and destination.id not in allowed:
                continue
            for model in destination.models:
                if not any(ch in model for ch in "*?["):
                    names.setdefault(model, destination.id)
        wanted = request.path_params.get("model_id")
        if wanted is not None:
            if wanted not in names:
                return _error(request, GatewayError(404, f"model {wanted!r} is not offered by this gateway"))
            return JSONResponse(_model(_style(request), wanted, names[wanted]))
        data = [_model(_style(request), name, owner) for name, owner in names.items()]
        if _style(request) == "anthropic":
            return JSONResponse(
                {
                    "data": data,
                    "has_more": False,
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
        if not runtime.writer.healthy:
            problems.append("audit store failing")
        try:
            await asyncio.to_thread(runtime.store.pin_get, "readyz", time.time())
        except Exception as exc:
            problems.append(f"gateway store: {type(exc).__name__}")
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def not_found(request: Request) -> Response:
        return _error(
            request,
            GatewayError(404, f"no route {request.method} {request.url.path} on the phiwarden gateway"),
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purge = asyncio.create_task(_purge(runtime))
        try:
            yield
        finally:
            runtime.draining = True
            purge.cancel()
            if own_runtime:
                await runtime.close()

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        # Clients configured with a base URL that lacks /v1 (some OpenAI-compatible settings).
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/responses", responses, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(
            "/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        ),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


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


def app_from_environment() -> Starlette:
    """The uvicorn factory of each worker process: the policy file named by $PHIWARDEN_GATEWAY_POLICY."""
    from pathlib import Path

    from phiwarden.policy import load_policy

    path = os.environ.get(POLICY_ENV)
    policy = load_policy(Path(path) if path else None)
    return create_app(Runtime.build(policy))


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
