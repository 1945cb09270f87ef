"""``GET /api/jobs/{id}/report`` through the real app: a ``records`` job whose values are formulas
comes back neutralised in xlsx and csv and intact in json; unknown jobs, unfinished jobs and
unknown formats get their error statuses."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from python_calamine import CalamineWorkbook

from conveyor.settings import Settings
from conveyor.worker import WorkerProcess
from tests.support import AppClient, dispose_app, keyed_app

PAYLOAD = "=cmd|' /C calc'!A0"
ROWS = [
    {"id": 1, "name": PAYLOAD, "amount": -2, "day": "2024-03-01"},
    {"id": 2, "name": "@SUM(A1)", "amount": 3.5, "day": "2024-03-02"},
    {"id": 3, "name": "plain", "amount": 0, "day": "2024-03-03"},
]


@dataclass
class Api:
    client: AppClient
    settings: Settings
    submitter: dict[str, str]
    viewer: dict[str, str]

    def submit(self, rows: list[dict[str, object]]) -> int:
        response = self.client.post(
            "/api/upload",
            headers=self.submitter,
            files={"file": ("rows.json", orjson.dumps(rows), "application/json")},
            data={"pipeline": "records", "params": orjson.dumps({"key": "id"}).decode()},
        )
        assert response.status_code == 201, response.text
        job_id: int = response.json()["jobs"][0]["id"]
        return job_id

    def run_jobs(self) -> int:
        return WorkerProcess(self.settings).run(idle_exit=True)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url, storage_url=f"file://{tmp_path / 'blobs'}", data_dir=tmp_path
    )
    client, headers = keyed_app(settings, "submitter", "viewer")
    yield Api(client, settings, headers["submitter"], headers["viewer"])
    dispose_app(client)


def test_all_three_formats_of_a_records_job(api: Api) -> None:
    job_id = api.submit(ROWS)
    assert api.run_jobs() == 1
    assert api.client.get(f"/api/jobs/{job_id}", headers=api.viewer).json()["status"] == "succeeded"

    xlsx = api.client.get(f"/api/jobs/{job_id}/report", params={"format": "xlsx"}, headers=api.viewer)
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert xlsx.headers["content-disposition"] == f'attachment; filename="job-{job_id}.xlsx"'
    book = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content))
    assert book.sheet_names == ["record", "Findings"]
    rows = book.get_sheet_by_name("record").to_python()
    # Column order is the data's own: PostgreSQL's jsonb keeps keys in its own order, not the file's.
    assert rows[0][0] == "key"
    assert sorted(rows[0][1:]) == ["amount", "day", "id", "name"]
    cells = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(cell["name"], cell["amount"]) for cell in sorted(cells, key=lambda c: c["id"])] == [
        ("'" + PAYLOAD, -2),
        ("'@SUM(A1)", 3.5),
        ("plain", 0),
    ]
    assert {cell["day"] for cell in cells} == {dt.date(2024, 3, day) for day in (1, 2, 3)}
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert not re.search(r"<f[ >]", xml)

    text = api.client.get(f"/api/jobs/{job_id}/report", params={"format": "csv"}, headers=api.viewer)
    assert text.status_code == 200
    assert text.headers["content-type"] == "text/csv; charset=utf-8"
    assert text.headers["content-disposition"] == f'attachment; filename="job-{job_id}.csv"'
    assert text.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(text.content.decode("utf-8-sig"), newline="")))
    assert sorted(row["name"] for row in table) == sorted(["'" + PAYLOAD, "'@SUM(A1)", "plain"])
    assert {row["key"]: row["amount"] for row in table} == {"1": "-2", "2": "3.5", "3": "0"}

    data = api.client.get(f"/api/jobs/{job_id}/report", params={"format": "json"}, headers=api.viewer)
    assert data.status_code == 200
    assert data.headers["content-type"] == "application/json"
    assert data.headers["content-disposition"] == f'attachment; filename="job-{job_id}.json"'
    document = orjson.loads(data.content)
    assert document["job_id"] == job_id
    assert document["pipeline"] == "records"
    assert sorted((record["data"] for record in document["records"]), key=lambda row: row["id"]) == ROWS
    assert document["findings"] == []


def test_errors_unknown_job_unfinished_job_unknown_format_no_key(api: Api) -> None:
    missing = api.client.get("/api/jobs/999999/report", params={"format": "csv"}, headers=api.viewer)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    queued = api.submit(ROWS)  # not run: still queued
    conflict = api.client.get(f"/api/jobs/{queued}/report", params={"format": "csv"}, headers=api.viewer)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"
    assert "queued" in conflict.json()["error"]["message"]

    bad = api.client.get(f"/api/jobs/{queued}/report", params={"format": "pdf"}, headers=api.viewer)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"

    anonymous = api.client.get(f"/api/jobs/{queued}/report")
    assert anonymous.status_code == 401


def test_a_failed_job_has_no_report(api: Api) -> None:
    job_id = api.submit([])
    response = api.client.post(
        "/api/upload",
        headers=api.submitter,
        files={"file": ("broken.json", b'{"not": "closed"', "application/json")},
        data={"pipeline": "records"},
    )
    assert response.status_code == 201, response.text
    broken = response.json()["jobs"][0]["id"]
    api.run_jobs()
    assert api.client.get(f"/api/jobs/{broken}", headers=api.viewer).json()["status"] == "failed"
    conflict = api.client.get(f"/api/jobs/{broken}/report", params={"format": "json"}, headers=api.viewer)
    assert conflict.status_code == 409
    empty = api.client.get(f"/api/jobs/{job_id}/report", params={"format": "json"}, headers=api.viewer)
    assert empty.status_code == 200
    assert orjson.loads(empty.content)["records"] == []
