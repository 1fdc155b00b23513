"""The policy as typed, immutable settings. `loader.py` builds it from `phiwarden.toml`."""

from __future__ import annotations

from dataclasses import dataclass, field

from phiwarden.detect.registry import Detector
from phiwarden.policy.audit import AuditSettings
from phiwarden.policy.gateway import GatewayPolicy
from phiwarden.policy.repo import RepoSettings

DEFAULT_MIN_CONFIDENCE = 0.6
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_FINGERPRINT_SALT = "phiwarden-default-salt"


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    # Rule ids ("phone.nanp") or whole categories ("ip") that are never reported.
    disabled: frozenset[str] = frozenset()
    # Provider identifiers (NPI, DEA) are not patient PHI; some teams still want them reported.
    report_provider_ids: bool = False
    # Keys the fingerprints of findings; set one per repository so reports cannot be reversed.
    fingerprint_salt: str = DEFAULT_FINGERPRINT_SALT
    detectors: tuple[Detector, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanSettings:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Findings in files matching these globs are not reported (synthetic fixture folders).
    allow_paths: tuple[str, ...] = ()
    baseline: str | None = None


@dataclass(frozen=True, slots=True)
class ClassifySettings:
    restricted_paths: tuple[str, ...] = ()
    internal_paths: tuple[str, ...] = ()
    public_paths: tuple[str, ...] = ()
    # Code symbols (class, table, function names) that make a file PHI-adjacent.
    restricted_symbols: tuple[str, ...] = ()
    # Extra table or model names that hold PHI, added to the built-in list (patients, claims, …).
    phi_tables: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    source: str | None = None
    version: int = 1
    policy_id: str = "default"
    revision: str = "0"
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    repo: RepoSettings = field(default_factory=RepoSettings)
    # The LLM gateway: vendor matrix ([[destination]]), [gateway], [[identity]] and [[group]].
    gateway: GatewayPolicy = field(default_factory=GatewayPolicy)
