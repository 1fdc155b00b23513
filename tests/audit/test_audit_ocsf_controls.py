"""The security_control mapping: every action's disposition conforms to its action_id, as OCSF 1.x
documents them, and exports carry the matching captions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phiwarden.audit.event import Decision, enrich

from .conftest import make_event

# OCSF 1.x: dispositions that conform to action_id 1 Allowed, and to 2 Denied.
ALLOWED = {1: "Allowed", 7: "Custom Action", 8: "Approved", 11: "Corrected", 14: "Delayed", 16: "No Action"}
DENIED = {2: "Blocked", 3: "Quarantined", 6: "Dropped", 25: "Rejected"}


@pytest.mark.parametrize(
    ("action", "action_caption", "disposition_caption"),
    [
        ("allow", "Allowed", "Allowed"),
        ("mask", "Allowed", "Corrected"),
        ("pseudonymize", "Allowed", "Corrected"),
        ("route", "Allowed", "Custom Action"),
        ("hold", "Allowed", "Delayed"),
        ("block", "Denied", "Blocked"),
    ],
)
def test_each_action_maps_to_a_conforming_disposition(
    action: str, action_caption: str, disposition_caption: str
) -> None:
    event = make_event(0)
    event = replace(event, decision=Decision(action, "acme", "7"))  # type: ignore[arg-type]
    exported = enrich(event.to_ocsf(sequence=1))
    conforming = ALLOWED if exported["action_id"] == 1 else DENIED
    assert exported["disposition_id"] in conforming
    assert exported["action"] == action_caption
    assert exported["disposition"] == disposition_caption == conforming[exported["disposition_id"]]
