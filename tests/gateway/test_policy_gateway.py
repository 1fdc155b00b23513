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
        (CLOUD + '[[gateway.repository]]\nname = "a"\ngroups = ["ghosts"]\n', 8, "no [[group]] named"),
        (CLOUD + '[[gateway.repository]]\nname = "a"\n' * 2, None, "repository 'a' is defined twice"),
        (CLOUD + '[[gateway.repository]]\nname = "a"\nusers = ["x"]\n', 8, "unknown key"),
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
    # What enforce would do: the values pseudonymized (nothing restricted remains in the text).
    assert decision.decision.rule == "monitor:would-pseudonymize:tier-action"


REPOSITORIES = """
[[gateway.repository]]
name = "acme/ehr-legacy"
mode = "monitor"
groups = ["clinical-eng"]

[[gateway.repository]]
name = "acme/bound"
mode = "monitor"

[[gateway.repository]]
name = "acme/strict"
"""
PHI = "Patient: Marisol Okonkwo SSN 518-42-7731 MRN-00482913"
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
DATA_URL_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _chat(gw: Gateway, key: str, content: Any, repository: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if repository:
        headers["x-phiwarden-repository"] = repository
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": content}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers)


def _messages(gw: Gateway, key: str, content: Any, model: str = "claude-test-sonnet") -> httpx.Response:
    body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    return httpx.post(gw.url + "/v1/messages", json=body, headers={"x-api-key": key})


def test_repository_rollout_mode_applies_only_to_callers_it_lists(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(gateway_extra=REPOSITORIES)
    # ana is in clinical-eng, which the repository lists: monitor, forwarded as it came, audited.
    response = _chat(gw, gw.key, PHI, "acme/ehr-legacy")
    assert response.status_code == 200
    assert response.headers["x-phiwarden-decision"].endswith("mode=monitor")
    assert "518-42-7731" in gw.provider.all_text()
    events = gw.wait_events(2)
    assert ("repository", "acme/ehr-legacy") in {(r.type, r.name) for r in events[0].resources}
    # Anyone else naming it stays in enforce mode: the header is the client's word, not a grant.
    gw.provider.reset()
    bob = gw.new_key("bob@example.org")
    response = _chat(gw, bob, PHI, "acme/ehr-legacy")
    assert response.headers["x-phiwarden-decision"].endswith("mode=enforce")
    assert "518-42-7731" not in gw.provider.all_text()
    # A key bound to a repository may claim it.
    gw.provider.reset()
    assert _chat(gw, bob, PHI, "acme/bound").headers["x-phiwarden-decision"].endswith("mode=enforce")
    bound = gw.new_key("bob@example.org", repositories=("acme/bound",))
    assert _chat(gw, bound, PHI, "acme/bound").headers["x-phiwarden-decision"].endswith("mode=monitor")
    # The stricter mode wins: a monitor group in an enforce repository is enforced.
    pilot = gw.new_key("rollout@example.org")
    assert _chat(gw, pilot, "hello").headers["x-phiwarden-decision"].endswith("mode=monitor")
    assert _chat(gw, pilot, "hello", "acme/strict").headers["x-phiwarden-decision"].endswith("mode=enforce")


def test_monitor_mode_never_lifts_a_key_scope(make_gateway: Any) -> None:
    """Review t19: a public-only agent key naming a monitor repository sent PHI to the vendor."""
    gw: Gateway = make_gateway(gateway_extra=REPOSITORIES)
    agent = gw.new_key("ci-bot", kind="agent", tiers=("public",), destinations=("openai-baa",))
    bound = gw.new_key(
        "ci-bot", kind="agent", tiers=("public",), destinations=("openai-baa",), repositories=("acme/bound",)
    )
    for key, repository in (
        (agent, None),
        (agent, "acme/ehr-legacy"),
        (agent, "acme/bound"),
        (bound, "acme/bound"),
    ):
        response = _chat(gw, key, PHI, repository)
        assert response.status_code == 403, repository
        assert "this API key may send only public content" in response.json()["error"]["message"]
    assert gw.provider.received == []
    # Monitor mode applied to the bound key, and the key's scope was enforced in it.
    decision = gw.wait_events(4)[-1]
    assert decision.decision.rule == "monitor:key-scope" and decision.decision.action == "block"
    assert _chat(gw, bound, "hello", "acme/bound").headers["x-phiwarden-decision"].endswith("mode=monitor")


def test_monitor_mode_keeps_the_destinations_content_rule(gateway: Gateway) -> None:
    """Review t06: in monitor mode an image went to openai-baa, whose content does not list images."""
    pilot = gateway.new_key("rollout@example.org")
    response = _chat(gateway, pilot, [{"type": "text", "text": "what is this?"}, DATA_URL_IMAGE])
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "images (messages[0].content[1]) may not go to 'openai-baa'" in message
    assert "use a model served by anthropic-baa" in message and "rule content-type" in message
    assert gateway.provider.received == []
    # Where content allows images, monitor mode relaxes the tier they count as, and forwards them.
    response = _messages(gateway, pilot, [{"type": "text", "text": "what is this?"}, IMAGE])
    assert response.status_code == 200
    assert response.headers["x-phiwarden-decision"].endswith("destination=anthropic-baa; mode=monitor")
    assert [r.prefix for r in gateway.provider.received] == ["anthropic"]


def test_images_blocked_by_binary_tier_say_where_they_are_and_what_to_change(gateway: Gateway) -> None:
    response = _messages(gateway, gateway.key, [{"type": "text", "text": "what is in this diagram?"}, IMAGE])
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    # The image's block (the gateway may name the field inside it that holds the data).
    assert message.startswith("phiwarden blocked this request: images (messages[0].content[1]")
    assert (
        'cannot be inspected for PHI; [gateway] binary_tier = "restricted" treats them as restricted, '
        "which never goes to a cloud destination ('anthropic-baa')"
    ) in message
    assert "may not go to 'local-llm'" in message and "rule binary-tier" in message
    assert (
        'to allow images to anthropic-baa (content = ["images"]), your administrator can set '
        '[gateway] binary_tier = "internal"'
    ) in message
    assert gateway.provider.received == []


def test_images_with_binary_tier_internal_go_where_content_allows_them(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(gateway_extra='binary_tier = "internal"')
    response = _messages(gw, gw.key, [{"type": "text", "text": "what is in this diagram?"}, IMAGE])
    assert response.status_code == 200
    assert [r.prefix for r in gw.provider.received] == ["anthropic"]
    response = _chat(gw, gw.key, [{"type": "text", "text": "what is this?"}, DATA_URL_IMAGE])
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "does not list images in content" in message and "rule content-type" in message
    assert "What to do: send the text instead, or use a model served by anthropic-baa" in message


RESTRICTED_CODE = "def mask_ssn(patient):\n    return patient.ssn[-4:]\n"


def test_a_route_goes_only_to_a_local_destination_the_key_may_use(gateway: Gateway) -> None:
    """Review t13: a key scoped to openai-baa had restricted code routed to local-llm."""
    scoped = gateway.new_key("dave@example.org", destinations=("openai-baa",))
    response = _chat(gateway, scoped, RESTRICTED_CODE)
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "the local destination 'local-llm' is outside what you may use" in message
    assert "phiwarden keys create --destination local-llm" in message
    assert gateway.provider.received == []
    assert (
        _chat(gateway, gateway.key, RESTRICTED_CODE)
        .headers["x-phiwarden-decision"]
        .startswith("route; tier=restricted; destination=local-llm")
    )


def test_a_route_to_a_local_destination_past_its_review_is_refused(make_gateway: Any, provider: Any) -> None:
    """Review t22: restricted content was routed to a local destination whose review date had passed."""
    gw: Gateway = make_gateway(
        extra=f"""
[[destination]]
id = "stale-local"
provider = "vllm"
apis = ["messages", "chat_completions", "responses"]
base_url = "{provider[1].url}/local"
local = true
model = "llama-stale"
models = ["stale-*"]
review_by = 2020-01-01
tiers = ["public", "internal", "restricted"]

[[group]]
name = "stale"
route_to = "stale-local"

[[identity]]
id = "stale@example.org"
groups = ["stale"]
"""
    )
    key = gw.new_key("stale@example.org")
    response = _messages(gw, key, RESTRICTED_CODE)
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert (
        "the local destination 'stale-local' is disabled: its vendor review date 2020-01-01 has passed"
        in message
    )
    assert "ask your administrator to review 'stale-local' (review_by in phiwarden.toml)" in message
    assert gw.provider.received == []


def test_prose_about_a_patient_is_pseudonymized_and_code_stays_local(gateway: Gateway) -> None:
    """Review item 9: the words SSN and MRN kept a pseudonymized prompt restricted."""
    prose = "Patient Marisol Okonkwo, SSN 518-42-7731, MRN-00482913, needs a reminder email"
    response = _messages(gateway, gateway.key, prose)
    assert response.status_code == 200
    assert response.headers["x-phiwarden-decision"].startswith(
        "pseudonymize; tier=restricted; destination=anthropic-baa"
    )
    sent = gateway.provider.all_text()
    assert "SSN" in sent and "MRN-" in sent
    assert not any(v in sent for v in ("Marisol Okonkwo", "518-42-7731", "MRN-00482913"))
    gateway.provider.reset()
    response = _messages(gateway, gateway.key, RESTRICTED_CODE)
    assert response.headers["x-phiwarden-decision"].startswith(
        "route; tier=restricted; destination=local-llm"
    )


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
        assert response.status_code == 401
        message = response.json()["error"]["message"]
        # One prefix, then what was expected and what to check.
        assert message.startswith('OIDC token rejected: it has expired (its "exp" claim is past')
        assert message.count("rejected") == 1
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
