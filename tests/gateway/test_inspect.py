"""The gateway's inspection in its two steps: `scan` (detection, which needs nothing of the
conversation and so runs while its state loads) and `judge` (surrogates dropped, then classified)."""

from __future__ import annotations

from phiwarden.gateway.inspect import Inspector
from phiwarden.gateway.request import ParsedRequest
from phiwarden.gateway.shapes import parse
from phiwarden.policy.model import Policy

NOTE = "Write to patient Maria Garcia; her social 478-22-9134 is on file."


def _request() -> ParsedRequest:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": NOTE}]}
    return parse("messages", body, (), count_tokens=False)


def test_judge_of_scan_is_inspect() -> None:
    inspector = Inspector(Policy())
    request = _request()
    found = inspector.scan(request)
    judged = inspector.judge(request, found)
    whole = inspector.inspect(request)
    assert judged.hits == whole.hits and judged.counts == whole.counts
    assert (
        (judged.tier, judged.residual_tier) == (whole.tier, whole.residual_tier) == ("restricted", "public")
    )
    assert {"name", "ssn"} <= set(judged.counts)


def test_surrogates_of_the_conversation_are_not_phi() -> None:
    inspector = Inspector(Policy())
    request = _request()
    given = {"Maria Garcia", "478-22-9134"}  # as if the gateway had given these earlier
    judged = inspector.judge(request, inspector.scan(request), is_surrogate=given.__contains__)
    assert "ssn" not in judged.counts and "name" not in judged.counts
