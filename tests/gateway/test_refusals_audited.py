"""Every refused request leaves one audit event under the request id it was answered with (action
block, a rule naming why, never a value); unexpected failures are 500s in the API's own format; every
answer carries the gateway's headers; a wrong method is a 405."""

from __future__ import annotations

import json
import logging
from typing import Any

import anthropic
import httpx
import openai
import pytest

from phiwarden.audit import AuditError, AuditEvent
from phiwarden.audit.store import Query
from phiwarden.gateway import handler
from phiwarden.gateway.auditing import RefusalLimiter
from phiwarden.gateway.request import ParsedRequest
from tests.gateway.conftest import Gateway

MESSAGE = {
    "model": "claude-test-sonnet",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hello"}],
}
CHAT = {"model": "gpt-5", "messages": [{"role": "user", "content": "hello"}]}
PHI = "Patient: Marisol Okonkwo\nSSN: 518-42-7731\nMRN: MRN-40981723\nPlease summarize."
RAW_VALUES = ("Marisol Okonkwo", "Okonkwo", "518-42-7731", "MRN-40981723", "40981723")
SECRET = "Q" * 43


@pytest.fixture(scope="module")
def gw(make_gateway: Any) -> Gateway:
    gateway: Gateway = make_gateway()
    return gateway


def _send(
    gw: Gateway,
    path: str,
    *,
    body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> httpx.Response:
    base = {"x-api-key": gw.key, "content-type": "application/json"}
    if body is not None:
        content = json.dumps(body).encode()
    return httpx.request(
        method, gw.url + path, content=content, headers={**base, **(headers or {})}, timeout=20
    )


def _records(gw: Gateway, cid: str) -> list[tuple[AuditEvent, bytes]]:
    out = []
    for record in gw.runtime.writer.log.store.search(Query()):
        event = AuditEvent.from_ocsf(json.loads(record.record)["event"])
        if event.correlation_id == cid:
            out.append((event, bytes(record.record)))
    return out


def _refusal(gw: Gateway, response: httpx.Response) -> AuditEvent:
    """The one event of a refused request (written before the answer), checked for values."""
    cid = response.headers["x-phiwarden-request-id"]
    [(event, raw)] = _records(gw, cid)
    for value in (*RAW_VALUES, SECRET):
        assert value.encode() not in raw, f"{value!r} stored in the audit record"
    assert event.decision.action == "block" and event.status == "failure"
    assert event.decision.rule is not None and event.decision.rule.startswith("enforce:")
    assert float(response.headers["x-phiwarden-overhead-ms"]) >= 0
    return event


@pytest.mark.parametrize(
    ("headers", "key_id"),
    [
        ({"x-api-key": ""}, None),
        ({"x-api-key": "pwk_0123456789abcdef_" + SECRET}, "0123456789abcdef"),
        ({"x-api-key": "", "authorization": "bearer pwk_0123456789abcdef_" + SECRET}, "0123456789abcdef"),
        ({"x-api-key": "sk-ant-real-vendor-key"}, None),
        ({"x-api-key": "", "authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."}, None),
    ],
)
def test_authentication_failures_record_the_key_id_never_the_secret(
    gw: Gateway, headers: dict[str, str], key_id: str | None
) -> None:
    response = _send(
        gw, "/v1/messages", body={**MESSAGE, "messages": [{"role": "user", "content": PHI}]}, headers=headers
    )
    assert response.status_code == 401
    event = _refusal(gw, response)
    assert event.decision.rule == "enforce:auth-failed"
    assert event.actor.user_id == "anonymous"
    assert [r.uid for r in event.resources if r.type == "api_key"] == ([key_id] if key_id else [])
    assert "before its content was inspected" in (event.message or "")
    assert event.classification.categories == {}


def test_the_model_list_refusal_is_audited_too(gw: Gateway) -> None:
    response = httpx.get(gw.url + "/v1/models", headers={"authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    event = _refusal(gw, response)
    assert event.operation == "openai.models.list" and event.decision.rule == "enforce:auth-failed"


def test_shape_size_and_type_refusals(gw: Gateway) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b'{"model": "claude-test-sonnet", "messages": ['}, 400, "bad-request"),
        # A field name holding a value: the answer names it (to its sender), the audit record never.
        ({"body": {**MESSAGE, "518-42-7731": 1}}, 400, "bad-request"),
        ({"body": {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}}, 400, "bad-request"),
        ({"content": b"model=x", "headers": {"content-type": "text/plain"}}, 415, "unsupported-media-type"),
        ({"body": {**MESSAGE, "messages": [{"role": "user", "content": "a" * (5 * 1024 * 1024)}]}}, 413, "body-too-large"),
    ]  # fmt: skip
    for kwargs, status, rule in cases:
        response = _send(gw, "/v1/messages", **kwargs)
        assert response.status_code == status, response.text
        assert _refusal(gw, response).decision.rule == f"enforce:{rule}"
    assert gw.provider.received == []


def test_model_and_destination_refusals(gw: Gateway) -> None:
    note = [{"role": "user", "content": PHI}]
    # The model name is text anyone can send: one the vendor matrix does not serve is "unlisted".
    response = _send(gw, "/v1/messages", body={**MESSAGE, "model": "x-518-42-7731", "messages": note})
    assert response.status_code == 404
    event = _refusal(gw, response)
    assert event.decision.rule == "enforce:unknown-model"
    assert event.actor.model == "unlisted"
    # Inspected before the refusal: what was found is recorded (categories, counts).
    assert event.classification.tier == "restricted" and event.classification.categories.get("ssn", 0) >= 1
    response = _send(gw, "/v1/chat/completions", body={**CHAT, "model": "old-gpt"})
    assert response.status_code == 403
    assert _refusal(gw, response).decision.rule == "enforce:destination-expired"
    only_openai = gw.new_key(destinations=("openai-baa",))
    response = _send(gw, "/v1/messages", body=MESSAGE, headers={"x-api-key": only_openai})
    assert response.status_code == 403
    event = _refusal(gw, response)
    assert event.decision.rule == "enforce:destination-not-permitted"
    assert event.actor.user_id == "ana@example.org"
    assert gw.provider.received == []


def test_shutting_down_and_inspection_failures(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    gw.runtime.draining = True
    try:
        response = _send(gw, "/v1/messages", body=MESSAGE)
    finally:
        gw.runtime.draining = False
    assert response.status_code == 503
    assert _refusal(gw, response).decision.rule == "enforce:shutting-down"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("detector exploded on 518-42-7731")

    monkeypatch.setattr(gw.runtime.inspector, "scan", broken)
    response = _send(gw, "/v1/messages", body=MESSAGE)
    assert response.status_code == 500
    assert "518-42-7731" not in response.text
    assert _refusal(gw, response).decision.rule == "enforce:inspection-failed"
    assert gw.provider.received == []


def test_unexpected_exceptions_are_500s_in_each_apis_format(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("bad value 518-42-7731 for Marisol Okonkwo")

    monkeypatch.setattr(handler, "conversation_id", boom)
    caplog.set_level(logging.ERROR, logger="phiwarden.gateway")
    with pytest.raises(anthropic.InternalServerError) as anthropic_error:
        anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0).messages.create(
            model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hello"}]
        )
    with pytest.raises(openai.InternalServerError) as openai_error:
        openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0).chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert anthropic_error.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": anthropic_error.value.body["error"]["message"]},  # type: ignore[index]
    }
    assert openai_error.value.code == "internal_error"
    for error in (anthropic_error.value, openai_error.value):
        assert "ValueError" in error.message and "518-42-7731" not in error.message
        event = _refusal(gw, error.response)  # type: ignore[arg-type]
        assert event.decision.rule == "enforce:internal-error"
    assert "ValueError" in caplog.text
    for value in RAW_VALUES:
        assert value not in caplog.text
    assert gw.provider.received == []


def test_a_failure_after_the_decision_event_is_recorded_as_its_outcome(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("cannot encode 518-42-7731")

    monkeypatch.setattr(ParsedRequest, "serialize", boom)
    caplog.set_level(logging.ERROR, logger="phiwarden.gateway")
    letter = "Write a follow-up letter to patient Maria Garcia, born 1984-07-12; her social 478-22-9134 is on file."
    note = {**MESSAGE, "messages": [{"role": "user", "content": letter}]}
    response = _send(gw, "/v1/messages", body=note)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    assert response.headers["x-phiwarden-decision"].startswith("pseudonymize; ")
    cid = response.headers["x-phiwarden-request-id"]
    gw.settled_events()
    events = [event for event, _ in _records(gw, cid)]
    assert [(e.status, e.decision.rule) for e in events] == [
        ("unknown", "enforce:tier-action"),
        ("failure", "enforce:outcome"),
    ]
    assert "failed after the decision: internal-error" in (events[1].message or "")
    assert "518-42-7731" not in caplog.text and gw.provider.received == []


def test_a_lone_surrogate_in_a_pseudonymized_request_is_answered_in_the_api_format(gw: Gateway) -> None:
    # The reviewer's case: pseudonymized (values found), so the body is written anew, and "\ud800"
    # cannot be encoded. Refused as it is read (400) or failing once decided (500): never plain text.
    letter = "Write a follow-up letter to patient Maria Garcia, born 1984-07-12; her social 478-22-9134."
    content = json.dumps(
        {"model": "gpt-5", "messages": [{"role": "user", "content": letter + " \ud800"}]}
    ).encode()
    assert b"\\ud800" in content
    response = _send(gw, "/v1/chat/completions", content=content)
    assert response.status_code in (400, 500)
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    cid = response.headers["x-phiwarden-request-id"]
    gw.settled_events()
    events = [event for event, _ in _records(gw, cid)]
    # Refused before the decision (one event), or failed after it (the decision and its outcome).
    assert [e.status for e in events] in (["failure"], ["unknown", "failure"])
    assert gw.provider.received == []


def test_a_refusal_stands_when_the_audit_store_fails(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(events: Any) -> Any:
        raise AuditError("disk full")

    monkeypatch.setattr(gw.runtime.writer.log, "append_batch", broken)
    caplog.set_level(logging.ERROR, logger="phiwarden.gateway")
    response = _send(gw, "/v1/messages", body=MESSAGE, headers={"x-api-key": "nope"})
    assert response.status_code == 401
    response = _send(gw, "/v1/messages", body={**MESSAGE, "model": "mystery"})
    assert response.status_code == 404
    assert "could not be audited" in caplog.text
    monkeypatch.undo()
    assert _send(gw, "/v1/messages", body=MESSAGE).status_code == 200


def test_unauthenticated_refusals_are_rate_limited_into_a_count(gw: Gateway) -> None:
    saved = gw.runtime.refusals
    gw.runtime.refusals = RefusalLimiter(burst=3, rate=0.0, interval=60)
    try:
        cids = [
            _send(gw, "/v1/messages", body=MESSAGE, headers={"x-api-key": f"bad-{i}"}).headers[
                "x-phiwarden-request-id"
            ]
            for i in range(10)
        ]
        recorded = [cid for cid in cids if _records(gw, cid)]
        assert recorded == cids[:3]
        # Refusals of known callers are never limited.
        known = [_send(gw, "/v1/messages", body={**MESSAGE, "model": "mystery"}) for _ in range(4)]
        assert all(len(_records(gw, r.headers["x-phiwarden-request-id"])) == 1 for r in known)
        before = len(gw.events())
        handler.record_counted_refusals(gw.runtime)
        [counted] = gw.wait_events(before + 1)[before:]
        assert counted.decision.rule == "enforce:auth-failed-counted"
        assert counted.message == "7 more unauthenticated requests refused with HTTP 401 in the last 60 s"
        handler.record_counted_refusals(gw.runtime)  # nothing counted since: no event
        assert len(gw.wait_events(before + 2, timeout=0.3)) == before + 1
    finally:
        gw.runtime.refusals = saved


def test_every_answer_carries_the_gateway_headers(make_gateway: Any) -> None:
    blocking: Gateway = make_gateway(restricted="block")
    response = _send(
        blocking, "/v1/messages", body={**MESSAGE, "messages": [{"role": "user", "content": PHI}]}
    )
    assert response.status_code == 403
    assert response.headers["x-phiwarden-decision"] == (
        "block; tier=restricted; destination=none; mode=enforce"
    )
    answers = [
        response,
        _send(blocking, "/v1/messages", body=MESSAGE, headers={"x-api-key": "nope"}),
        _send(blocking, "/v1/files", method="GET"),
        _send(blocking, "/v1/messages", method="GET"),
        httpx.get(blocking.url + "/v1/models", headers={"x-api-key": blocking.key}),
        httpx.get(blocking.url + "/healthz"),
        httpx.get(blocking.url + "/readyz"),
    ]
    for answer in answers:
        assert len(answer.headers["x-phiwarden-request-id"]) == 36
        assert float(answer.headers["x-phiwarden-overhead-ms"]) >= 0


def test_a_wrong_method_on_a_known_route_is_a_405(gw: Gateway) -> None:
    response = _send(gw, "/v1/messages", method="GET")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "invalid_request_error"
    response = httpx.post(gw.url + "/v1/models", headers={"authorization": f"Bearer {gw.key}"})
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.APIStatusError) as openai_error:
        openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0).get(
            "/chat/completions", cast_to=object
        )
    assert openai_error.value.status_code == 405
    with pytest.raises(anthropic.APIStatusError) as anthropic_error:
        anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0).get(
            "/v1/messages", cast_to=object
        )
    assert anthropic_error.value.status_code == 405
    assert _send(gw, "/v1/nothing", method="GET").status_code == 404


def test_model_lists_follow_the_callers_api_and_scope(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(
        extra="""
[[destination]]
id = "globs-only"
provider = "anthropic"
base_url = "http://127.0.0.1:9/anthropic"
models = ["sonnet-*"]
baa = true
tiers = ["public"]
api_key_env = "PHIWARDEN_TEST_ANTHROPIC_KEY"
"""
    )
    claude = anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0)
    assert [m.id for m in claude.models.list()] == ["claude-test-sonnet", "llama-local"]
    # Anthropic's pagination: the SDK follows has_more/last_id page by page.
    first = claude.models.list(limit=1)
    assert [m.id for m in first.data] == ["claude-test-sonnet"] and first.has_more
    assert [m.id for m in claude.models.list(limit=1)] == ["claude-test-sonnet", "llama-local"]
    assert [m.id for m in claude.models.list(before_id="llama-local").data] == ["claude-test-sonnet"]
    for query in ("limit=0", "limit=x", "after_id=gpt-5"):
        refused = httpx.get(f"{gw.url}/v1/models?{query}", headers={"x-api-key": gw.key})
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert claude.models.retrieve("sonnet-9").id == "sonnet-9"  # a glob serves it: it can be asked for
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("gpt-5")  # an OpenAI model, not offered in the Anthropic shape
    gpt = openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0)
    assert [(m.id, m.owned_by) for m in gpt.models.list()] == [
        ("gpt-5", "openai-baa"),
        ("llama-local", "local-llm"),
    ]
    scoped = gw.new_key(destinations=("openai-baa",))
    assert [m.id for m in openai.OpenAI(api_key=scoped, base_url=gw.url + "/v1").models.list()] == ["gpt-5"]
    assert [m.id for m in anthropic.Anthropic(api_key=scoped, base_url=gw.url).models.list()] == []
