"""The gateway's policy sections, the vendor matrix rules, rollout modes and OIDC callers."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from phiwarden.policy import PolicyError, parse_policy
from tests.gateway.conftest import Gateway
from tests.gateway.servers import ServerThread

CLOUD = '[[destination]]\nid = "c"\nprovider = "anthropic"\nbase_url = "https://api.anthropic.com"\nmodels = ["claude-*"]\n'


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        (CLOUD + 'tiers = ["public", "restricted"]\nbaa = true\n', 6, "never goes to a cloud vendor"),
        (CLOUD + 'tiers = ["internal"]\n', 6, "no BAA"),
        (CLOUD + 'colour = "blue"\n', 6, "unknown key"),
        (CLOUD + 'review_by = "soon"\n', 6, "expected a date"),
        (CLOUD + '[gateway]\nroute_to = "c"\n', 7, "not local"),
        (CLOUD + '[gateway]\nroute_to = "nowhere"\n', 7, "no [[destination]] named"),
        (CLOUD + '[gateway.actions]\nrestricted = "allow"\n', 7, "never forwarded as is"),
        (CLOUD + '[gateway.actions]\nrestricted = "route"\n', None, "route_to"),
        (CLOUD + '[[identity]]\nid = "a"\ngroups = ["ghosts"]\n', 8, "no [[group]] named"),
        (CLOUD + CLOUD, None, "defined twice"),
        (
            '[[gateway.oidc]]\nissuer = "i"\naudience = "a"\njwks_url = "http://evil.example.com/jwks"\n',
            4,
            "https",
        ),
    ],
)
def test_policy_errors_name_the_line_and_the_key(text: str, line: int | None, phrase: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert phrase in str(caught.value)
    if line is not None:
        assert caught.value.line == line


def test_doctor_style_matrix_entries_are_accepted() -> None:
    policy = parse_policy(
        '[[destination]]\nname = "cursor-pro"\nprovider = "cursor"\nurl = "https://api2.cursor.sh"\nbaa = false\n'
        'retention = "30d"\ntrains_on_prompts = true\nreview_date = 2026-06-30\n'
    )
    [destination] = policy.gateway.destinations
    assert destination.id == "cursor-pro" and destination.apis == () and not destination.zero_data_retention
    assert str(destination.review_by) == "2026-06-30"


def test_internal_content_never_goes_to_a_vendor_without_a_baa(gateway: Gateway) -> None:
    body = {"model": "cheap-model", "messages": [{"role": "user", "content": "hello"}]}
    headers = {"authorization": f"Bearer {gateway.key}"}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers).status_code == 200
    body["messages"] = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "src/app.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "def main():\n    return 1\n"},
    ]
    gateway.provider.reset()
    response = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 403
    assert "no BAA" in response.json()["error"]["message"]
    assert gateway.provider.received == []


def test_monitor_mode_forwards_as_it_came_and_records_what_enforce_would_do(gateway: Gateway) -> None:
    key = gateway.new_key("rollout@example.org")
    before = len(gateway.settled_events())
    record = "Patient: Maria Garcia\nSSN: 478-22-9134"
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": record}]},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    assert response.headers["x-phiwarden-decision"].endswith("mode=monitor")
    assert [r.prefix for r in gateway.provider.received] == ["openai"]
    assert "478-22-9134" in gateway.provider.all_text()  # monitor: not enforced
    decision = gateway.wait_events(before + 2)[before]
    assert decision.decision.action == "allow"
    assert decision.decision.rule is not None and decision.decision.rule.startswith("monitor:would-route")


def test_repository_rollout_mode(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(
        gateway_extra='[[gateway.repository]]\nname = "acme/ehr-legacy"\nmode = "monitor"\n'
    )
    body = {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": "Patient: Maria Garcia\nSSN: 478-22-9134"}],
    }
    headers = {"authorization": f"Bearer {gw.key}", "x-phiwarden-repository": "acme/ehr-legacy"}
    response = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers)
    assert response.headers["x-phiwarden-decision"].endswith("mode=monitor")
    events = gw.wait_events(2)
    assert ("repository", "acme/ehr-legacy") in {(r.type, r.name) for r in events[0].resources}


def test_oidc_callers_through_the_gateway(make_gateway: Any) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    server = ServerThread(
        Starlette(
            routes=[
                Route("/jwks", lambda request: JSONResponse({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
            ]
        )
    ).start()
    try:
        gw: Gateway = make_gateway(
            gateway_extra=f'[[gateway.oidc]]\nissuer = "https://login.example.org"\naudience = "phiwarden"\njwks_url = "{server.url}/jwks"\n'
        )
        now = int(time.time())
        token = jwt.encode(
            {"iss": "https://login.example.org", "aud": "phiwarden", "email": "ana@example.org", "exp": now + 60, "groups": ["pilot"]},
            key, algorithm="RS256", headers={"kid": "k1"},
        )  # fmt: skip
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "hello"}]}
        response = httpx.post(
            gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        decision = gw.wait_events(2)[0]
        assert decision.actor.user_id == "ana@example.org"
        assert decision.actor.identity_provider == "https://login.example.org"
        expired = jwt.encode(
            {"iss": "https://login.example.org", "aud": "phiwarden", "email": "a", "exp": now - 600},
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        response = httpx.post(
            gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401 and "OIDC token rejected" in response.json()["error"]["message"]
    finally:
        server.stop()


def test_mask_is_irreversible(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(restricted="mask")
    note = "Write to patient Maria Garcia, born 1984-07-12; her social 478-22-9134 is on file."
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": note}]},
        headers={"authorization": f"Bearer {gw.key}"},
    )
    assert response.status_code == 200
    sent = gw.provider.received[0].body["messages"][0]["content"]
    assert "[NAME_1]" in sent and "[SSN_1]" in sent and "[DATE_1]" in sent
    assert "Maria Garcia" not in gw.provider.all_text()
    # Nothing maps a placeholder back: the answer keeps it.
    assert "[SSN_1]" in response.json()["choices"][0]["message"]["content"]
