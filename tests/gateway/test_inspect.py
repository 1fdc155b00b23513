"""The gateway's inspection in its two steps: `scan` (detection, which needs nothing of the
conversation and so runs while its state loads) and `judge` (surrogates dropped, then classified).

Through the gateway: a patient table reaches no cloud vendor wherever it sits in a request (after a
system prompt, after a sentence, in a fence, printed by a shell tool), and a file printed by a shell
command is classified with its path, as a file read with the Read tool is."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from phiwarden.gateway.inspect import Inspector
from phiwarden.gateway.request import ParsedRequest
from phiwarden.gateway.shapes import parse
from phiwarden.policy.model import Policy
from tests.gateway.conftest import Gateway

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


CSV = (
    "last_name,first_name,dob,mrn\n"
    "Okonkwo,Marisol,1984-07-12,00482913\n"
    "Reyes,Tomas,1990-02-03,00591234\n"
    "Nakamura,Haruto,1979-11-30,00617720\n"
)
CSV_VALUES = ("Okonkwo", "Marisol", "1984-07-12", "00482913", "Reyes", "Tomas", "00591234", "Nakamura")
CODE = "def main() -> int:\n    return 1\n"
SYSTEM = "You are a coding agent. Follow the repository's conventions."


def _chat(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": "gpt-5", "messages": messages}


def _claude(tool: str, tool_input: dict[str, Any], output: Any) -> tuple[str, dict[str, Any]]:
    """Claude Code's shape: a system prompt, a tool_use, then its tool_result."""
    return "/v1/messages", {
        "model": "claude-test-sonnet",
        "max_tokens": 20,
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [
            {"role": "user", "content": "look at the export"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": tool, "input": tool_input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": output}]},
        ],
    }


def _codex(command: str, output: str) -> tuple[str, dict[str, Any]]:
    """Codex's shape: instructions, a shell function_call (bash -lc), then its function_call_output."""
    arguments = json.dumps({"command": ["bash", "-lc", command], "workdir": "/repo"})
    return "/v1/responses", {
        "model": "gpt-5",
        "instructions": SYSTEM,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "look at the export"}]},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": arguments},
            {"type": "function_call_output", "call_id": "c1", "output": output},
        ],
    }


def _send(gw: Gateway, path: str, body: dict[str, Any]) -> str:
    headers = {"authorization": f"Bearer {gw.key}", "x-api-key": gw.key}
    response = httpx.post(gw.url + path, json=body, headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    decision: str = response.headers["x-phiwarden-decision"]
    return decision


def _cloud_text(gw: Gateway) -> str:
    return "\n".join(r.text for r in gw.provider.received if r.prefix != "local")


def _numbered(text: str, form: str) -> str:
    """`text` as a tool prints it with line numbers (Read: "     1→", `cat -n`: "     1<TAB>")."""
    return "".join(form.format(n=n, line=line) for n, line in enumerate(text.splitlines(True), 1))


PLACEMENTS = {
    "after a system prompt": _chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": CSV}]),
    "after a sentence": _chat([{"role": "user", "content": "Dedupe these rows, please:\n" + CSV}]),
    "in a csv fence": _chat([{"role": "user", "content": f"Summarise:\n```csv\n{CSV}```\nKeep it short."}]),
    "after an earlier message": _chat(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": CSV},
        ]
    ),
    "Claude Code Bash cat": _claude("Bash", {"command": "cat data/export.csv"}, CSV),
    "Claude Code Bash cat, text blocks": _claude(
        "Bash", {"command": "cat data/export.csv"}, [{"type": "text", "text": CSV}]
    ),
    "Claude Code Bash ls (no file printed)": _claude(
        "Bash", {"command": "ls data && echo ok"}, "export.csv\n" + CSV
    ),
    "Claude Code Read of a Markdown file": _claude(
        "Read", {"file_path": "/repo/docs/import.md"}, f"# Import\n\nThe clinic sent:\n\n```csv\n{CSV}```\n"
    ),
    "Claude Code Read of a CSV file (numbered lines)": _claude(
        "Read", {"file_path": "/repo/data/export.csv"}, _numbered(CSV, "{n:>6}\u2192{line}")
    ),
    "Claude Code Read of a Markdown file (numbered lines)": _claude(
        "Read", {"file_path": "/repo/docs/import.md"}, _numbered(f"Rows:\n{CSV}", "{n:>6}\u2192{line}")
    ),
    "Codex shell cat -n": _codex("cat -n data/export.csv", _numbered(CSV, "{n:>6}\t{line}")),
    "Codex shell cat": _codex("cat data/export.csv | head -5", CSV),
    "Codex shell output after a command's own output": _codex(
        "cd data && echo exporting && cat export.csv", "exporting\n" + CSV
    ),
}


@pytest.mark.parametrize("case", sorted(PLACEMENTS))
def test_a_patient_table_is_restricted_wherever_it_sits(gateway: Gateway, case: str) -> None:
    path, body = PLACEMENTS[case]
    decision = _send(gateway, path, body)
    assert "tier=restricted" in decision, decision
    # Pseudonymized for a cloud vendor, or routed to the local model as it came.
    assert gateway.provider.received
    leaked = [value for value in CSV_VALUES if value in _cloud_text(gateway)]
    assert leaked == [], f"{case}: {leaked} reached the vendor ({decision})"


@pytest.mark.parametrize(
    ("tool", "command"),
    [("claude", "grep -i okonkwo data/export.csv"), ("codex", "tail -n +2 data/export.csv")],
)
def test_rows_printed_without_their_header_are_restricted(gateway: Gateway, tool: str, command: str) -> None:
    rows = CSV.split("\n", 1)[1]
    if tool == "claude":
        path, body = _claude("Bash", {"command": command}, rows)
    else:
        path, body = _codex(command, rows)
    assert "tier=restricted" in _send(gateway, path, body)
    assert not [value for value in CSV_VALUES if value in _cloud_text(gateway)]


def test_a_printed_csv_is_scanned_as_its_file(gateway: Gateway) -> None:
    # One PHI column: a table of unknown origin needs two, a .csv file one (as with Read).
    visits = "mrn,visits,balance\n00482913,3,120.50\n00591234,1,80.00\n"
    path, body = _claude("Bash", {"command": "head -n 3 data/visits.csv"}, visits)
    assert "tier=restricted" in _send(gateway, path, body)
    assert "00482913" not in _cloud_text(gateway)
    gateway.provider.reset()
    path, body = _codex("cat data/visits.csv", visits)
    assert "tier=restricted" in _send(gateway, path, body)
    assert "00591234" not in _cloud_text(gateway)


def test_prose_in_a_printed_file_is_still_read_as_prose(gateway: Gateway) -> None:
    note = "Follow-up: patient Marisol Okonkwo seen 03/14/2025, call back Friday.\n"
    path, body = _claude("Bash", {"command": "cat notes/followup.txt"}, note)
    assert "tier=restricted" in _send(gateway, path, body)
    assert "Okonkwo" not in _cloud_text(gateway)


READS = {
    "Read tool": _claude("Read", {"file_path": "/repo/src/app.py"}, CODE),
    "Bash cat": _claude("Bash", {"command": "cat src/app.py"}, CODE),
    "Bash sed -n": _claude("Bash", {"command": "sed -n 1,40p src/app.py"}, CODE),
    "Bash head, several files": _claude("Bash", {"command": "head -n 20 src/app.py src/util.py"}, CODE),
    "Bash grep on a named file": _claude(
        "Bash", {"command": "grep -n 'def ' src/app.py"}, "1:def main() -> int:"
    ),
    "Codex shell cat": _codex("cat src/app.py", CODE),
    "Codex shell sed -n": _codex("sed -n '1,40p' src/app.py", CODE),
    "Codex shell tail": _codex("tail -n 20 src/app.py", CODE),
}


@pytest.mark.parametrize("case", sorted(READS))
def test_repository_code_printed_by_a_shell_is_internal_as_read_code_is(gateway: Gateway, case: str) -> None:
    path, body = READS[case]
    assert "tier=internal" in _send(gateway, path, body)


@pytest.mark.parametrize(
    ("command", "output"),
    [
        ("ls src", "app.py\nutil.py\n"),
        ("wc -l src/app.py", "2 src/app.py\n"),  # about the file, not its content
        ("python -m pytest -q", "1 passed in 0.01s\n"),
    ],
)
def test_shell_output_that_prints_no_file_stays_text(gateway: Gateway, command: str, output: str) -> None:
    for path, body in (_claude("Bash", {"command": command}, output), _codex(command, output)):
        assert "tier=public" in _send(gateway, path, body)


HL7 = (
    "MSH|^~\\&|EPIC|HOSP|||202501011200||ADT^A01|1|P|2.5\n"
    "PID|1||00482913^^^HOSP^MR||OKONKWO^MARISOL||19610314|F|||14 ELM ST^^BOSTON^MA^02118\n"
)


def test_an_hl7_message_read_with_line_numbers_is_read_as_hl7(gateway: Gateway) -> None:
    """Claude Code's Read numbers every line: a segment must still start its line for the reader."""
    path, body = _claude(
        "Read", {"file_path": "/repo/fixtures/adt.hl7"}, _numbered(HL7, "{n:>6}\u2192{line}")
    )
    assert "tier=restricted" in _send(gateway, path, body)
    cloud = _cloud_text(gateway)
    assert not [
        value for value in ("OKONKWO", "MARISOL", "19610314", "00482913", "14 ELM ST") if value in cloud
    ]
