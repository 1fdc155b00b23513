"""Witnesses: places outside the store where signed checkpoints are published.

Whoever can write the database can delete its newest rows, or rewrite it whole and drop the stored
checkpoints they cannot re-sign; a checkpoint kept elsewhere exposes both. Targets:

- `file:///path` — an append-only JSON-lines file, ideally on other storage (WORM bucket mount, NFS
  share of another team). Readable by `verify`.
- `http(s)://…` — POST of each signed checkpoint as JSON; `verify` GETs the same URL and accepts a
  JSON list, one object or JSON lines of signed checkpoints.
- `syslog+udp|tcp|tls://host:port` — an RFC 5424 message (MSGID CHECKPOINT) to the SIEM. Write-only:
  give `verify --checkpoint FILE` a checkpoint taken from the SIEM.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from phiwarden.audit.canonical import canonical_json
from phiwarden.audit.checkpoint import SignedCheckpoint, StatementError, parse_checkpoint
from phiwarden.audit.errors import AuditConfigError, SinkError
from phiwarden.audit.export import Envelope, rfc5424
from phiwarden.audit.sinks import FileTransport, SyslogTransport

HTTP_TIMEOUT = 10.0


@dataclass(slots=True)
class WitnessRead:
    checkpoints: list[SignedCheckpoint] = field(default_factory=list)
    # Lines or entries that could not be read (a torn last line after a crash, foreign data).
    unreadable: int = 0
    # The witness file does not exist (deleted, moved, or its storage is not mounted).
    missing: bool = False


class Witness(Protocol):
    target: str

    @property
    def readable(self) -> bool: ...

    def publish(self, checkpoint: SignedCheckpoint) -> None: ...

    def read(self) -> WitnessRead: ...


class FileWitness:
    readable = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.target = f"file://{path.as_posix()}"

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        # One write() of one line with O_APPEND: concurrent writers never interleave within a line.
        FileTransport(str(self.path)).send([checkpoint.to_line().encode("utf-8")])

    def read(self) -> WitnessRead:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            # Not an error to read around: verification decides whether the log should be there.
            return WitnessRead(missing=True)
        except OSError as exc:
            raise SinkError(f"cannot read the witness {self.path}: {exc.strerror or exc}") from None
        return _parse_lines(text.splitlines())


class HttpWitness:
    readable = True

    def __init__(self, url: str) -> None:
        self.target = url

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        request = urllib.request.Request(
            self.target,
            data=canonical_json(checkpoint.to_json()),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise SinkError(f"witness {self.target}: {getattr(exc, 'reason', exc)}") from None

    def read(self) -> WitnessRead:
        try:
            with urllib.request.urlopen(self.target, timeout=HTTP_TIMEOUT) as response:
                text = response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise SinkError(f"cannot read the witness {self.target}: {getattr(exc, 'reason', exc)}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return _parse_lines(text.splitlines())
        out = WitnessRead()
        for item in data if isinstance(data, list) else [data]:
            try:
                out.checkpoints.append(parse_checkpoint(item))
            except StatementError:
                out.unreadable += 1
        return out


class SyslogWitness:
    readable = False

    def __init__(self, url: str) -> None:
        self.target = url
        self._transport = SyslogTransport(url)

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        statement = checkpoint.statement
        message = rfc5424(
            facility="authpriv",
            severity=5,
            timestamp_ms=statement.time_ms,
            hostname=Envelope().host(),
            app_name="phiwarden",
            msgid="CHECKPOINT",
            structured={
                "phiwarden@32473": {"tree_size": str(statement.tree_size), "root": statement.root_hash.hex()}
            },
            message=checkpoint.to_line(),
        )
        try:
            self._transport.send([message])
        finally:
            self._transport.close()

    def read(self) -> WitnessRead:
        raise SinkError(f"witness {self.target} is write-only; pass the checkpoint with --checkpoint FILE")


def open_witness(target: str, *, base_dir: Path | None = None) -> Witness:
    if target.startswith("file://"):
        parts = urlsplit(target)
        path = Path(
            unquote(parts.netloc + parts.path)
            if parts.netloc not in ("", "localhost")
            else unquote(parts.path)
        )
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return FileWitness(path)
    if target.startswith(("http://", "https://")):
        return HttpWitness(target)
    if target.startswith("syslog+"):
        return SyslogWitness(target)
    raise AuditConfigError(f"unknown witness target {target!r} (file://, http(s)://, syslog+udp|tcp|tls://)")


def _parse_lines(lines: list[str]) -> WitnessRead:
    out = WitnessRead()
    for line in lines:
        if not line.strip():
            continue
        try:
            out.checkpoints.append(parse_checkpoint(line))
        except StatementError:
            out.unreadable += 1
    return out
