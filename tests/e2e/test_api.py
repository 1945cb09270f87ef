"""The HTTP API of a real `conveyor serve` process (with one worker), on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from tests.support import free_port, start_process, stop_process, wait_for_http

CONVEYOR = Path(sys.executable).parent / "conveyor"
UPLOAD_MAX_BYTES = 64 * 1024
MAX_PARTS = 50


@dataclass
class Server:
    url: str
    admin: str
    viewer: str

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite in the data dir, or the URL of a new PostgreSQL database for this module."""
    if request.param == "sqlite":
        yield None
        return
    server: URL = request.getfixturevalue("postgres_server_url")
    name = f"conveyor_e2e_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("conveyor-data")
    env = {
        "CONVEYOR_DATA_DIR": str(data_dir),
        "CONVEYOR_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES),
        "CONVEYOR_MULTIPART_MAX_PARTS": str(MAX_PARTS),
        "CONVEYOR_POLL_SECONDS": "0.2",
    }
    if database is not None:
        env["CONVEYOR_DATABASE_URL"] = database
    admin = create_key(env, "admin")
    port = free_port()
    log_path = data_dir / "serve.log"
    args: list[str | os.PathLike[str]] = [
        CONVEYOR,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = start_process([*args, "--data-dir", str(data_dir)], env, log_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", 60, process=process, log_path=log_path)
        with httpx.Client(base_url=url, trust_env=False) as client:
            created = client.post(
                "/api/keys",
                json={"role": "viewer", "name": "e2e viewer"},
                headers={"Authorization": f"Bearer {admin}"},
            )
        assert created.status_code == 201, created.text
        yield Server(url, admin, created.json()["key"])
    finally:
        stop_process(process)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        metafunc.parametrize(
            "database",
            [
                pytest.param("sqlite", id="sqlite"),
                pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
            ],
            indirect=True,
            scope="module",
        )


def create_key(env: dict[str, str], role: str) -> str:
    result = subprocess.run(
        [CONVEYOR, "keys", "create", "--role", role],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def upload(
    client: httpx.Client, content: bytes, *, filename: str = "data.json", **fields: str
) -> httpx.Response:
    return client.post(
        "/api/upload",
        files=[("file", (filename, content, "application/octet-stream"))],
        data={"pipeline": "records", **fields},
    )


def wait_for_job(client: httpx.Client, job_id: int, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish in {timeout_s}s")


def unique_rows(count: int = 3) -> bytes:
    tag = uuid.uuid4().hex
    return orjson.dumps([{"id": f"{tag}-{n}", "n": n} for n in range(count)])


def test_an_uploaded_json_file_becomes_records(server: Server) -> None:
    with server.client(server.admin) as client:
        response = upload(client, unique_rows(3))
        assert response.status_code == 201, response.text
        (job,) = response.json()["jobs"]
        assert job["status"] == "queued" and job["duplicate_of"] is None
        for field in ("id", "pipeline", "priority", "progress", "attempts", "error", "summary"):
            assert field in job

        done = wait_for_job(client, job["id"])
        assert done["status"] == "succeeded", done
        records = client.get(f"/api/jobs/{job['id']}/records").json()
        assert len(records["items"]) == 3
        assert {item["data"]["n"] for item in records["items"]} == {0, 1, 2}

        events = client.get(f"/api/jobs/{job['id']}/events").json()["items"]
        assert [event["type"] for event in events][-1] == "COMPLETE"
        document = client.get(f"/api/documents/{job['document_id']}").json()
        assert document["document"]["media_type"] == "application/json"
        assert document["latest_job"]["status"] == "succeeded"
        assert len(document["records"]) == 3


def test_the_same_bytes_again_point_to_the_earlier_job(server: Server) -> None:
    content = unique_rows(2)
    with server.client(server.admin) as client:
        first = upload(client, content).json()["jobs"][0]
        assert wait_for_job(client, first["id"])["status"] == "succeeded"
        again = upload(client, content).json()["jobs"][0]
        forced = upload(client, content, force="true").json()["jobs"][0]
        other_params = upload(client, content, params='{"collection": "other"}').json()["jobs"][0]

    assert again["duplicate_of"] == first["id"]
    assert forced["duplicate_of"] is None
    assert other_params["duplicate_of"] is None


def test_broken_json_fails_with_its_position_and_the_server_carries_on(server: Server) -> None:
    broken = b'[{"id": "x1", "n": 1},\n {"id": "x2", "n": }]'
    with server.client(server.admin) as client:
        job = upload(client, broken + uuid.uuid4().hex.encode()).json()["jobs"][0]
        done = wait_for_job(client, job["id"])
        assert client.get("/health").status_code == 200

    assert done["status"] == "failed", done
    assert "line 2" in done["error"] and "column" in done["error"], done["error"]
    assert done["dead_lettered"] is False


def test_keys_and_roles(server: Server) -> None:
    with server.client() as anonymous:
        response = anonymous.get("/api/jobs")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    with server.client("cvk_not-a-real-key") as wrong:
        assert wrong.get("/api/jobs").status_code == 401
    with server.client(server.viewer) as viewer:
        assert viewer.get("/api/jobs").status_code == 200
        response = upload(viewer, unique_rows())
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert viewer.put("/api/settings/retention.records", json={"value": 5}).status_code == 403


def test_an_upload_over_the_limit_is_refused_and_the_server_stays_up(server: Server) -> None:
    too_big = b"[" + b" " * (UPLOAD_MAX_BYTES + 10) + b"]"
    boundary = "conveyorboundary"

    def chunked_body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\nrecords\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        ).encode()
        for _ in range(40):
            yield b" " * 8192
        yield f"\r\n--{boundary}--\r\n".encode()

    with server.client(server.admin) as client:
        response = upload(client, too_big)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "limit_exceeded"

        response = client.post(
            "/api/upload",
            content=chunked_body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413, response.text

        assert client.get("/health").status_code == 200
        assert upload(client, unique_rows()).status_code == 201


def test_a_huge_declared_length_is_refused_before_the_body(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        "POST /api/upload HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Authorization: Bearer {server.admin}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 10000000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = connection.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer


def test_a_body_of_many_parts_is_cut_off_quickly(server: Server) -> None:
    boundary = "manyparts"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nx\r\n'
    body = (part * 5_000 + f"--{boundary}--\r\n").encode()
    started = time.monotonic()
    with server.client(server.admin) as client:
        response = client.post(
            "/api/upload",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert time.monotonic() - started < 5
    assert 400 <= response.status_code < 500
    assert "parts" in response.json()["error"]["message"]


def test_endless_part_headers_are_cut_off(server: Server) -> None:
    boundary = "longheaders"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        f"X-Padding: {'p' * 200_000}\r\n\r\nx\r\n--{boundary}--\r\n"
    ).encode()
    with server.client(server.admin) as client:
        response = client.post(
            "/api/upload",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["code"] in ("bad_request", "limit_exceeded")
        assert client.get("/health").status_code == 200


def test_errors_are_json_everywhere(server: Server) -> None:
    with server.client(server.admin) as client:
        unknown = client.get("/api/no-such-thing")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
        assert client.post("/health").json()["error"]["code"] == "method_not_allowed"
        assert client.get("/api/jobs/999999999").json()["error"]["code"] == "not_found"
        invalid = client.get("/api/jobs", params={"limit": "many"})
        assert invalid.status_code == 422
        assert invalid.json()["error"]["code"] == "validation_error"
        setting = client.put("/api/settings/retention.records", json={"value": "forever"})
        assert setting.status_code == 422
        assert "retention.records" in setting.json()["error"]["message"]


def test_jobs_can_be_listed_held_and_deleted(server: Server) -> None:
    with server.client(server.admin) as client:
        upload(client, unique_rows())
        job = upload(client, unique_rows()).json()["jobs"][0]
        wait_for_job(client, job["id"])

        page = client.get("/api/jobs", params={"limit": 1}).json()
        assert len(page["items"]) == 1 and page["next_cursor"] is not None
        following = client.get("/api/jobs", params={"limit": 1, "cursor": page["next_cursor"]})
        assert following.json()["items"][0]["id"] < page["items"][0]["id"]

        held = client.put(f"/api/jobs/{job['id']}/hold", json={"legal_hold": True})
        assert held.json()["legal_hold"] is True
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 409
        client.put(f"/api/jobs/{job['id']}/hold", json={"legal_hold": False})
        deleted = client.delete(f"/api/jobs/{job['id']}")
        assert deleted.status_code == 200 and deleted.json()["jobs"] == 1
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_probes_and_metrics(server: Server) -> None:
    with server.client() as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "storage": "ok"}
        metrics = client.get("/metrics").text
        assert "conveyor_jobs{" in metrics
        assert "conveyor_queue_depth" in metrics
        assert 'conveyor_http_requests_total{method="GET",route="/ready",status="200"}' in metrics
        assert client.get("/docs").status_code == 200
        assert "/api/upload" in client.get("/openapi.json").json()["paths"]
