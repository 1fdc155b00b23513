"""`phiwarden gateway` as a real process: start-up, health, and a graceful shutdown that lets an
in-flight stream finish."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.gateway.conftest import ANTHROPIC_ENV, OPENAI_ENV, VENDOR_SECRET, policy_text
from tests.gateway.fake_upstream import FakeProvider
from tests.gateway.servers import ServerThread


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gateway_process_drains_streams_on_sigterm(
    tmp_path: Path, provider: tuple[FakeProvider, ServerThread]
) -> None:
    fake, upstream = provider
    port = _port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PHIWARDEN_AUDIT_", "PHIWARDEN_VAULT", "PHIWARDEN_GATEWAY"))
    }
    env.update(
        {
            name: str(tmp_path / name.lower())
            for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
        }
    )
    env.update({ANTHROPIC_ENV: VENDOR_SECRET, OPENAI_ENV: VENDOR_SECRET})
    policy = tmp_path / "phiwarden.toml"
    policy.write_text(
        policy_text(upstream.url, gateway_extra=f'listen = "127.0.0.1:{port}"\ngraceful_timeout = 20')
    )
    cli = [sys.executable, "-m", "phiwarden"]
    check = subprocess.run(
        [*cli, "gateway", "--policy", str(policy), "--check"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    # 1: the test policy's expired-vendor is disabled by its review date.
    assert check.returncode == 1, check.stderr
    assert "disabled by their review date: expired-vendor" in check.stdout
    key = subprocess.run(
        [*cli, "keys", "--policy", str(policy), "create", "ana@example.org"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    server = subprocess.Popen([*cli, "gateway", "--policy", str(policy), "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "gateway did not become ready"
            time.sleep(0.1)
        fake.mode = "slow_chunks"
        client = anthropic.Anthropic(api_key=key, base_url=f"http://127.0.0.1:{port}", max_retries=0)
        text: list[str] = []

        def stop_soon() -> None:
            time.sleep(0.3)
            server.send_signal(signal.SIGTERM)

        stopper = threading.Thread(target=stop_soon)
        with client.messages.stream(
            model="claude-test-sonnet",
            max_tokens=50,
            messages=[{"role": "user", "content": "a long answer please " * 3}],
        ) as stream:
            stopper.start()
            text.extend(stream.text_stream)
        stopper.join()
        assert "".join(text) == "You said: " + "a long answer please " * 3
        # uvicorn re-raises the signal once shut down cleanly, so the exit status is SIGTERM's.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            pytest.fail("the gateway did not exit after SIGTERM")
