"""Fixtures shared by every test: databases (SQLite, PostgreSQL), the corpus, an S3 server."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from tests.support import S3_TEST_ENV, free_port, s3_client, start_process, stop_process, wait_for_http

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use, so `-m "not postgres"` and `-m corpus` select them."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "postgres_url" in names:
            item.add_marker(pytest.mark.postgres)
        if "corpus_dir" in names:
            item.add_marker(pytest.mark.corpus)


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own (not created until first connection)."""
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture(scope="session")
def postgres_server_url() -> URL:
    """The PostgreSQL server that `make test` started (CONVEYOR_TEST_DATABASE_URL)."""
    raw = os.environ.get("CONVEYOR_TEST_DATABASE_URL")
    if not raw:
        message = (
            "CONVEYOR_TEST_DATABASE_URL is not set: run the tests with `make test` "
            "(or `scripts/postgres.sh start` and "
            'CONVEYOR_TEST_DATABASE_URL="$(scripts/postgres.sh url)")'
        )
        if os.environ.get("CONVEYOR_ALLOW_NO_POSTGRES") == "1":
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    url = make_url(raw)
    try:
        with psycopg.connect(_libpq(url), connect_timeout=10):
            pass
    except psycopg.Error as error:
        pytest.fail(
            f"cannot connect to CONVEYOR_TEST_DATABASE_URL={raw}: {error}\n"
            "start the server with `scripts/postgres.sh start` (make test does)",
            pytrace=False,
        )
    return url


@pytest.fixture
def postgres_url(postgres_server_url: URL) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test alone, dropped afterwards.

    The URL keeps the scheme CONVEYOR_TEST_DATABASE_URL has (normally plain ``postgresql://``,
    which conveyor's engine maps to psycopg; for SQLAlchemy directly use ``postgresql+psycopg``).
    """
    name = f"conveyor_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(postgres_server_url), autocommit=True) as connection:
        # FILE_COPY: with fsync on, the default WAL_LOG copy and the checkpoint that DROP then
        # needs cost about a second a test; copying the template's files costs ~0.1 s.
        connection.execute(sql.SQL("CREATE DATABASE {} STRATEGY FILE_COPY").format(sql.Identifier(name)))
    try:
        yield postgres_server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(postgres_server_url), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL; a test using this runs once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def _libpq(url: URL) -> str:
    """The URL as libpq takes it: no SQLAlchemy driver suffix."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-world corpus: CONVEYOR_CORPUS, else ../shared/corpus beside the repository."""
    configured = os.environ.get("CONVEYOR_CORPUS")
    path = Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "corpus").resolve()
    if not path.is_dir():
        pytest.skip(f"corpus not found at {path} (set CONVEYOR_CORPUS)")
    return path


# --- S3 --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto S3 server on 127.0.0.1 for the whole session; yields its endpoint URL.

    Nothing global is set: pass the endpoint (and S3_TEST_ENV's credentials, or the `s3_env`
    fixture) explicitly. Its state is shared by the session, so make bucket names unique.
    """
    executable = Path(sys.executable).parent / "moto_server"
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    last_error: Exception | None = None
    for _ in range(3):  # another process may take the free port before moto binds it
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = start_process([executable, "-H", "127.0.0.1", "-p", str(port)], S3_TEST_ENV, log_path)
        try:
            wait_for_http(endpoint + "/moto-api/", 30.0, process=process, log_path=log_path)
        except (RuntimeError, TimeoutError) as error:
            stop_process(process)
            last_error = error
            continue
        try:
            yield endpoint
        finally:
            stop_process(process)
        return
    pytest.fail(f"moto_server did not start: {last_error}", pytrace=False)


@pytest.fixture
def s3_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 and conveyor's settings at `moto_server` for this test; returns the endpoint."""
    for key, value in S3_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONVEYOR_S3_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def s3_bucket(moto_server: str) -> str:
    """A new, empty bucket on `moto_server` with a name of its own."""
    name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    client = s3_client(moto_server)
    client.create_bucket(Bucket=name)
    return name
