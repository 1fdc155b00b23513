"""`phiwarden scan` runs as audit events, when the policy says `[audit] record_scans = true`."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from phiwarden.audit.event import Actor, AuditEvent, Classification, Decision, Endpoint, Resource, Tier
from phiwarden.audit.log import AuditLog
from phiwarden.policy.model import Policy

# (variable naming the CI, identity provider label, actor variable, run id variable)
_CI = (
    ("GITHUB_ACTIONS", "github-actions", "GITHUB_ACTOR", "GITHUB_RUN_ID"),
    ("GITLAB_CI", "gitlab-ci", "GITLAB_USER_LOGIN", "CI_PIPELINE_ID"),
    ("BUILDKITE", "buildkite", "BUILDKITE_BUILD_CREATOR_EMAIL", "BUILDKITE_BUILD_ID"),
    ("CIRCLECI", "circleci", "CIRCLE_USERNAME", "CIRCLE_WORKFLOW_ID"),
)


def record_scan_run(policy: Policy, report_summary: Mapping[str, Any]) -> None:
    """Append one event for a scan run (no-op unless `[audit] record_scans`). Raises `AuditError`.

    `report_summary` is `phiwarden.report.summary.summarize(report)`; an optional "root" key names
    what was scanned.
    """
    if not policy.audit.record_scans:
        return
    with AuditLog.open(policy.audit) as log:
        log.append(scan_event(policy, report_summary))


def scan_event(policy: Policy, summary: Mapping[str, Any]) -> AuditEvent:
    provider, user, run_id = _identity()
    findings = int(summary.get("findings", 0))
    tiers: Mapping[str, int] = summary.get("tiers", {})
    tier: Tier = (
        "restricted" if tiers.get("restricted") else "internal" if tiers.get("internal") else "public"
    )
    root = str(summary.get("root") or Path.cwd().name)
    seconds = summary.get("seconds")
    return AuditEvent(
        actor=Actor(
            user_id=user, identity_provider=provider, session_id=run_id, client_tool="phiwarden scan"
        ),
        operation="phiwarden.scan",
        activity="read",
        decision=Decision(
            action="block" if findings else "allow",
            policy_id=policy.policy_id,
            policy_version=policy.revision,
            rule="scan.findings",
            reason=f"{findings} finding(s) in {int(summary.get('files_with_findings', 0))} of "
            f"{int(summary.get('files_scanned', 0))} file(s)",
        ),
        classification=Classification(
            tier=tier, categories={str(k): int(v) for k, v in dict(summary.get("by_category", {})).items()}
        ),
        src_endpoint=Endpoint(hostname=socket.gethostname() or None),
        resources=(Resource(type="repository", name=root),),
        latency_ms=int(float(seconds) * 1000) if isinstance(seconds, int | float) else None,
        correlation_id=run_id,
    )


def _identity() -> tuple[str | None, str, str | None]:
    for flag, provider, actor, run in _CI:
        if os.environ.get(flag):
            return provider, os.environ.get(actor) or "ci", os.environ.get(run)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return "local", user, None
