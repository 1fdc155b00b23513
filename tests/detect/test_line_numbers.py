"""Line numbers a tool prints before every line (Claude Code's Read, `cat -n`, `nl`) are not read as
part of the line: an HL7 segment or a table's header still starts it. Findings are reported over the
text as given."""

from __future__ import annotations

import pytest

from phiwarden.detect import scan_text

HL7 = (
    "MSH|^~\\&|EPIC|HOSP|||202501011200||ADT^A01|1|P|2.5\n"
    "PID|1||00482913^^^HOSP^MR||OKONKWO^MARISOL||19610314|F|||14 ELM ST^^BOSTON^MA^02118\n"
)
CSV = "last_name,first_name,dob,mrn\nOkonkwo,Marisol,1984-07-12,00482913\nReyes,Tomas,1990-02-03,00591234\n"


def numbered(text: str, form: str, first: int = 1) -> str:
    return "".join(form.format(n=n, line=line) for n, line in enumerate(text.splitlines(True), first))


def found(text: str, path: str | None = None) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan_text(text, path=path)]


@pytest.mark.parametrize("form", ["{n:>6}\u2192{line}", "{n}\u2192{line}", "{n:>6}\t{line}"])
@pytest.mark.parametrize(("text", "path"), [(HL7, None), (HL7, "adt.hl7"), (CSV, None), (CSV, "export.csv")])
def test_numbered_lines_are_read_as_the_lines_they_number(form: str, text: str, path: str | None) -> None:
    assert found(numbered(text, form), path) == found(text, path) != []


def test_a_read_from_an_offset_is_numbered_from_there() -> None:
    assert found(numbered(HL7, "{n:>6}\u2192{line}", first=120)) == found(HL7)


@pytest.mark.parametrize(
    "text",
    [
        # A TSV's own index column: not padded to six columns, so it stays a column.
        "1\tOkonkwo\t1984-07-12\n2\tReyes\t1990-02-03\n",
        # One numbered line, or numbers that do not follow one another, number nothing.
        "     1\u2192PID|1||00482913\n",
        "     1\u2192a\n     5\u2192b\n",
    ],
)
def test_what_is_not_numbered_output_keeps_its_numbers(text: str) -> None:
    from phiwarden.detect.text import Text

    assert Text(text).data == text.encode()
