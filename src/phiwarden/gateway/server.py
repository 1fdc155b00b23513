"""Running the gateway: uvicorn with graceful shutdown (in-flight streams finish first)."""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn

from phiwarden.gateway.app import POLICY_ENV


def serve(
    policy_path: Path | None,
    *,
    host: str,
    port: int,
    workers: int,
    graceful_timeout: float,
    log_level: str = "info",
    max_body: int | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let in-flight requests and streams finish
    (up to `graceful_timeout` seconds) and close the audit trail."""
    if policy_path is not None:
        os.environ[POLICY_ENV] = str(policy_path.resolve())
    uvicorn.run(
        "phiwarden.gateway.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        timeout_graceful_shutdown=int(graceful_timeout) if graceful_timeout else None,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        h11_max_incomplete_event_size=max_body,
    )
