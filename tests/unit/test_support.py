"""The test infrastructure itself: the PostgreSQL fixture, the moto S3 server, process helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support import free_port, running_process, s3_client, wait_for_http


def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            tables = connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
            assert tables == 0
    finally:
        engine.dispose()


def test_database_url_runs_on_both(database_url: str) -> None:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE probe (id integer PRIMARY KEY)"))
            connection.execute(text("INSERT INTO probe VALUES (1)"))
            assert connection.execute(text("SELECT count(*) FROM probe")).scalar_one() == 1
    finally:
        engine.dispose()


def test_moto_server_stores_objects(moto_server: str) -> None:
    client = s3_client(moto_server)
    client.create_bucket(Bucket="support-smoke")
    client.put_object(Bucket="support-smoke", Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket="support-smoke", Key="a/b.txt")["Body"].read() == b"hello"
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="support-smoke")["Contents"]]
    assert keys == ["a/b.txt"]


def test_s3_bucket_is_new_and_empty(s3_bucket: str, moto_server: str) -> None:
    client = s3_client(moto_server)
    assert client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def test_running_process_kills_the_whole_group(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    # A parent that starts a child server and waits: both must be gone after the block.
    script = (
        "import subprocess, sys;"
        f"child = subprocess.Popen([sys.executable, '-m', 'http.server', '{port}',"
        " '--bind', '127.0.0.1']);"
        "child.wait()"
    )
    with running_process([sys.executable, "-c", script], {}, log_path) as process:
        wait_for_http(f"http://127.0.0.1:{port}/", 20.0, process=process, log_path=log_path)
    assert process.poll() is not None
    with pytest.raises(TimeoutError):
        wait_for_http(f"http://127.0.0.1:{port}/", 1.0)
