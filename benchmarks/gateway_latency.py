"""Latency and throughput the gateway adds, against a fake provider on 127.0.0.1.

    .venv/bin/python -m benchmarks.gateway_latency [--quick] [--audit-dir DIR]

Three processes: a fake provider (uvicorn, answers at once), the gateway (`phiwarden gateway`, real
policy, detection on, audit trail written before every call), and this client, which speaks raw
HTTP/1.1 with keep-alive so that its own cost stays small. Each measurement is taken twice in the
same run, once through the gateway and once straight to the provider; the difference is what the
gateway adds. Prompts are source code and prose without PHI (the `allow` path, detection and
classification fully run) plus one 16 KB prompt with values that are pseudonymized and restored.

The audit store is on disk by default (every decision event is fsynced before the upstream call);
`--audit-dir /dev/shm/...` isolates the gateway's CPU cost from the disk's fsync latency.

The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import compile_bytecode, emit

HOST = "127.0.0.1"
SIZES = {"1KB": 1024, "16KB": 16 * 1024, "128KB": 128 * 1024}


_WORDS = (
    "def total(lines): return sum(line.amount for line in lines)\n",
    "class InvoiceBuilder:\n    def __init__(self, currency: str) -> None:\n"
    "        self.currency = currency\n",
    "The retry loop backs off exponentially; cap the delay at thirty seconds.\n",
    "    for index, item in enumerate(items):\n        if item.skip:\n            continue\n",
    "SELECT id, amount, created_at FROM invoices WHERE status = 'open' ORDER BY created_at;\n",
    "// Render the chart only after the data has loaded to avoid a flash of empty state.\n",
    "const config = { timeout: 3000, retries: 2, endpoint: '/api/v2/orders' };\n",
    "Why does this test fail intermittently on CI but never locally?\n",
)
_PHI = (
    "Write a follow-up letter to patient Maria Garcia, born 1984-07-12, reachable at jsmith61@gmail.com; "
    "her social 478-22-9134 is on file.\n"
)


def prompt(size: int, *, phi: bool = False, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = [_PHI] if phi else []
    length = sum(len(p) for p in out)
    while length < size:
        piece = rng.choice(_WORDS).replace("amount", rng.choice(("amount", "total", "price", "qty")))
        out.append(piece)
        length += len(piece)
    return "".join(out)[:size]


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: the benchmark measures the servers, not an HTTP library."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def post(
        self, path: str, body: bytes, headers: dict[str, str], *, first_token: bool = False
    ) -> tuple[int, float, float, dict[str, str]]:
        """(status, seconds to the full answer, seconds to the first content delta, headers)."""
        assert self.reader is not None and self.writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        started = time.perf_counter()
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        got: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            got[name.strip().lower()] = value.strip()
        first = 0.0
        if "content-length" in got:
            await self.reader.readexactly(int(got["content-length"]))
        else:  # chunked (streams)
            buffer = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                buffer += await self.reader.readexactly(size)
                await self.reader.readline()
                if first_token and not first and b"content_block_delta" in buffer:
                    first = time.perf_counter() - started
        return status, time.perf_counter() - started, first, got

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def servers(root: Path, audit_dir: Path, workers: int) -> Iterator[tuple[int, int, str]]:
    env = {**os.environ}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[name] = str(root / name.lower())
    env["BENCH_VENDOR_KEY"] = "sk-bench"
    fake_port, gateway_port = _free_port(), _free_port()
    policy = root / "phiwarden.toml"
    policy.write_text(
        f"""
policy_id = "bench"
[audit]
store = "{audit_dir / "audit.db"}"
witnesses = []
checkpoint_every = 100000
[gateway]
listen = "{HOST}:{gateway_port}"
workers = {workers}
route_to = "local"
[gateway.actions]
public = "allow"
internal = "pseudonymize"
restricted = "pseudonymize"
[[destination]]
id = "vendor"
provider = "anthropic"
base_url = "http://{HOST}:{fake_port}"
models = ["claude-bench"]
baa = true
zero_data_retention = true
trains_on_prompts = false
tiers = ["public", "internal"]
api_key_env = "BENCH_VENDOR_KEY"
[[destination]]
id = "local"
provider = "vllm"
apis = ["messages"]
base_url = "http://{HOST}:{fake_port}/local"
models = ["local-*"]
tiers = ["public", "internal", "restricted"]
"""
    )
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("gateway_fake_provider.py")), str(fake_port)],
        cwd=root, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    key = subprocess.run(
        [sys.executable, "-m", "phiwarden", "keys", "--policy", str(policy), "create", "bench@example.org"],
        env=env, capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    gateway = subprocess.Popen(
        [sys.executable, "-m", "phiwarden", "gateway", "--policy", str(policy), "--log-level", "warning"],
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait(fake_port, fake, "fake provider")
        _wait(gateway_port, gateway, "gateway")
        yield fake_port, gateway_port, key
    finally:
        for process in (gateway, fake):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _body(text: str, *, stream: bool = False) -> bytes:
    return json.dumps(
        {
            "model": "claude-bench",
            "max_tokens": 256,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        }
    ).encode()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(
    port: int, path: str, headers: dict[str, str], bodies: list[bytes], *, first_token: bool = False
) -> dict[str, Any]:
    client = RawClient(port)
    await client.connect()
    totals, firsts, overheads = [], [], []
    for warm in bodies[:20]:
        await client.post(path, warm, headers, first_token=first_token)
    for body in bodies:
        status, total, first, got = await client.post(path, body, headers, first_token=first_token)
        if status != 200:
            raise RuntimeError(f"HTTP {status} from {path}")
        totals.append(total * 1000)
        firsts.append(first * 1000)
        if "x-phiwarden-overhead-ms" in got:
            overheads.append(float(got["x-phiwarden-overhead-ms"]))
    await client.close()
    out = {"p50_ms": _pct(totals, 0.5), "p99_ms": _pct(totals, 0.99), "n": len(totals)}
    if first_token:
        out.update(first_p50_ms=_pct(firsts, 0.5), first_p99_ms=_pct(firsts, 0.99))
    if overheads:
        out.update(header_p50_ms=_pct(overheads, 0.5), header_p99_ms=_pct(overheads, 0.99))
    return out


async def throughput(
    port: int, path: str, headers: dict[str, str], body: bytes, *, clients: int, seconds: float, limit: int
) -> dict[str, Any]:
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        client = RawClient(port)
        await client.connect()
        while time.perf_counter() < stop and done < limit:
            status, _, _, _ = await client.post(path, body, headers)
            done += 1
            errors += status != 200
        await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": done,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "requests_per_s": round(done / elapsed, 1),
    }


def _diff(gateway: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    return {
        "added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 3),
        "added_p99_ms": round(gateway["p99_ms"] - direct["p99_ms"], 3),
        "gateway_p50_ms": round(gateway["p50_ms"], 3),
        "gateway_p99_ms": round(gateway["p99_ms"], 3),
        "direct_p50_ms": round(direct["p50_ms"], 3),
        "direct_p99_ms": round(direct["p99_ms"], 3),
        "self_reported_overhead_p50_ms": round(gateway.get("header_p50_ms", 0.0), 3),
        "self_reported_overhead_p99_ms": round(gateway.get("header_p99_ms", 0.0), 3),
    }


async def measure(fake_port: int, gateway_port: int, key: str, quick: bool) -> dict[str, Any]:
    auth = {"x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01"}
    plain = {"content-type": "application/json"}
    count = {"1KB": 100, "16KB": 100, "128KB": 40} if quick else {"1KB": 500, "16KB": 500, "128KB": 200}
    out: dict[str, Any] = {"latency": {}}
    for label, size in SIZES.items():
        bodies = [_body(prompt(size, seed=i)) for i in range(count[label] + 20)]
        gw = await latency(gateway_port, "/v1/messages", auth, bodies)
        direct = await latency(fake_port, "/v1/messages", plain, bodies)
        out["latency"][label] = _diff(gw, direct)
    phi = [_body(prompt(SIZES["16KB"], phi=True, seed=i)) for i in range(count["16KB"] // 2 + 20)]
    gw = await latency(gateway_port, "/v1/messages", auth, phi)
    direct = await latency(fake_port, "/v1/messages", plain, phi)
    out["latency"]["16KB_pseudonymized"] = _diff(gw, direct)
    streams = [_body(prompt(SIZES["16KB"], seed=i), stream=True) for i in range(count["16KB"] // 2 + 20)]
    gw = await latency(gateway_port, "/v1/messages", auth, streams, first_token=True)
    direct = await latency(fake_port, "/v1/messages", plain, streams, first_token=True)
    out["first_token_16KB"] = {
        "added_p50_ms": round(gw["first_p50_ms"] - direct["first_p50_ms"], 3),
        "added_p99_ms": round(gw["first_p99_ms"] - direct["first_p99_ms"], 3),
        "gateway_p50_ms": round(gw["first_p50_ms"], 3),
        "direct_p50_ms": round(direct["first_p50_ms"], 3),
    }
    body = _body(prompt(SIZES["16KB"], seed=1))
    seconds, limit = (4.0, 3000) if quick else (10.0, 20000)
    out["throughput_16KB_32_clients"] = {
        "gateway": await throughput(
            gateway_port, "/v1/messages", auth, body, clients=32, seconds=seconds, limit=limit
        ),
        "direct": await throughput(
            fake_port, "/v1/messages", plain, body, clients=32, seconds=seconds, limit=limit
        ),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--audit-dir", type=Path, help="where the audit store goes (default: a temporary directory on disk)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gateway worker processes (default 2: one per core)"
    )
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="phiwarden-gw-bench-") as tmp:
        root = Path(tmp)
        audit_dir = args.audit_dir or root / "audit"
        audit_dir.mkdir(parents=True, exist_ok=True)
        with servers(root, audit_dir, args.workers) as (fake_port, gateway_port, key):
            figures = asyncio.run(measure(fake_port, gateway_port, key, args.quick))
    figures["setup"] = {
        "cores": os.cpu_count(),
        "gateway_workers": args.workers,
        "audit_store": "given directory" if args.audit_dir else "temporary directory on disk",
        "python": sys.version.split()[0],
    }
    for label, row in figures["latency"].items():
        own = f"{row['self_reported_overhead_p50_ms']:.2f}/{row['self_reported_overhead_p99_ms']:.2f}"
        print(
            f"{label:>20}: +{row['added_p50_ms']:.2f} ms p50, +{row['added_p99_ms']:.2f} ms p99 "
            f"(self-reported {own} ms)"
        )
    ft = figures["first_token_16KB"]
    print(f"{'first token 16KB':>20}: +{ft['added_p50_ms']:.2f} ms p50, +{ft['added_p99_ms']:.2f} ms p99")
    tp = figures["throughput_16KB_32_clients"]
    print(f"{'throughput 16KB':>20}: {tp['gateway']['requests_per_s']} req/s through the gateway, "
          f"{tp['direct']['requests_per_s']} req/s direct")  # fmt: skip
    emit(figures)


if __name__ == "__main__":
    main()
