"""Linear time on hostile input: scanning time doubles, not quadruples, when the input doubles.

Each input is built to provoke a super-linear matcher (long runs a pattern could start anywhere in,
unterminated quotes, thousands of near-matches on one line). Every pattern runs on RE2, whose
automata are linear per match; this benchmark measures that the whole scan — with its re-reads
after rejected matches and its bounded look-ahead for values — stays linear too. The `prose:`
inputs are scanned in prose mode (`scan_text(…, prose=True)`, what the LLM gateway does with prompts).

    python -m benchmarks.adversarial          # the last line is a JSON object of the figures
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable

from benchmarks.common import emit
from phiwarden.detect import scan_text

INPUTS: dict[str, Callable[[int], str]] = {
    "identifier_run": lambda n: "a" * n + ": ",
    "unterminated_quotes": lambda n: 'dob: "' * (n // 6),
    "escaped_quotes": lambda n: 'name: "\\"' * (n // 9),
    "digit_run": lambda n: "1" * n,
    "dashed_digits": lambda n: "123-" * (n // 4),
    "nested_brackets": lambda n: "{" * (n // 2) + "}" * (n // 2),
    "capitalised_words": lambda n: "Ab " * (n // 3),
    "pairs_on_one_line": lambda n: "fname=Ana, " * (n // 11),
    "url_path": lambda n: "https://x/" + "patients/" * (n // 9),
    "at_signs": lambda n: "a@" * (n // 2),
    "long_email_local_part": lambda n: "a." * (n // 2) + "@mail.org",
    "label_words": lambda n: "patient name " * (n // 13),
    "hl7_fields": lambda n: "PID|" + "|" * n,
    "hl7_segments": lambda n: "\nPID|" * (n // 5),
    "x12_segments": lambda n: "NM1*IL*1~DMG*D8*" * (n // 16),
    "nested_id_keys": lambda n: '"patient":{"id":"' * (n // 17),
    "name_lists": lambda n: '"given": ["Ana", ' * (n // 17),
    "unclosed_parametrize": lambda n: 'parametrize("a", [' * (n // 18),
    "unclosed_table_tests": lambda n: "[]struct{a int}{" * (n // 16),
    "unclosed_inserts": lambda n: "insert into patients (mrn, name, dob) values (" * (n // 47),
    "unended_copies": lambda n: "COPY patients (mrn, name) FROM stdin;\n" * (n // 38),
    "pragma_per_line": lambda n: 'ssn = "518-42-7731"  # phiwarden: allow ssn\n' * (n // 44),
    "pragmas_on_one_line": lambda n: 'ssn="518-42-7731" # phiwarden: allow ssn ; ' * (n // 44),
    "provider_ids_beside_values": lambda n: 'NPI 1234567893 ssn = "518-42-7731"\n' * (n // 35),
    "dense_records": lambda n: "patient Ana Ruiz DOB 1990-01-01 MRN 40981723 " * (n // 45),
    "long_name_list": lambda n: '"given": [' + '"Ana", ' * (n // 7) + "]",
    "yaml_block_lists": lambda n: "given:\n  - Ana\n" * (n // 16),
    "bare_name_lists": lambda n: "given: [Ana, " * (n // 13),
    "erb_tags": lambda n: "dob: <%= Date.new(" * (n // 18),
    "dated_rows": lambda n: 'patients = [("Ana", "Ruiz", "1984-07-19"), ' * (n // 46),
    "error_messages": lambda n: "invalid value 'Ana' for field 'name' Key (a)=(b" * (n // 47),
    "html_cells": lambda n: "<tr><th>name</th><td>" * (n // 22),
    "unclosed_creates": lambda n: "create table t (a int, " * (n // 23) + "insert into t values ('1');",
    "unclosed_person_calls": lambda n: 'Patient("Ana", "Ruiz", LocalDate.of(1984, 7, 19), ' * (n // 50),
    "block_dates": lambda n: "dob { Date.new(" * (n // 15),
    "dicom_json_elements": lambda n: '"00100010": {"vr": "PN", "Value": [{"Alphabetic": "' * (n // 51),
    "sas_data_steps": lambda n: "input mrn $ first $ dob;\ndatalines;\n" * (n // 37),
    "hl7_explicit_nulls": lambda n: 'IN1|""' * (n // 6),
    "person_calls": lambda n: 'Patient::new("Ana", "Ruiz", "1984-07-19"); ' * (n // 43),
    "unicode_dashes": lambda n: "518\u201142\u20117731 " * (n // 12),
    "dash_runs": lambda n: "\u2013" * (n // 3),
    "file_name_ids": lambda n: "/x/Ab_Cd_518-42-7731_" * (n // 21),
    # Delimited tables whose header is a later line (tabular.embedded_cells).
    "table_header_lines": lambda n: "x\n" + "last_name,first_name,dob\n" * (n // 25),
    "table_headers_without_rows": lambda n: "x\n" + "last_name,first_name,dob\n\n" * (n // 26),
    "table_quoted_rows": lambda n: "x\nlast_name,first_name,dob\n" + '"a,""b",c,"d\n' * (n // 13),
    "table_one_long_row": lambda n: "x\nlast_name,first_name,dob\n" + "a," * (n // 2),
    # Numbered tool output (Read's "     1→", cat -n): every line numbered, and arrows that number nothing.
    "numbered_lines": lambda n: "".join(f"{i:>6}\u2192a,b,c\n" for i in range(1, n // 13 + 1)),
    "arrow_runs": lambda n: "1\u2192" * (n // 4),
    # Encoded and hidden text (each is decoded or removed in the detection view).
    "percent_run": lambda n: "%41" * (n // 3),
    "percent_invalid_bytes": lambda n: "%FF%41" * (n // 6),
    "percent_single_escapes": lambda n: "a%20" * (n // 4),
    "percent_encoded_records": lambda n: "q=SSN%20518-42-7731%20" * (n // 22),
    "u_escape_storm": lambda n: "\\u00e9" * (n // 6),
    "backslash_run": lambda n: "\\" * n + "u0041",
    "escaped_backslash_escapes": lambda n: "\\\\u0041" * (n // 7),
    "surrogate_halves": lambda n: "\\ud83d" * (n // 6),
    "base64_text_run": lambda n: _b64(b"Patient Ana Ruiz SSN 518-42-7731 " * (n // 44)),
    "base64_blobs": lambda n: (_b64(b"Hello Ana Ruiz 1984") + " ") * (n // 29),
    "base64_binary_run": lambda n: _b64(bytes(range(256)) * (n // 341)),
    "base64_wrapped": lambda n: base64.encodebytes(b"MRN 40981723 Ana Ruiz " * (n // 30)).decode(),
    "base64_nested": lambda n: _b64(_b64(_b64(b"SSN 518-42-7731 " * (n // 38)).encode()).encode()),
    "base64_near_misses": lambda n: "Ab1Cd2Ef3Gh4Ij5K " * (n // 17),
    "invisible_storm": lambda n: "5\u200d" * (n // 4),
    "combining_marks": lambda n: "a\u0301" * (n // 3),
    "folded_digits": lambda n: "\u0665" * (n // 2),
    "tag_characters": lambda n: "".join(chr(0xE0000 + ord(c)) for c in "SSN 518-42-7731 ") * (n // 64),
}
# Scanned in prose mode (what the LLM gateway does with prompts).
PROSE_INPUTS: dict[str, Callable[[int], str]] = {
    "capitalised_pairs": lambda n: "Ab Cd. " * (n // 7),
    "one_capitalised_run": lambda n: "Ab" + " Cd" * (n // 3),
    "cued_names": lambda n: "to Ana Ruiz her " * (n // 16),
    "honorifics": lambda n: "Dr. Ab " * (n // 7),
    "greetings": lambda n: "Hi Ana, " * (n // 8),
    "possessives": lambda n: "Ana Ruiz's " * (n // 11),
    "visit_dates": lambda n: "seen on 03/14/2025 " * (n // 19),
    "care_words": lambda n: "appointment " * (n // 12) + "to Ana Ruiz",
    "name_particles": lambda n: "Ana" + " da" * (n // 3) + " Cruz",
    "cue_word_run": lambda n: "To " * (n // 3) + "Ana Ruiz",
    "mailboxes": lambda n: "to ana.ruiz84@gmail.com " * (n // 24),
    "path_names": lambda n: "/Ana Ruiz.txt " * (n // 14),
    "labelled_ids": lambda n: "Member ID W123456789 " * (n // 21),
    "reminder_verbs": lambda n: "reminding Ana Ruiz " * (n // 19),
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seconds(text: str, *, prose: bool = False, repeat: int = 1) -> float:
    """The best of `repeat` scans: on a shared machine one slow run would read as super-linear."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        scan_text(text, prose=prose)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes of the larger input")
    parser.add_argument("--only", default="", help="run the inputs whose name holds this")
    parser.add_argument("--repeat", type=int, default=3, help="scans per input and size (the best counts)")
    args = parser.parse_args()
    scan_text("warm up " * 100, prose=True)
    figures: dict[str, dict[str, float]] = {}
    cases = [(name, build, False) for name, build in INPUTS.items()]
    cases += [(f"prose:{name}", build, True) for name, build in PROSE_INPUTS.items()]
    for name, build, prose in cases:
        if args.only not in name:
            continue
        small, large = build(args.size // 2), build(args.size)
        t_small = seconds(small, prose=prose, repeat=args.repeat)
        t_large = seconds(large, prose=prose, repeat=args.repeat)
        figures[name] = {
            "mb_s": round(len(large) / 1e6 / t_large, 1),
            "time_ratio_2x_input": round(t_large / max(t_small, 1e-9), 2),
        }
        rate, ratio = figures[name]["mb_s"], figures[name]["time_ratio_2x_input"]
        print(f"{name:28} {rate:8.1f} MB/s   x2 input -> x{ratio} time")
    worst = max(f["time_ratio_2x_input"] for f in figures.values())
    emit({"inputs": figures, "worst_time_ratio_for_2x_input": worst, "linear": worst < 3.0})


if __name__ == "__main__":
    main()
