"""Human review through the real app: a timecard with a missing clock-out is queued for review, a
correction recomputes its week and findings, approvals and rejections close items, and each
decision is in the audit trail with its before and after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.settings import Settings
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.results import open_review
from conveyor.worker import WorkerProcess
from tests.sheets import xlsx_bytes
from tests.support import AppClient, dispose_app, keyed_app

HEADER = ["Employee", "Date", "Time In", "Time Out", "Rate"]
MONDAY = dt.date(2024, 3, 4)
WEDNESDAY = MONDAY + dt.timedelta(days=2)


def week_rows(name: str, rate: float, *, missing_out: bool = True) -> list[list[object]]:
    """Monday to Friday 8:00-17:00 (9 hours a day); Wednesday's clock-out missing if asked."""
    rows: list[list[object]] = []
    for offset in range(5):
        day = MONDAY + dt.timedelta(days=offset)
        end = None if missing_out and day == WEDNESDAY else dt.time(17)
        rows.append([name, day, dt.time(8), end, rate])
    return rows


@dataclass
class Api:
    client: AppClient
    settings: Settings
    keys: dict[str, dict[str, str]]

    def get(self, path: str, role: str = "reviewer", **options: Any) -> httpx.Response:
        return self.client.request("GET", path, headers=self.keys[role], **options)

    def post(self, path: str, role: str = "reviewer", **options: Any) -> httpx.Response:
        return self.client.request("POST", path, headers=self.keys[role], **options)

    def timecard_job(self, rows: list[list[object]], name: str = "card.xlsx") -> int:
        content = xlsx_bytes({"Week": [HEADER, *rows]})
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = self.post(
            "/api/upload", "submitter", files={"file": (name, content, mime)}, data={"pipeline": "timecard"}
        )
        assert response.status_code == 201, response.text
        job_id: int = response.json()["jobs"][0]["id"]
        assert WorkerProcess(self.settings).run(idle_exit=True) == 1
        job = self.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job
        return job_id

    def item_of(self, job_id: int) -> dict[str, Any]:
        queue = self.get("/api/review-queue", params={"pipeline": "timecard"})
        assert queue.status_code == 200, queue.text
        items: list[dict[str, Any]] = queue.json()["items"]
        [item] = [item for item in items if item["job_id"] == job_id]
        return item

    def records(self, job_id: int, kind: str) -> list[dict[str, Any]]:
        items = self.get(f"/api/jobs/{job_id}/records").json()["items"]
        return [record["data"] for record in items if record["kind"] == kind]

    def findings(self, job_id: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/api/jobs/{job_id}/findings").json()["items"]
        return items


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        database_url=database_url, storage_url=f"file://{tmp_path / 'blobs'}", data_dir=tmp_path
    )
    client, keys = keyed_app(settings, "submitter", "reviewer", "viewer", "admin")
    yield Api(client, settings, keys)
    dispose_app(client)


def test_a_correction_recomputes_the_week_and_is_audited(api: Api) -> None:
    job_id = api.timecard_job(week_rows("Ada", 12))
    assert api.get(f"/api/jobs/{job_id}").json()["review_status"] == "pending"
    [missing] = [finding for finding in api.findings(job_id) if finding["rule"] == "missing_punch"]
    assert missing["severity"] == "error"
    [week] = api.records(job_id, "week")
    assert week["hours"] == 36.0 and week["overtime_hours"] == 0.0

    item = api.item_of(job_id)
    assert item["reasons"] == ["rule_violation"] and item["status"] == "pending"
    assert item["created_at"]
    by_reason = api.get("/api/review-queue", params={"reason": "rule_violation"}).json()["items"]
    assert [found["id"] for found in by_reason] == [item["id"]]
    assert api.get("/api/review-queue", params={"reason": "low_confidence"}).json()["items"] == []
    assert api.get("/api/review-queue", params={"older_than_minutes": 60}).json()["items"] == []
    aged = api.get("/api/review-queue", params={"older_than_minutes": 0}).json()["items"]
    assert [found["id"] for found in aged] == [item["id"]]
    assert api.get("/api/review-queue", params={"pipeline": "records"}).json()["items"] == []

    source = missing["ref"]
    response = api.post(
        f"/api/review/{item['id']}",
        json={
            "decision": "correct",
            "data": {"entries": [{"source": source, "end": "17:00"}]},
            "comment": "per Ada",
        },
    )
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["review"]["status"] == "corrected"
    assert decided["job"]["review_status"] == "approved"
    assert "approve" in decided["message"]

    # 45 hours at $12.00: 40 regular and 5 overtime, $480.00 + $90.00 (DOL Fact Sheet #23 style).
    [week] = api.records(job_id, "week")
    assert week["hours"] == 45.0 and week["regular_hours"] == 40.0 and week["overtime_hours"] == 5.0
    assert (week["regular_pay"], week["overtime_pay"], week["total_pay"]) == (480.0, 90.0, 570.0)
    [entry] = [entry for entry in api.records(job_id, "entry") if entry["source"] == source]
    assert entry["end"] == f"{WEDNESDAY.isoformat()}T17:00" and entry["hours"] == 9.0
    rules = {finding["rule"] for finding in api.findings(job_id)}
    assert "missing_punch" not in rules and "overtime" in rules
    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["review_status"] == "approved" and job["summary"]["hours"] == 45.0
    assert api.get("/api/review-queue").json()["items"] == []

    trail = api.get("/api/audit", params={"target": f"review:{item['id']}"})
    assert trail.status_code == 200, trail.text
    [event] = trail.json()["items"]
    assert event["action"] == "review.correct" and event["actor"].startswith("reviewer key")
    assert event["before"]["findings_by_rule"]["missing_punch"] == 1
    assert "missing_punch" not in event["after"]["findings_by_rule"]
    before_entry = next(record for record in event["before"]["records"] if record["key"] == source)
    after_entry = next(record for record in event["after"]["records"] if record["key"] == source)
    assert before_entry["data"]["end"] is None and after_entry["data"]["end"].endswith("T17:00")
    after_week = next(record for record in event["after"]["records"] if record["kind"] == "week")
    assert after_week["data"]["hours"] == 45.0
    assert event["after"]["comment"] == "per Ada"

    again = api.post(f"/api/review/{item['id']}", json={"decision": "approve"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_approve_and_reject_close_the_item(api: Api) -> None:
    approved_job = api.timecard_job(week_rows("Ada", 12), "ada.xlsx")
    rejected_job = api.timecard_job(week_rows("Grace", 13), "grace.xlsx")
    first, second = api.item_of(approved_job), api.item_of(rejected_job)
    queue = api.get("/api/review-queue").json()["items"]
    assert [item["id"] for item in queue] == [first["id"], second["id"]]  # oldest first
    page = api.get("/api/review-queue", params={"limit": 1}).json()
    assert [item["id"] for item in page["items"]] == [first["id"]]
    rest = api.get("/api/review-queue", params={"cursor": page["next_cursor"]}).json()["items"]
    assert [item["id"] for item in rest] == [second["id"]]

    assert api.post(f"/api/review/{first['id']}", json={"decision": "approve"}).status_code == 200
    assert (
        api.post(f"/api/review/{second['id']}", json={"decision": "reject", "comment": "no"}).status_code
        == 200
    )
    assert api.get(f"/api/jobs/{approved_job}").json()["review_status"] == "approved"
    assert api.get(f"/api/jobs/{rejected_job}").json()["review_status"] == "rejected"
    assert api.get("/api/review-queue").json()["items"] == []
    # The data is untouched: the missing punch is still a finding.
    assert "missing_punch" in {finding["rule"] for finding in api.findings(approved_job)}

    conflict = api.post(f"/api/review/{second['id']}", json={"decision": "approve"})
    assert conflict.status_code == 409
    assert api.get(f"/api/jobs/{rejected_job}").json()["review_status"] == "rejected"

    trail = api.get("/api/audit", "admin").json()["items"]
    decisions = [
        (event["action"], event["target"]) for event in trail if event["action"].startswith("review.")
    ]
    assert decisions == [
        ("review.reject", f"review:{second['id']}"),
        ("review.approve", f"review:{first['id']}"),
    ]
    reject = next(event for event in trail if event["action"] == "review.reject")
    assert reject["before"]["review_status"] == "pending" and reject["after"]["review_status"] == "rejected"


def test_bad_corrections_are_422_naming_the_field_and_change_nothing(api: Api) -> None:
    job_id = api.timecard_job(week_rows("Ada", 12))
    item = api.item_of(job_id)
    source = next(f["ref"] for f in api.findings(job_id) if f["rule"] == "missing_punch")
    cases = [
        ({"entries": [{"source": source, "end": "25:99"}]}, "data.entries[0].end"),
        ({"entries": [{"source": source, "date": "2024-02-30"}]}, "data.entries[0].date"),
        ({"entries": [{"source": source, "hours": "lots"}]}, "data.entries[0].hours"),
        ({"entries": [{"source": "Week!Z99:Z99", "end": "17:00"}]}, "data.entries[0].source"),
        ({"entries": [{"source": source, "colour": "red"}]}, "data.entries[0].colour"),
        ({"rows": []}, "data"),
    ]
    for data, field in cases:
        response = api.post(f"/api/review/{item['id']}", json={"decision": "correct", "data": data})
        assert response.status_code == 422, (data, response.text)
        assert response.json()["error"]["message"].startswith(field), response.text
    assert api.item_of(job_id)["status"] == "pending"
    assert api.get(f"/api/jobs/{job_id}").json()["review_status"] == "pending"
    assert [week["hours"] for week in api.records(job_id, "week")] == [36.0]
    assert not any(e["action"].startswith("review.") for e in api.get("/api/audit").json()["items"])


def test_other_pipelines_corrections_replace_the_named_records(api: Api) -> None:
    response = api.post(
        "/api/upload",
        "submitter",
        files={"file": ("rows.json", b'[{"id": 1, "name": "Ada"}]', "application/json")},
        data={"pipeline": "records", "params": '{"key": "id"}'},
    )
    job_id = response.json()["jobs"][0]["id"]
    assert WorkerProcess(api.settings).run(idle_exit=True) == 1
    [record] = api.get(f"/api/jobs/{job_id}/records").json()["items"]
    engine = create_database_engine(api.settings.resolved_database_url)
    try:
        with session_factory(engine).begin() as session:
            item_id = open_review(session, job_id=job_id, pipeline="records", reasons=["sampled"]).id
    finally:
        engine.dispose()
    correction = {
        "records": [{"kind": record["kind"], "key": record["key"], "data": {"id": 1, "name": "Ada L."}}]
    }
    decided = api.post(f"/api/review/{item_id}", json={"decision": "correct", "data": correction})
    assert decided.status_code == 200, decided.text
    assert decided.json()["changed_records"] == 1
    [after] = api.get(f"/api/jobs/{job_id}/records").json()["items"]
    assert after["data"] == {"id": 1, "name": "Ada L."}
    [event] = api.get("/api/audit", params={"target": f"review:{item_id}"}).json()["items"]
    assert event["before"]["records"][0]["data"]["name"] == "Ada"
    assert event["after"]["records"][0]["data"]["name"] == "Ada L."


def test_only_reviewers_decide(api: Api) -> None:
    job_id = api.timecard_job(week_rows("Ada", 12))
    item = api.item_of(job_id)
    for role in ("viewer", "submitter"):
        assert api.get("/api/review-queue", role).status_code == 403
        assert api.post(f"/api/review/{item['id']}", role, json={"decision": "approve"}).status_code == 403
        assert api.get("/api/audit", role).status_code == 403
    assert api.item_of(job_id)["status"] == "pending"
    assert api.post("/api/review/999999", json={"decision": "approve"}).status_code == 404
    bad = api.post(f"/api/review/{item['id']}", json={"decision": "maybe"})
    assert bad.status_code == 422
