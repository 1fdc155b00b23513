"""Read, validate and find `phiwarden.toml`.

Each section has one parser here; a key that no parser knows is an error with its line, so a typo
(`min_confidense`) is caught instead of silently ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from phiwarden.detect.registry import CATEGORIES, DetectorError, builtin_detectors, detector_from_data
from phiwarden.policy import audit, gateway, repo
from phiwarden.policy.locate import key_lines
from phiwarden.policy.model import (
    DEFAULT_FINGERPRINT_SALT,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MIN_CONFIDENCE,
    ClassifySettings,
    DetectionSettings,
    Policy,
    ScanSettings,
)
from phiwarden.policy.reader import Document, PolicyError, Table

POLICY_FILE = "phiwarden.toml"
SUPPORTED_VERSIONS = (1,)


class PolicyNotFound(PolicyError):
    """No policy file where a command that needs one looked (the message says where)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.args = (message,)  # no file and line to name


def find_policy(start: Path) -> Path | None:
    """The policy of the repository holding `start`: the nearest `phiwarden.toml` up to the git root."""
    for directory in policy_directories(start):
        candidate = directory / POLICY_FILE
        if candidate.is_file():
            return candidate
    return None


def policy_directories(start: Path) -> list[Path]:
    """Where `find_policy` looks, nearest first: `start` and its parents up to the git root."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    out = []
    for directory in (here, *here.parents):
        out.append(directory)
        if (directory / ".git").exists():
            break
    return out


def require_policy(given: str | None, start: Path) -> Path:
    """The policy file of a command that cannot run on the defaults (its keys and stores are named
    there): `given`, else the one `find_policy` finds from `start`; PolicyError saying where it looked."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise PolicyNotFound(f"no policy file {given}")
        return path
    found = find_policy(start)
    if found is None:
        looked = policy_directories(start)
        where = ", ".join(str(d) for d in looked[:4]) + (f", … {looked[-1]}" if len(looked) > 4 else "")
        raise PolicyNotFound(f"no {POLICY_FILE} found (looked in {where}); pass --policy FILE")
    return found


def load_policy(path: Path | None) -> Policy:
    """The policy in `path`, or the defaults when `path` is None."""
    if path is None:
        return Policy()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy file: {exc}", source=str(path)) from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = POLICY_FILE) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, _, where = str(exc).partition(" (at line ")
        line = int(where.split(",")[0]) if where[:1].isdigit() else None
        raise PolicyError(f"not valid TOML: {message}", source=source, line=line) from None
    document = Document(data, key_lines(text), source)
    root = document.root()
    root.only(
        ("version", "policy_id", "revision", "detection", "detector", "scan", "classify", "audit", "repo",
         "destination", "gateway", "identity", "group")
    )  # fmt: skip
    version = root.integer("version", 1)
    if version not in SUPPORTED_VERSIONS:
        raise root.error(
            "version", f"this phiwarden reads policy version {SUPPORTED_VERSIONS[-1]}, got {version}"
        )
    return Policy(
        source=source,
        version=version,
        policy_id=root.string("policy_id", "default"),
        revision=root.string("revision", "0"),
        detection=_detection(root),
        scan=_scan(root.table("scan")),
        classify=_classify(root.table("classify")),
        audit=audit.parse(root.table("audit")),
        repo=repo.parse(root.table("repo")),
        gateway=gateway.parse(root),
    )


def _detection(root: Table) -> DetectionSettings:
    table = root.table("detection")
    table.only(("min_confidence", "disable", "report_provider_ids", "fingerprint_salt"))
    builtin, macros = builtin_detectors()
    known_rules = {d.id for d in builtin}
    custom = []
    for index, entry in enumerate(root.tables("detector")):
        try:
            detector = detector_from_data(entry.data, index=index, macros=macros, source=root.document.source)
        except DetectorError as exc:
            raise entry.error(exc.field, str(exc)) from None
        if detector.id in known_rules:
            raise entry.error("id", f"{detector.id!r} is already a detector id; pick another")
        known_rules.add(detector.id)
        custom.append(detector)
    disabled = table.strings("disable")
    for index, name in enumerate(disabled):
        if name not in known_rules and name not in CATEGORIES:
            raise table.document.error(
                (*table.path, "disable", index), f"{name!r} is neither a detector id nor a category"
            )
    return DetectionSettings(
        min_confidence=table.number("min_confidence", DEFAULT_MIN_CONFIDENCE, minimum=0.0, maximum=1.0),
        disabled=frozenset(disabled),
        report_provider_ids=table.boolean("report_provider_ids", False),
        fingerprint_salt=table.string("fingerprint_salt", DEFAULT_FINGERPRINT_SALT),
        detectors=tuple(custom),
    )


def _scan(table: Table) -> ScanSettings:
    table.only(("include", "exclude", "respect_gitignore", "max_file_size", "allow_paths", "baseline"))
    return ScanSettings(
        include=table.strings("include"),
        exclude=table.strings("exclude"),
        respect_gitignore=table.boolean("respect_gitignore", True),
        max_file_bytes=table.size("max_file_size", DEFAULT_MAX_FILE_BYTES),
        allow_paths=table.strings("allow_paths"),
        baseline=table.optional_string("baseline"),
    )


def _classify(table: Table) -> ClassifySettings:
    table.only(("restricted_paths", "internal_paths", "public_paths", "restricted_symbols", "phi_tables"))
    return ClassifySettings(
        restricted_paths=table.strings("restricted_paths"),
        internal_paths=table.strings("internal_paths"),
        public_paths=table.strings("public_paths"),
        restricted_symbols=table.strings("restricted_symbols"),
        phi_tables=table.strings("phi_tables"),
    )
