"""What answers carry besides text and tool calls, restored: Responses reasoning summaries and text
(whole and streamed, a surrogate split across deltas), Anthropic citations (whole and as
`citations_delta`); signed thinking passes unchanged."""

from __future__ import annotations

import json
from typing import Any

from phiwarden.gateway.restore_body import restore_response
from phiwarden.gateway.sse import Event, StreamRewriter
from phiwarden.transform.restore import Restorer
from phiwarden.transform.vault import Vault, VaultKeys

VAULT = Vault.new(VaultKeys.from_secret(b"e" * 32), "ana@example.org", "conv-events")
FAKE = VAULT.surrogate("name", "Marisol Okonkwo")
LAST = FAKE.split()[1]


def _rewriter(api: Any) -> StreamRewriter:
    return StreamRewriter.create(
        api, Restorer.of(VAULT.entries), Restorer.of(VAULT.entries, json_strings=True)
    )


def _events(rewriter: StreamRewriter, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, data in events:
        for raw in rewriter.rewrite(Event(name, json.dumps(data))):
            out.append(json.loads(raw.decode().split("data: ", 1)[1]))
    return out


def test_a_reasoning_items_summary_and_text_are_restored() -> None:
    item = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": f"Writing to Ms. {LAST}."}],
        "content": [{"type": "reasoning_text", "text": f"{FAKE} needs a reminder."}],
        "encrypted_content": "ZW5jcnlwdGVkIGJ5IHRoZSB2ZW5kb3I=",
    }
    body = restore_response("responses", {"output": [item]}, Restorer.of(VAULT.entries), Restorer({}))
    [restored] = body["output"]
    assert restored["summary"][0]["text"] == "Writing to Ms. Okonkwo."
    assert restored["content"][0]["text"] == "Marisol Okonkwo needs a reminder."
    assert restored["encrypted_content"] == item["encrypted_content"]


def test_streamed_reasoning_summaries_are_restored_across_deltas() -> None:
    rewriter = _rewriter("responses")
    text = f"Writing to Ms. {LAST}, {FAKE}."
    key = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    events = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_9"}},
        ),
        *[
            (
                "response.reasoning_summary_text.delta",
                {
                    "type": "response.reasoning_summary_text.delta",
                    "sequence_number": i + 1,
                    **key,
                    "delta": text[i : i + 3],
                },
            )
            for i in range(0, len(text), 3)
        ],
        (
            "response.reasoning_summary_text.done",
            {"type": "response.reasoning_summary_text.done", "sequence_number": 99, **key, "text": text},
        ),
    ]
    out = _events(rewriter, events)
    streamed = "".join(
        e.get("delta", "") for e in out if e["type"] == "response.reasoning_summary_text.delta"
    )
    assert streamed == "Writing to Ms. Okonkwo, Marisol Okonkwo."
    assert out[-1]["text"] == "Writing to Ms. Okonkwo, Marisol Okonkwo."
    assert rewriter.response_id == "resp_9"


def test_citations_are_restored_and_thinking_is_not() -> None:
    citation = {"type": "char_location", "cited_text": f"{FAKE}, seen", "document_title": f"{LAST} chart"}
    body = {
        "content": [
            {"type": "thinking", "thinking": f"About {FAKE}.", "signature": "c2lnbmVk"},
            {"type": "text", "text": f"Ms. {LAST}", "citations": [dict(citation)]},
        ]
    }
    restored = restore_response("messages", body, Restorer.of(VAULT.entries), Restorer({}))
    thinking, text = restored["content"]
    assert thinking["thinking"] == f"About {FAKE}."
    assert text["text"] == "Ms. Okonkwo"
    assert text["citations"][0] == {
        **citation,
        "cited_text": "Marisol Okonkwo, seen",
        "document_title": "Okonkwo chart",
    }
    rewriter = _rewriter("messages")
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "citations_delta", "citation": citation},
    }
    [out] = _events(rewriter, [("content_block_delta", delta)])
    assert out["delta"]["citation"]["cited_text"] == "Marisol Okonkwo, seen"
    thinking_delta = {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "thinking_delta", "thinking": FAKE},
    }
    [out] = _events(rewriter, [("content_block_delta", thinking_delta)])
    assert out["delta"]["thinking"] == FAKE


def test_the_response_id_comes_from_the_first_event_that_carries_the_response() -> None:
    rewriter = _rewriter("responses")
    completed = {
        "type": "response.completed",
        "sequence_number": 0,
        "response": {"id": "resp_7", "output": []},
    }
    _events(rewriter, [("response.completed", completed)])
    assert rewriter.response_id == "resp_7" and rewriter.done
