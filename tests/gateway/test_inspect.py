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


def test_surrogates_are_not_phi_only_in_text_the_gateway_cannot_rewrite() -> None:
    """Clients see restored answers only: a surrogate they send is a real value, except in signed
    thinking, which they send back as the vendor wrote it."""
    inspector = Inspector(Policy())
    given = {"Maria Garcia", "478-22-9134"}  # as if the gateway had given these earlier
    request = _request()
    judged = inspector.judge(request, inspector.scan(request), is_surrogate=given.__contains__)
    assert {"ssn", "name"} <= set(judged.counts)
    thinking = {"type": "thinking", "thinking": NOTE, "signature": "c2lnbmF0dXJlIG9mIHRoZSB2ZW5kb3I="}
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "Write it."},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "Done."}]},
            {"role": "user", "content": "Shorter."},
        ],
    }
    signed = parse("messages", body, (), count_tokens=False)
    judged = inspector.judge(signed, inspector.scan(signed), is_surrogate=given.__contains__)
    assert "ssn" not in judged.counts and "name" not in judged.counts
    assert judged.tier != "restricted" or "signed thinking" not in " ".join(judged.reasons)
    unknown = inspector.judge(signed, inspector.scan(signed), is_surrogate=set().__contains__)
    assert unknown.residual_tier == "restricted"  # real values in signed text stay restricted
