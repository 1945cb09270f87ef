"""What the benchmarks run against: the PostgreSQL server, throwaway databases, free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from conveyor.store import migrate
from conveyor.store.database import create_database_engine

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TICKS = os.sysconf("SC_CLK_TCK")
URL_VARIABLES = ("CONVEYOR_BENCH_DATABASE_URL", "CONVEYOR_TEST_DATABASE_URL")


def postgres_server_url() -> str | None:
    """The server from the environment, else the one ``scripts/postgres.sh`` manages; None when
    neither answers (the PostgreSQL rows are then skipped, with a note)."""
    url = next((os.environ[name] for name in URL_VARIABLES if os.environ.get(name)), None)
    if url is None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            script = REPO_ROOT / "scripts" / "postgres.sh"
            url = subprocess.run(
                [str(script), "url"], check=True, capture_output=True, text=True, timeout=30
            ).stdout.strip()
    if not url:
        return None
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5):
            return url
    except psycopg.Error:
        return None


def libpq_url(url: str) -> str:
    """A URL psycopg accepts, whatever driver suffix SQLAlchemy spelling it carries."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def throwaway_database(server_url: str, label: str) -> Iterator[str]:
    """A new PostgreSQL database with Conveyor's schema, dropped afterwards; yields its URL."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {} STRATEGY FILE_COPY").format(sql.Identifier(name)))
    url = make_url(libpq_url(server_url)).set(database=name).render_as_string(hide_password=False)
    try:
        migrate_schema(url)
        yield url
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def migrate_schema(url: str) -> None:
    engine = create_database_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these (local) processes so far, from /proc; 0 where unreadable."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total
