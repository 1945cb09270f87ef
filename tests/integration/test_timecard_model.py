"""A timecard job through the real app and worker with a language model configured
(``CONVEYOR_AI_PROVIDER=openai``): the worker builds the real OpenAI-compatible adapter, the unsure
row goes over HTTP to a local server standing in for a vLLM/Ollama endpoint, and the answer comes
back as the row's entry, a ``model_extracted`` finding and a review item.

The server is the one fake here, at the edge we cannot reach (a model); it answers as an
OpenAI-compatible server does (the shape recorded in tests/contracts) and keeps what it was sent.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from conveyor.settings import Settings
from conveyor.worker import WorkerProcess
from tests.sheets import xlsx_bytes
from tests.support import dispose_app, keyed_app
from tests.unit.test_ai_contracts import RecordingServer, Reply

MONDAY = dt.date(2024, 3, 4)
ROWS: list[list[object]] = [
    ["Employee", "Date", "Time In", "Time Out", "Rate"],
    ["Ada", MONDAY, dt.time(8), dt.time(16), 12],
    ["Ada", MONDAY + dt.timedelta(days=1), "around 8", "after 5", 12],
]
ANSWER = {
    "entries": [
        {
            "sheet": "Week",
            "row": 3,
            "employee": "Ada",
            "date": "2024-03-05",
            "start": "08:00",
            "end": "17:15",
            "hours": None,
            "break_hours": None,
            "rate": 12,
        }
    ]
}


@pytest.fixture
def model_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    server.reply = Reply(
        body={
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "model": "local-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": orjson.dumps(ANSWER).decode()},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_unsure_row_is_read_by_the_configured_model(
    database_url: str, tmp_path: Path, model_server: RecordingServer
) -> None:
    settings = Settings(
        database_url=database_url,
        storage_url=f"file://{tmp_path / 'blobs'}",
        data_dir=tmp_path,
        ai_provider="openai",
        ai_model="local-model",
        ai_base_url=f"{model_server.url}/v1",
    )
    client, keys = keyed_app(settings, "admin")
    headers = keys["admin"]
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = client.post(
        "/api/upload",
        headers=headers,
        files={"file": ("card.xlsx", xlsx_bytes({"Week": ROWS}), mime)},
        data={"pipeline": "timecard"},
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["jobs"][0]["id"]
    assert WorkerProcess(settings).run(idle_exit=True) == 1

    [request] = model_server.seen
    assert request.path == "/v1/chat/completions" and request.body["model"] == "local-model"
    assert (
        "row 3: A=Ada | B=2024-03-05 | C=around 8 | D=after 5 | E=12"
        in request.body["messages"][1]["content"]
    )

    job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
    assert job["status"] == "succeeded" and job["review_status"] == "pending"
    records = client.get(f"/api/jobs/{job_id}/records", headers=headers).json()["items"]
    entries = {record["data"]["source"]: record["data"] for record in records if record["kind"] == "entry"}
    assert entries["Week!A3:E3"]["start"] == "2024-03-05T08:00"
    assert entries["Week!A3:E3"]["hours"] == 9.25 and entries["Week!A3:E3"]["confidence"] == 0.75
    assert entries["Week!A2:E2"]["confidence"] == 1.0
    [week] = [record["data"] for record in records if record["kind"] == "week"]
    assert week["hours"] == 17.25 and week["total_pay"] == 207.0
    findings = client.get(f"/api/jobs/{job_id}/findings", headers=headers).json()["items"]
    [finding] = [finding for finding in findings if finding["rule"] == "model_extracted"]
    assert "came from openai:local-model" in finding["message"] and finding["ref"] == "Week!A3:E3"
    queue = client.get("/api/review-queue", headers=headers).json()["items"]
    assert [item["reasons"] for item in queue if item["job_id"] == job_id] == [["model_extracted"]]
    dispose_app(client)
