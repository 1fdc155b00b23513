"""The per-file access record for shell tool calls: Claude Code's Bash, Codex's shell function, the
Responses API's local_shell_call and shell_call; paths holding values are recorded masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from phiwarden.audit.store import Query
from phiwarden.gateway import shell
from phiwarden.gateway.files import accesses
from phiwarden.gateway.request import ToolCall
from tests.gateway.conftest import Gateway

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("cat /data/exports/patients.csv", [("/data/exports/patients.csv", "read", "cat")]),
        ("head -n 40 a.py; tail -f log.txt; less +G b.md", [("a.py", "read", "head"), ("log.txt", "read", "tail"), ("b.md", "read", "less")]),
        ("grep -rn 'ssn' src/ tests/", [("src/", "read", "grep"), ("tests/", "read", "grep")]),
        ("rg -g '*.py' -e foo -e bar src", [("src", "read", "rg")]),
        ("grep -f patterns.txt -A 3 notes.md", [("patterns.txt", "read", "grep"), ("notes.md", "read", "grep")]),
        ("sed -n 1,40p src/app.py", [("src/app.py", "read", "sed")]),
        ("sed -i s/a/b/ /repo/src/app.py", [("/repo/src/app.py", "write", "sed")]),
        ("sed -ie 's/x/y/' g.txt; perl -pi -e 's/a/b/' f.pl", [("g.txt", "write", "sed"), ("f.pl", "write", "perl")]),
        ("awk -F, '{print $1}' data.csv | sort -o sorted.txt", [("data.csv", "read", "awk"), ("sorted.txt", "write", "sort")]),
        ("wc -l *.csv && diff old.txt new.txt", [("*.csv", "read", "wc"), ("old.txt", "read", "diff"), ("new.txt", "read", "diff")]),
        ("echo hi > /repo/notes.md", [("/repo/notes.md", "write", "redirect")]),
        ("cat a 2>/dev/null >> log; echo x >&2; echo y &> out.log", [("a", "read", "cat"), ("log", "write", "redirect"), ("out.log", "write", "redirect")]),
        ("tee -a log.txt < input.txt", [("log.txt", "write", "tee"), ("input.txt", "read", "redirect")]),
        ("cp a.txt b.txt /backup/ && mv x y", [("a.txt", "read", "cp"), ("b.txt", "read", "cp"), ("/backup/", "write", "cp"), ("x", "write", "mv"), ("y", "write", "mv")]),
        ("cp -t /dst a", [("/dst", "write", "cp"), ("a", "read", "cp")]),
        ("rm -rf build; touch new.py; mkdir -p a/b; chmod +x run.sh; chmod -R 755 bin", [("build", "write", "rm"), ("new.py", "write", "touch"), ("a/b", "write", "mkdir"), ("run.sh", "write", "chmod"), ("bin", "write", "chmod")]),
        ("python3 scripts/run.py --in f.csv; python -c 'print(1)' x.py; python -m pytest tests/", [("scripts/run.py", "read", "python3")]),
        ("source venv/bin/activate && . ./env.sh", [("venv/bin/activate", "read", "source"), ("./env.sh", "read", ".")]),
        ("git checkout -- a.py; git checkout main; git -C repo apply fix.patch", [("a.py", "write", "git checkout"), ("fix.patch", "read", "git apply")]),
        ("patch -p1 src/x.c < fix.diff", [("src/x.c", "write", "patch"), ("fix.diff", "read", "redirect")]),
        ("sudo -u root cat /etc/hosts; FOO=1 timeout 10 head -n 5 data.txt", [("/etc/hosts", "read", "cat"), ("data.txt", "read", "head")]),
        ("bash -lc \"cat '/data/my file.txt' | wc -l\"", [("/data/my file.txt", "read", "cat")]),
        ("ls $(cat list.txt) `cat q.txt`", [("list.txt", "read", "cat"), ("q.txt", "read", "cat")]),
        ("if [ -f a ]; then cat a; fi\nwhile read l; do echo $l; done < list.txt", [("a", "read", "cat"), ("list.txt", "read", "redirect")]),
        ("cat x # then cat y\n# cat z\ngrep '#include' main.c", [("x", "read", "cat"), ("main.c", "read", "grep")]),
        ("cat <<'EOF' > f.txt\nhello > g\ncat z\nEOF\ncat after.txt", [("f.txt", "write", "redirect"), ("after.txt", "read", "cat")]),
        ("apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: src/x.py\n@@\n-a\n+b\n*** End Patch\nEOF", [("src/x.py", "write", "apply_patch")]),
        ("git apply <<EOF\n--- a/p.py\n+++ b/p.py\n@@\n-x\n+y\nEOF", [("p.py", "write", "git apply")]),
        ("cat a.txt; echo 'unterminated > x; cat y", [("a.txt", "read", "cat")]),
        ("echo hello world", []),
    ],
)  # fmt: skip
def test_command_lines(command: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(a.path, a.operation, a.program) for a in shell.command_line(command)] == expected


def test_argvs_and_lists_of_command_lines() -> None:
    found = shell.command_accesses(
        {"command": ["bash", "-lc", "cat /data/p.csv > /tmp/out"]}, ["command"], []
    )
    assert [(a.path, a.operation) for a in found] == [("/data/p.csv", "read"), ("/tmp/out", "write")]
    # An argv has no shell syntax: its ">" is a word.
    found = shell.command_accesses({"command": ["cat", "/data/p.csv", ">", "x"]}, ["command"], [])
    assert [a.path for a in found] == ["/data/p.csv", ">", "x"]
    patch = "*** Begin Patch\n*** Add File: n.py\n+x\n*** Delete File: old.py\n*** End Patch"
    assert [a.path for a in shell.argv(["apply_patch", patch])] == ["n.py", "old.py"]
    found = shell.command_accesses({"commands": ["cat a", "rm b"]}, [], ["commands"])
    assert [(a.path, a.operation) for a in found] == [("a", "read"), ("b", "write")]
    assert shell.command_accesses("cat a", ["command"], []) == []
    assert shell.command_accesses({"command": 42}, ["command"], []) == []


def test_parsing_is_bounded_and_never_raises() -> None:
    for broken in ("cat 'a", 'cat "a', "cat a\\", "<<", "cat <", "> ", "$(", "`", "''", "\x00cat a"):
        shell.command_line(broken)
    nested = "cat n.txt"
    for _ in range(10):
        nested = f"bash -c {json.dumps(nested)}"
    assert shell.command_line(nested) == []  # deeper than MAX_DEPTH shells: not followed
    many = " ; ".join(f"cat f{i}" for i in range(500))
    assert len(shell.command_line(many)) == shell.MAX_FILES
    [cut] = shell.command_line("cat " + "a" * 100_000)  # read up to MAX_COMMAND_CHARS
    assert len(cut.path) < shell.MAX_COMMAND_CHARS
    assert shell.command_line("cat a " + "b " * 10_000)[-1].path == "b"


def test_unified_diff_and_apply_patch_paths() -> None:
    diff = "--- a/kept.py\n+++ b/kept.py\n@@\n--- not a header\n+x\n--- a/gone.py\n+++ /dev/null\n"
    assert shell.patch_paths(diff) == ["kept.py", "gone.py"]
    moved = "*** Update File: a.py\n*** Move to: b.py\n@@\n-x\n+y\n"
    assert shell.patch_paths(moved) == ["a.py", "b.py"]


def _anthropic_call(name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "claude-test-sonnet",
        "max_tokens": 20,
        "system": "agent",
        "messages": [
            {"role": "user", "content": "do it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": name, "input": tool_input}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ],
    }


def _responses_call(item: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-5", "input": [{"role": "user", "content": "x"}, {**item, "call_id": "c1"}, output]}


SHELL_CALLS = {
    "Bash cat": (
        "/v1/messages",
        _anthropic_call("Bash", {"command": "cat /data/exports/patients.csv", "description": "show file"}),
        {("file.read", "/data/exports/patients.csv", "Bash:cat")},
    ),
    "Bash sed -i": (
        "/v1/messages",
        _anthropic_call("Bash", {"command": "sed -i s/a/b/ /repo/src/app.py"}),
        {("file.write", "/repo/src/app.py", "Bash:sed")},
    ),
    "Bash redirect": (
        "/v1/messages",
        _anthropic_call("Bash", {"command": "echo hi > /repo/notes.md"}),
        {("file.write", "/repo/notes.md", "Bash:redirect")},
    ),
    "Codex shell function": (
        "/v1/responses",
        _responses_call(
            {
                "type": "function_call",
                "name": "shell",
                "arguments": json.dumps({"command": ["bash", "-lc", "cat /data/patients.csv | head -5"]}),
            },
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
        ),
        {("file.read", "/data/patients.csv", "shell:cat")},
    ),
    "local_shell_call": (
        "/v1/responses",
        _responses_call(
            {
                "type": "local_shell_call",
                "id": "ls1",
                "status": "completed",
                "action": {"type": "exec", "command": ["cat", "/data/patients.csv"]},
            },
            {"type": "local_shell_call_output", "id": "ls1", "output": "done"},
        ),
        {("file.read", "/data/patients.csv", "local_shell_call:cat")},
    ),
    "chat run_terminal_cmd": (
        "/v1/chat/completions",
        {
            "model": "gpt-5",
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {
                                "name": "run_terminal_cmd",
                                "arguments": json.dumps({"command": "rm -f build/out.o && touch x.py"}),
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
            ],
        },
        {
            ("file.write", "build/out.o", "run_terminal_cmd:rm"),
            ("file.write", "x.py", "run_terminal_cmd:touch"),
        },
    ),
}


def _file_records(gw: Gateway, path: str, body: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
    response = httpx.post(gw.url + path, json=body, headers={"authorization": f"Bearer {gw.key}"}, timeout=20)
    assert response.status_code == 200, response.text
    cid = response.headers["x-phiwarden-request-id"]
    events = [e for e in gw.settled_events() if e.correlation_id == cid]
    assert len(events) == 2
    return {(r.type, r.name, r.uid) for r in events[0].resources if r.type.startswith("file.")}


@pytest.mark.parametrize("case", sorted(SHELL_CALLS))
def test_shell_tool_calls_are_in_the_file_record(gateway: Gateway, case: str) -> None:
    path, body, expected = SHELL_CALLS[case]
    assert _file_records(gateway, path, body) == expected


def test_tool_names_and_arguments_of_each_shell_tool() -> None:
    def records(name: str, arguments: Any) -> list[tuple[str, str, str]]:
        return [(a.path, a.operation, a.tool) for a in accesses(ToolCall("c1", name, arguments, "input[1]"))]

    # The Responses API's hosted shell tool: action.commands, a list of command lines.
    assert records("shell_call", {"commands": ["cat notes/a.md", "rm -f tmp.txt"], "timeout_ms": 1000}) == [
        ("notes/a.md", "read", "shell_call:cat"),
        ("tmp.txt", "write", "shell_call:rm"),
    ]
    assert records("exec_command", {"cmd": "tail -n 20 app.log"}) == [
        ("app.log", "read", "exec_command:tail")
    ]
    assert records("Bash", {"description": "no command"}) == []
    # A Responses apply_patch_call names its file in operation.path.
    assert records("apply_patch_call", {"type": "update_file", "path": "src/a.py", "diff": "@@"}) == [
        ("src/a.py", "write", "apply_patch_call")
    ]


def test_codex_fixture_records_each_call_once_in_the_request_that_reports_it(gateway: Gateway) -> None:
    fixture = json.loads((FIXTURES / "codex.json").read_text())
    headers = {**fixture["headers"], "authorization": f"Bearer {gateway.key}"}
    # The recorded turn: a shell call (sed -n 1,40p src/app.py) and its output, then an apply_patch
    # call and its output. The request that first carried the shell call's output ended after it.
    items = fixture["body"]["input"]
    earlier = {**fixture["body"], "input": items[:6]}
    records = []
    for body in (earlier, fixture["body"]):
        response = httpx.post(gateway.url + "/v1/responses", json=body, headers=headers, timeout=20)
        assert response.status_code == 200
        cid = response.headers["x-phiwarden-request-id"]
        [decision, _] = [e for e in gateway.settled_events() if e.correlation_id == cid]
        records.append({(r.type, r.name, r.uid) for r in decision.resources if r.type.startswith("file.")})
    assert records == [
        {("file.read", "src/app.py", "shell:sed")},
        {("file.write", "src/app.py", "apply_patch")},
    ]


def test_parallel_calls_of_a_responses_turn_are_recorded_together(gateway: Gateway) -> None:
    def call(call_id: str, command: str) -> dict[str, Any]:
        arguments = json.dumps({"command": ["bash", "-lc", command]})
        return {"type": "function_call", "call_id": call_id, "name": "shell", "arguments": arguments}

    def output(call_id: str) -> dict[str, Any]:
        return {"type": "function_call_output", "call_id": call_id, "output": "ok"}

    body = {
        "model": "gpt-5",
        "input": [
            {"role": "user", "content": "x"},
            call("c0", "cat old.txt"),
            output("c0"),
            call("c1", "cat a.txt"),
            call("c2", "cat b.txt"),
            output("c1"),
            output("c2"),
        ],
    }
    response = httpx.post(
        gateway.url + "/v1/responses",
        json=body,
        headers={"authorization": f"Bearer {gateway.key}"},
        timeout=20,
    )
    assert response.status_code == 200
    cid = response.headers["x-phiwarden-request-id"]
    [decision, _] = [e for e in gateway.settled_events() if e.correlation_id == cid]
    assert {r.name for r in decision.resources if r.type.startswith("file.")} == {"a.txt", "b.txt"}


@pytest.mark.parametrize(
    ("name", "tool_input", "recorded"),
    [
        ("Bash", {"command": "cat /data/MRN-00482913/notes.txt"}, "/data/[MRN]/notes.txt"),
        ("Read", {"file_path": "/data/exports/MRN-00482913.txt"}, "/data/exports/[MRN].txt"),
        (
            "Read",
            {"file_path": "/data/exports/Okonkwo_Marisol_518-42-7731.txt"},
            "/data/exports/[NAME]_[SSN].txt",
        ),
    ],
)
def test_paths_holding_values_are_recorded_masked(
    gateway: Gateway, name: str, tool_input: dict[str, Any], recorded: str
) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=_anthropic_call(name, tool_input),
        headers={"x-api-key": gateway.key},
        timeout=20,
    )
    assert response.status_code == 200
    cid = response.headers["x-phiwarden-request-id"]
    events = [e for e in gateway.settled_events() if e.correlation_id == cid]
    assert {r.name for r in events[0].resources if r.type.startswith("file.")} == {recorded}
    stored = b"".join(r.record for r in gateway.runtime.writer.log.store.search(Query()))
    for value in ("MRN-00482913", "00482913", "518-42-7731", "Okonkwo"):
        assert value.encode() not in stored
