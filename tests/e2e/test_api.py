"""The HTTP API of a real `conveyor serve` process (with one worker), on SQLite and on PostgreSQL.

One test runs the app in process: SQLite's lock errors, which a real server meets only after its
30 s busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
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
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from conveyor.settings import Settings
from conveyor.web.app import create_app
from tests.support import free_port, start_process, stop_process, wait_for_http

CONVEYOR = Path(sys.executable).parent / "conveyor"
UPLOAD_MAX_BYTES = 64 * 1024
MAX_PARTS = 50
MAX_FILES = 5


@dataclass
class Server:
    url: str
    admin: str
    viewer: str

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)


@pytest.fixture(scope="module")
def server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "CONVEYOR_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES),
        "CONVEYOR_UPLOAD_MAX_FILES": str(MAX_FILES),
        "CONVEYOR_MULTIPART_MAX_PARTS": str(MAX_PARTS),
        "CONVEYOR_POLL_SECONDS": "0.2",
    }
    if database is not None:
        env["CONVEYOR_DATABASE_URL"] = database
    with running_server(env, tmp_path_factory.mktemp("conveyor-data")) as started:
        yield started


@contextlib.contextmanager
def running_server(env: dict[str, str], data_dir: Path, *, workers: int = 1) -> Iterator[Server]:
    """`conveyor serve` with ``env`` on a free port, with an admin and a viewer key."""
    env = {**env, "CONVEYOR_DATA_DIR": str(data_dir)}
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
        str(workers),
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
        assert done["summary"]["records"] == 3 and done["summary"]["quarantined"] == 0
        assert done["summary"]["seconds"] >= 0, "the processing log says how long the file took"
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
    assert response.status_code == 413, response.text
    assert "number of files" in response.json()["error"]["message"]


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A hand-made multipart body of ``(name, filename or None, content)`` parts, and its header."""
    boundary = "handmade"
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_more_files_than_the_limit_are_refused(server: Server) -> None:
    def files(count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [("file", (f"{n}.json", unique_rows(1), "application/json")) for n in range(count)]

    with server.client(server.admin) as client:
        at_limit = client.post("/api/upload", files=files(MAX_FILES), data={"pipeline": "records"})
        assert at_limit.status_code == 201, at_limit.text
        assert len(at_limit.json()["jobs"]) == MAX_FILES

        over = client.post("/api/upload", files=files(MAX_FILES + 1), data={"pipeline": "records"})
        assert over.status_code == 413, over.text
        error = over.json()["error"]
        assert error["code"] == "limit_exceeded"
        assert f"number of files is at least {MAX_FILES + 1}" in error["message"]
        assert f"limit of {MAX_FILES}" in error["message"]


def test_unknown_form_fields_are_refused_by_name(server: Server) -> None:
    with server.client(server.admin) as client:
        for parts, named in (
            ((("pipeline", None, b"records"), ("colour", None, b"x" * 60_000)), "'colour'"),
            ((("pipeline", None, b"records"), ("file", None, b"[]")), "'file' must be a file part"),
            ((("pipeline", None, b"records"), ("attachment", "a.json", b"[]")), "'attachment'"),
        ):
            body, headers = multipart(*parts)
            response = client.post("/api/upload", content=body, headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "bad_request"
            assert named in response.json()["error"]["message"]


def test_the_form_fields_together_are_capped(server: Server) -> None:
    under_each_field_limit = b"x" * 60_000
    body, headers = multipart(
        ("pipeline", None, under_each_field_limit),
        ("params", None, under_each_field_limit),
        ("priority", None, under_each_field_limit),
        ("file", "a.json", b"[]"),
    )
    with server.client(server.admin) as client:
        response = client.post("/api/upload", content=body, headers=headers)
    assert response.status_code == 413, response.text
    assert "form fields size" in response.json()["error"]["message"]


def test_a_priority_out_of_range_is_an_input_error(server: Server) -> None:
    with server.client(server.admin) as client:
        for priority in ("0", "5", "-1"):
            response = upload(client, unique_rows(), priority=priority)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "input_error"
            assert "priority" in response.json()["error"]["message"]
        by_reference = client.post("/api/jobs", json={"pipeline": "records", "ref": "k", "priority": 9})
        assert by_reference.status_code == 422


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


def test_a_locked_or_lost_database_answers_503_transient(
    postgres_url: str, postgres_server_url: URL, tmp_path: Path
) -> None:
    """A real lock (LOCK TABLE from another session, with a short lock_timeout for the server's
    sessions) and a real outage (the database dropped under the server) on PostgreSQL."""
    impatient = f"{postgres_url}?options=-c%20lock_timeout%3D500"
    with (
        running_server({"CONVEYOR_DATABASE_URL": impatient}, tmp_path, workers=0) as started,
        started.client(started.admin) as client,
    ):
        with psycopg.connect(postgres_url) as locker:
            locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            assert_transient(client.get("/api/jobs"))
            assert_transient(upload(client, unique_rows()))
            locker.rollback()
        assert client.get("/api/jobs").status_code == 200
        assert upload(client, unique_rows()).status_code == 201

        admin = postgres_server_url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            name = sql.Identifier(str(make_url(postgres_url).database))
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
        assert_transient(client.get("/api/jobs"))
        assert client.get("/health").status_code == 200


def assert_transient(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"] == {
        "code": "transient_error",
        "message": "the database is busy or unreachable; try again",
    }


def test_sqlite_lock_errors_are_503_and_its_statement_errors_stay_500(tmp_path: Path) -> None:
    """In process: SQLite waits out its 30 s busy timeout before it reports a lock, so the lock is
    met by an engine that does not wait, in routes added to a real app."""
    app = create_app(Settings(data_dir=tmp_path))
    database = tmp_path / "conveyor.db"
    impatient = create_engine(f"sqlite:///{database}", connect_args={"timeout": 0})

    @app.get("/probe/write")
    def write() -> None:
        with impatient.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    @app.get("/probe/bug")
    def bug() -> None:
        with impatient.connect() as connection:
            connection.exec_driver_sql("SELECT * FROM no_such_table")

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as client:
            return await client.get(path)

    locker = sqlite3.connect(database, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        assert_transient(asyncio.run(get("/probe/write")))
        crashed = asyncio.run(get("/probe/bug"))
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "internal_error"
    finally:
        locker.close()
        impatient.dispose()
