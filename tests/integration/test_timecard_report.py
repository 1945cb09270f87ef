"""``GET /api/jobs/{id}/report`` of a ``timecard`` job through the real app and worker: a timecard
whose employee names are formula-injection strings comes back neutralised in xlsx and csv and intact
in json, with the Department of Labor's worked example (45 hours at $12.00: 40 regular and 5
overtime hours, $480.00 + $90.00 = $570.00) in its week row and the findings that cite the rules."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from python_calamine import CalamineWorkbook

from conveyor.extractors.spreadsheet import column_letters
from conveyor.reports import FORMULA_TRIGGERS, MAX_COLUMN_WIDTH, MIN_COLUMN_WIDTH
from conveyor.settings import Settings
from conveyor.worker import WorkerProcess
from tests.sheets import xlsx_bytes
from tests.support import AppClient, dispose_app, keyed_app
from tests.unit.test_reports import column_widths

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONDAY = dt.date(2024, 3, 4)
SUNDAY = dt.date(2024, 3, 3)  # the FLSA workweek's default first day
OVERTIME_WORKER = '=HYPERLINK("http://x","y")'
UNDERPAID_WORKER = "+1+1"
# Each name as written in the sheet, and as extraction gives it: a name's surrounding whitespace is
# trimmed, so the tab-prefixed one arrives as "=1+1", still a formula to a spreadsheet.
NAMES = {
    OVERTIME_WORKER: OVERTIME_WORKER,
    UNDERPAID_WORKER: UNDERPAID_WORKER,
    "-2+3": "-2+3",
    "@SUM(A1)": "@SUM(A1)",
    "\t=1+1": "=1+1",
    "\uff1d1+1": "\uff1d1+1",  # a full-width equals sign
}
NOTES = ["=1+2", "+A1", "-A1+1", "@A1", "\t+1", "\uff1dSUM(1)", "=cmd|' /C calc'!A0"]
HEADER = ["Employee", "Date", "Time In", "Time Out", "Rate", "Note"]


def timecard_rows() -> list[list[object]]:
    """The overtime worker 8:00-17:00 Monday to Friday (45 hours) at $12.00; the underpaid one a
    Monday at $5.00; everyone else a Monday at $15.00. Every row has a hostile note."""
    rows: list[list[object]] = [[*HEADER]]
    for offset in range(5):
        day = MONDAY + dt.timedelta(days=offset)
        rows.append([OVERTIME_WORKER, day, dt.time(8), dt.time(17), 12, NOTES[offset]])
    rows.append([UNDERPAID_WORKER, MONDAY, dt.time(8), dt.time(16), 5, NOTES[5]])
    for name in list(NAMES)[2:]:
        rows.append([name, MONDAY, dt.time(8), dt.time(16), 15, NOTES[6]])
    return rows


ENTRY_COUNT = 5 + 1 + len(NAMES) - 2
OVERTIME_WEEK = {
    "employee": OVERTIME_WORKER,
    "week_start": SUNDAY.isoformat(),
    "hours": 45.0,
    "regular_hours": 40.0,
    "overtime_hours": 5.0,
    "double_time_hours": 0.0,
    "rate": 12.0,
    "regular_pay": 480.0,
    "overtime_pay": 90.0,
    "total_pay": 570.0,
}


@dataclass
class Api:
    client: AppClient
    settings: Settings
    submitter: dict[str, str]
    viewer: dict[str, str]

    def timecard_job(self) -> int:
        content = xlsx_bytes({"Timecard": timecard_rows()})
        response = self.client.post(
            "/api/upload",
            headers=self.submitter,
            files={"file": ("hostile.xlsx", content, XLSX)},
            data={"pipeline": "timecard"},
        )
        assert response.status_code == 201, response.text
        job_id: int = response.json()["jobs"][0]["id"]
        assert WorkerProcess(self.settings).run(idle_exit=True) == 1
        job = self.client.get(f"/api/jobs/{job_id}", headers=self.viewer).json()
        assert job["status"] == "succeeded", job
        assert job["review_status"] == "pending", "the minimum-wage error asks for review"
        return job_id

    def report(self, job_id: int, format: str) -> bytes:
        response = self.client.get(
            f"/api/jobs/{job_id}/report", params={"format": format}, headers=self.viewer
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"] == f'attachment; filename="job-{job_id}.{format}"'
        return response.content


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url, storage_url=f"file://{tmp_path / 'blobs'}", data_dir=tmp_path
    )
    client, headers = keyed_app(settings, "submitter", "viewer")
    yield Api(client, settings, headers["submitter"], headers["viewer"])
    dispose_app(client)


def neutralised(text: str) -> str:
    return "'" + text


def assert_no_live_formula_text(values: list[Any], where: str) -> None:
    """No text a spreadsheet would evaluate: whatever starts with a trigger was given an apostrophe."""
    live = [value for value in values if isinstance(value, str) and value[:1] in FORMULA_TRIGGERS]
    assert live == [], f"{where}: text that a spreadsheet evaluates"


def sheet_rows(book: CalamineWorkbook, name: str) -> list[dict[str, Any]]:
    header, *rows = book.get_sheet_by_name(name).to_python()
    titles = [str(title) for title in header]
    return [dict(zip(titles, row, strict=True)) for row in rows]


def test_the_xlsx_report_is_neutralised_frozen_filtered_and_sized(api: Api) -> None:
    assert all(name[:1] in FORMULA_TRIGGERS for name in NAMES.values()), "every name stays hostile"
    job_id = api.timecard_job()
    content = api.report(job_id, "xlsx")
    book = CalamineWorkbook.from_filelike(io.BytesIO(content))
    assert book.sheet_names == ["Entries", "Weeks", "Findings"]

    entries = sheet_rows(book, "Entries")
    assert len(entries) == ENTRY_COUNT
    assert {row["employee"] for row in entries} == {neutralised(name) for name in NAMES.values()}
    overtime_days = [row for row in entries if row["employee"] == neutralised(OVERTIME_WORKER)]
    assert [(row["date"], row["start"], row["end"], row["hours"]) for row in overtime_days] == [
        (
            MONDAY + dt.timedelta(days=offset),
            dt.datetime.combine(MONDAY + dt.timedelta(days=offset), dt.time(8)),
            dt.datetime.combine(MONDAY + dt.timedelta(days=offset), dt.time(17)),
            9.0,
        )
        for offset in range(5)
    ]
    assert [row["source"] for row in overtime_days] == [f"Timecard!A{row}:E{row}" for row in range(2, 7)]

    weeks = {row["employee"]: row for row in sheet_rows(book, "Weeks")}
    assert set(weeks) == {neutralised(name) for name in NAMES.values()}
    assert weeks[neutralised(OVERTIME_WORKER)] == {
        "key": neutralised(f"{OVERTIME_WORKER}:{SUNDAY.isoformat()}"),
        **OVERTIME_WEEK,
        "employee": neutralised(OVERTIME_WORKER),
        "week_start": SUNDAY,  # an ISO date becomes an Excel date
    }

    findings = {row["rule"]: row for row in sheet_rows(book, "Findings")}
    assert set(findings) == {"overtime", "minimum_wage"}
    overtime, minimum = findings["overtime"], findings["minimum_wage"]
    assert overtime["severity"] == "info"
    assert overtime["message"].startswith(neutralised(OVERTIME_WORKER))
    assert "45.00 hours" in overtime["message"] and "$90.00 overtime" in overtime["message"]
    assert "29 CFR 778.107" in overtime["message"]
    assert minimum["severity"] == "error"
    assert minimum["message"].startswith(neutralised(UNDERPAID_WORKER))
    assert "$5.00" in minimum["message"] and "minimum wage of $7.25" in minimum["message"]
    assert minimum["ref"] == f"week:{UNDERPAID_WORKER}:{SUNDAY.isoformat()}"

    for name in book.sheet_names:
        values = [value for row in book.get_sheet_by_name(name).to_python() for value in row]
        assert_no_live_formula_text(values, name)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for number, name in enumerate(book.sheet_names, start=1):
            xml = archive.read(f"xl/worksheets/sheet{number}.xml").decode()
            assert not re.search(r"<f[ >]", xml), f"{name}: a formula"
            pane = re.search(r"<pane [^>]*/>", xml)
            assert pane is not None, f"{name}: no frozen pane"
            assert 'ySplit="1"' in pane.group() and 'state="frozen"' in pane.group()
            header, *rows = book.get_sheet_by_name(name).to_python()
            last = f"{column_letters(len(header) - 1)}{len(rows) + 1}"
            assert f'<autoFilter ref="A1:{last}"/>' in xml, name
            widths = column_widths(xml)
            assert len(widths) == len(header), name
            assert all(width >= MIN_COLUMN_WIDTH for width in widths), name
            for column, title in enumerate(header):
                longest = max(len(str(row[column])) for row in [header, *rows])
                longest = min(longest, MAX_COLUMN_WIDTH - 2)  # long messages wrap at the cap
                assert widths[column] >= longest, f"{name}: column {title} is narrower than its text"


def test_the_csv_report_is_neutralised_the_same_way(api: Api) -> None:
    job_id = api.timecard_job()
    content = api.report(job_id, "csv")
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert len(rows) == ENTRY_COUNT
    assert {row["kind"] for row in rows} == {"entry"}, "a timecard's csv is its entries"
    assert {row["employee"] for row in rows} == {neutralised(name) for name in NAMES.values()}
    overtime_days = [row for row in rows if row["employee"] == neutralised(OVERTIME_WORKER)]
    assert [(row["date"], row["hours"], row["rate"]) for row in overtime_days] == [
        ((MONDAY + dt.timedelta(days=offset)).isoformat(), "9.0", "12.0") for offset in range(5)
    ]
    [underpaid] = [row for row in rows if row["employee"] == neutralised(UNDERPAID_WORKER)]
    assert (underpaid["hours"], underpaid["rate"]) == ("8.0", "5.0")
    assert_no_live_formula_text([value for row in rows for value in row.values()], "csv")


def test_the_json_report_keeps_the_values_intact(api: Api) -> None:
    job_id = api.timecard_job()
    document = orjson.loads(api.report(job_id, "json"))
    assert (document["job_id"], document["pipeline"]) == (job_id, "timecard")
    records = document["records"]
    entries = [record["data"] for record in records if record["kind"] == "entry"]
    assert len(entries) == ENTRY_COUNT
    assert {entry["employee"] for entry in entries} == set(NAMES.values())
    assert sum(entry["hours"] for entry in entries if entry["employee"] == OVERTIME_WORKER) == 45.0

    weeks = {record["data"]["employee"]: record for record in records if record["kind"] == "week"}
    assert set(weeks) == set(NAMES.values())
    assert weeks[OVERTIME_WORKER]["key"] == f"{OVERTIME_WORKER}:{SUNDAY.isoformat()}"
    assert weeks[OVERTIME_WORKER]["data"] == OVERTIME_WEEK
    assert weeks[UNDERPAID_WORKER]["data"]["total_pay"] == 40.0

    findings = {finding["rule"]: finding for finding in document["findings"]}
    assert set(findings) == {"overtime", "minimum_wage"}
    assert findings["overtime"]["severity"] == "info"
    assert findings["overtime"]["message"] == (
        f"{OVERTIME_WORKER}, week of 2024-03-03: 45.00 hours, 5.00 over 40 at 1.5 x $12.00"
        " = $90.00 overtime (29 CFR 778.107)"
    )
    assert findings["overtime"]["ref"] == f"week:{OVERTIME_WORKER}:2024-03-03"
    assert findings["minimum_wage"]["severity"] == "error"
    message = findings["minimum_wage"]["message"]
    assert message.startswith(f"{UNDERPAID_WORKER}, week of 2024-03-03: 8.00 hours")
    assert "below the minimum wage of $7.25" in message and "29 U.S.C. 206" in message
    assert "the week pays $58.00, $18.00 more" in message  # 8 x $7.25 = $58.00 against $40.00 paid
