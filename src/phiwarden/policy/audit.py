"""The `[audit]` section: where the audit trail lives, its keys, witnesses, SIEM sinks and retention.

See `phiwarden.audit`. Relative paths are relative to the policy file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from phiwarden.policy.reader import Table

# Six years: the HIPAA documentation retention rule (45 CFR 164.316(b)(2)).
DEFAULT_RETENTION_DAYS = 6 * 366
DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_INTERVAL = 300
# The truncated form of an oversized event (seq, uid, hash, class, marker) must still fit.
MIN_MESSAGE_BYTES = 2048
SINK_FORMATS = ("jsonl", "ocsf", "cef", "syslog", "hec")
WITNESS_SCHEMES = ("file://", "http://", "https://", "syslog+udp://", "syslog+tcp://", "syslog+tls://")
SINK_SCHEMES = ("file://", "http://", "https://", "syslog+udp://", "syslog+tcp://", "syslog+tls://")
SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5",
    "local6", "local7",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SinkSettings:
    """One SIEM destination for `phiwarden audit forward` (and `export --sink NAME`)."""

    name: str
    url: str
    format: str = "ocsf"
    # Environment variable holding the Splunk HEC token (never the token itself in the policy).
    token_env: str | None = None
    ca_file: str | None = None
    facility: str = "authpriv"
    app_name: str = "phiwarden"
    hostname: str | None = None
    index: str | None = None
    sourcetype: str = "ocsf:api_activity"
    # Splunk HEC indexer acknowledgement: the cursor moves only once Splunk says the events are indexed.
    ack: bool = False
    batch_size: int = 500
    timeout_seconds: float = 10.0
    # Larger events go out in a truncated form that names them (the receiver's own limit, e.g.
    # rsyslog's 8 KB default); UDP sinks never send more than a datagram holds whatever this says.
    max_message_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class AuditSettings:
    store: str | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS
    # Events younger than this stay in the store; older sealed segments go to `archive_dir` on prune.
    online_days: int | None = None
    archive_dir: str | None = None
    legal_hold: bool = False
    record_scans: bool = False
    signing_key: str | None = None
    hmac_key: str | None = None
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    checkpoint_interval_seconds: int = DEFAULT_CHECKPOINT_INTERVAL
    # None: the default local witness file; an empty tuple: no witness at all.
    witnesses: tuple[str, ...] | None = None
    sinks: tuple[SinkSettings, ...] = ()
    base_dir: str | None = field(default=None, compare=False)

    def path(self, value: str) -> Path:
        """`value` as a path, relative to the policy file's directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else Path(self.base_dir) / path


def parse(table: Table) -> AuditSettings:
    table.only(
        ("store", "retention_days", "online_days", "archive_dir", "legal_hold", "record_scans",
         "signing_key", "hmac_key", "checkpoint_every", "checkpoint_interval", "witnesses", "sink")
    )  # fmt: skip
    retention = table.integer("retention_days", DEFAULT_RETENTION_DAYS, minimum=1, maximum=36600)
    online = (
        table.integer("online_days", retention, minimum=1, maximum=36600)
        if table.has("online_days")
        else None
    )
    if online is not None and online > retention:
        raise table.error("online_days", f"cannot exceed retention_days ({retention})")
    archive = table.optional_string("archive_dir")
    if online is not None and online < retention and archive is None:
        raise table.error("online_days", "segments older than online_days need an archive_dir to move to")
    store = table.optional_string("store")
    if store is not None and not store.strip():
        raise table.error("store", "must not be empty")
    witnesses = table.strings("witnesses") if table.has("witnesses") else None
    for index, target in enumerate(witnesses or ()):
        if not target.startswith(WITNESS_SCHEMES):
            raise table.document.error(
                (*table.path, "witnesses", index),
                f"a witness is a URL starting with one of {', '.join(WITNESS_SCHEMES)}, got {target!r}",
            )
    sinks = tuple(_sink(entry) for entry in table.tables("sink"))
    names = [s.name for s in sinks]
    for entry, sink in zip(table.tables("sink"), sinks, strict=True):
        if names.count(sink.name) > 1:
            raise entry.error("name", f"sink name {sink.name!r} is used twice")
    source = table.document.source
    return AuditSettings(
        store=store,
        retention_days=retention,
        online_days=online,
        archive_dir=archive,
        legal_hold=table.boolean("legal_hold", False),
        record_scans=table.boolean("record_scans", False),
        signing_key=table.optional_string("signing_key"),
        hmac_key=table.optional_string("hmac_key"),
        checkpoint_every=table.integer(
            "checkpoint_every", DEFAULT_CHECKPOINT_EVERY, minimum=1, maximum=10**7
        ),
        checkpoint_interval_seconds=table.integer(
            "checkpoint_interval", DEFAULT_CHECKPOINT_INTERVAL, minimum=1, maximum=86400
        ),
        witnesses=witnesses,
        sinks=sinks,
        base_dir=str(Path(source).parent) if source and Path(source).suffix == ".toml" else None,
    )


def _sink(table: Table) -> SinkSettings:
    table.only(
        ("name", "url", "format", "token_env", "ca_file", "facility", "app_name", "hostname", "index",
         "sourcetype", "ack", "batch_size", "timeout", "max_message_bytes")
    )  # fmt: skip
    if not table.has("name") or not table.has("url"):
        raise table.error(
            "name" if not table.has("name") else "url", "every [[audit.sink]] needs name and url"
        )
    url = table.string("url", "")
    if not url.startswith(SINK_SCHEMES):
        raise table.error("url", f"must start with one of {', '.join(SINK_SCHEMES)}, got {url!r}")
    is_http = url.startswith(("http://", "https://"))
    fmt = table.choice("format", "hec" if is_http else "ocsf", SINK_FORMATS)
    if is_http and fmt != "hec":
        raise table.error("format", "an http(s) sink is Splunk HEC: format must be 'hec'")
    if fmt == "hec" and not is_http:
        raise table.error("format", "'hec' needs an http(s):// URL (the HEC endpoint)")
    if url.startswith("syslog+") and fmt not in ("syslog", "ocsf", "cef"):
        raise table.error("format", "a syslog sink carries 'ocsf' or 'cef' messages (or 'syslog' = ocsf)")
    token_env = table.optional_string("token_env")
    if is_http and token_env is None:
        raise table.error("url", "a Splunk HEC sink needs token_env: the variable holding the HEC token")
    return SinkSettings(
        name=table.string("name", ""),
        url=url,
        format=fmt,
        token_env=token_env,
        ca_file=table.optional_string("ca_file"),
        facility=table.choice("facility", "authpriv", SYSLOG_FACILITIES),
        app_name=table.string("app_name", "phiwarden"),
        hostname=table.optional_string("hostname"),
        index=table.optional_string("index"),
        sourcetype=table.string("sourcetype", "ocsf:api_activity"),
        ack=table.boolean("ack", False),
        batch_size=table.integer("batch_size", 500, minimum=1, maximum=100_000),
        timeout_seconds=table.number("timeout", 10.0, minimum=0.1, maximum=600.0),
        max_message_bytes=(
            table.integer("max_message_bytes", 0, minimum=MIN_MESSAGE_BYTES, maximum=1 << 30)
            if table.has("max_message_bytes")
            else None
        ),
    )
