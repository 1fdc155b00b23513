"""The policy file, `phiwarden.toml`: what is detected, scanned, classified, allowed and audited."""

from phiwarden.policy.audit import AuditSettings
from phiwarden.policy.loader import (
    POLICY_FILE,
    PolicyNotFound,
    find_policy,
    load_policy,
    parse_policy,
    require_policy,
)
from phiwarden.policy.model import (
    ClassifySettings,
    DetectionSettings,
    Policy,
    ScanSettings,
)
from phiwarden.policy.reader import PolicyError

__all__ = [
    "POLICY_FILE",
    "AuditSettings",
    "ClassifySettings",
    "DetectionSettings",
    "Policy",
    "PolicyError",
    "PolicyNotFound",
    "ScanSettings",
    "find_policy",
    "load_policy",
    "parse_policy",
    "require_policy",
]
