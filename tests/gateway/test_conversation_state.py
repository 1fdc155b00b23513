"""The conversation state the gateway store keeps, in SQLite and PostgreSQL: pins with anchors, which
conversation an upstream response belongs to, pins from before anchors; and a gateway on
PostgreSQL continuing a stateful Responses conversation."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from phiwarden.gateway.conversation import ResponseLinks, conversation_id, item_count, prefix_digest
from phiwarden.gateway.shapes import parse
from phiwarden.gateway.store import GatewayStore, Pin
from phiwarden.transform.vault import SealedRow, VaultKeys
from tests.gateway.conftest import Gateway

KEYS = VaultKeys.from_secret(b"c" * 32)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayStore]:
    url = (
        f"sqlite:///{tmp_path / 'gateway.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    opened = GatewayStore(url)
    yield opened
    opened.close()


def test_pins_keep_their_anchors(store: GatewayStore) -> None:
    now = time.time()
    store.pin_set("row", "local-llm", now + 60, anchor="a" * 32, anchor_items=4)
    store.pin_set("row", "local-llm", now + 60, anchor="b" * 32, anchor_items=2)
    store.pin_set("row", "other-local", now + 90, anchor="b" * 32, anchor_items=2)  # set again: replaced
    assert store.pin_get("row", now) == [Pin("other-local", "b" * 32, 2), Pin("local-llm", "a" * 32, 4)]
    assert store.pin_get("other-row", now) == []


def test_a_response_names_its_conversation_for_its_identity_only(store: GatewayStore) -> None:
    links = ResponseLinks(store, KEYS, 60)
    links.remember("ana@example.org", "resp_1", "h:chat with a name of its own")
    assert links.conversation("ana@example.org", "resp_1") == "h:chat with a name of its own"
    assert links.conversation("bob@example.org", "resp_1") is None
    assert links.conversation("ana@example.org", "resp_2") is None
    assert (
        ResponseLinks(store, VaultKeys.from_secret(b"d" * 32), 60).conversation("ana@example.org", "resp_1")
        is None
    )


def test_response_rows_hold_no_name_and_expire(store: GatewayStore) -> None:
    links = ResponseLinks(store, KEYS, 60)
    links.remember("ana@example.org", "resp_1", "h:Marisol Okonkwo's chart")
    row_id, _ = links._row("ana@example.org", "resp_1")
    row = store.response_load(row_id, time.time())
    assert row is not None and b"Marisol" not in row.ciphertext and "resp_1" not in row_id
    # A row moved to another identity's id does not open there (bound to its row).
    other, _ = links._row("bob@example.org", "resp_1")
    store.response_save(other, "bob", SealedRow(0, row.nonce, row.ciphertext, time.time() + 60))
    assert links.conversation("bob@example.org", "resp_1") is None
    store.vault_purge(time.time() + 120)
    assert store.response_load(row_id, time.time()) is None


def test_pins_from_before_anchors_apply_to_their_whole_conversation(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE gateway_pins (row_id TEXT PRIMARY KEY, destination TEXT NOT NULL, expires_at REAL NOT NULL)"
        )
        old.execute("INSERT INTO gateway_pins VALUES ('row', 'local-llm', ?)", (time.time() + 60,))
    store = GatewayStore(f"sqlite:///{path}")
    assert store.pin_get("row", time.time()) == [Pin("local-llm")]
    store.close()
    with sqlite3.connect(path) as old:
        assert old.execute("SELECT count(*) FROM gateway_pins").fetchone() == (0,)


def test_pins_from_before_anchors_move_in_postgresql(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as old:
        old.execute(
            "CREATE TABLE gateway_pins (row_id TEXT PRIMARY KEY, destination TEXT NOT NULL, "
            "expires_at DOUBLE PRECISION NOT NULL)"
        )
        old.execute("INSERT INTO gateway_pins VALUES ('row', 'local-llm', %s)", (time.time() + 60,))
    store = GatewayStore(pg_url)
    assert store.pin_get("row", time.time()) == [Pin("local-llm")]
    store.close()


def test_a_prefix_digest_covers_the_system_prompt_and_the_first_items_only() -> None:
    def request(*texts: str, system: str = "You help.") -> Any:
        messages = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
        ]
        return parse("messages", {"model": "m", "max_tokens": 5, "system": system, "messages": messages}, ())

    routed = request("hello there", "hi", "the record")
    assert item_count(routed) == 3
    anchor = prefix_digest(routed, 3)
    assert prefix_digest(request("hello there", "hi", "the record", "ok", "shorter"), 3) == anchor
    assert prefix_digest(request("hello there", "hi", "a css question"), 3) != anchor
    assert prefix_digest(request("hello there", "hi", "the record", system="Other."), 3) != anchor
    assert prefix_digest(request("hello there", "hi", "the record"), 2) != anchor
    naming = conversation_id({}, routed)
    assert naming.by_opening and naming == conversation_id({}, request("hello there", "other"))
    assert not conversation_id({"x-phiwarden-conversation": "c1"}, routed).by_opening


def test_responses_name_a_conversation_by_its_conversation_or_previous_response() -> None:
    def named(**fields: Any) -> Any:
        return conversation_id({}, parse("responses", {"model": "m", "input": "hi", **fields}, ()))

    assert named(conversation="conv_1").name == "c:conv_1"
    assert named(conversation={"id": "conv_2"}).name == "c:conv_2"
    assert named(previous_response_id="resp_9").previous == "resp_9"
    assert named(previous_response_id="resp_9", prompt_cache_key="k").name == "s:k"


def test_a_gateway_on_postgresql_continues_a_stateful_conversation(make_gateway: Any, pg_url: str) -> None:
    gw: Gateway = make_gateway(store=pg_url)
    client = openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0)
    visit = "Patient: Marisol Okonkwo was seen on 03/14/2025. Draft a reminder."
    first = client.responses.create(model="gpt-5", input=visit)
    with client.responses.stream(
        model="gpt-5", input="Add: " + visit, previous_response_id=first.id
    ) as events:
        second = events.get_final_response()
    names = [re.findall(r"Patient: (\w+ \w+)", r.text) for r in gw.provider.received]
    assert names[0] == names[1] and names[0] and "Marisol" not in names[0][0]
    # Another replica (its own connection, the same vault key) finds both responses' conversation.
    replica = GatewayStore(pg_url)
    links = ResponseLinks(replica, gw.runtime.vaults.keys, 60)
    assert links.conversation("ana@example.org", first.id) == links.conversation("ana@example.org", second.id)
    assert links.conversation("ana@example.org", first.id) is not None
    replica.close()
