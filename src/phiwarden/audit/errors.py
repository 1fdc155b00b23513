"""Errors of the audit trail. Enforcement points treat every `AuditError` as a reason to fail closed."""

from __future__ import annotations


class AuditError(Exception):
    """Base class: the audit trail could not do what was asked."""


class AuditStoreError(AuditError):
    """The store cannot take or give events (unreachable, full, corrupt, locked). Nothing was written."""


class AuditKeyError(AuditError):
    """A signing or HMAC key is missing, unreadable, too widely readable, or not the store's key."""


class AuditConfigError(AuditError):
    """A store URL, witness target, sink or option is not valid."""


class SinkError(AuditError):
    """A SIEM sink or witness did not acknowledge what was sent."""
