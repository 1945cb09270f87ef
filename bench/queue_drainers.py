"""How a queue-benchmark worker claims and acknowledges jobs, one class per implementation.

All run the same loop (``bench.queue_agents``: claim up to 10, then acknowledge): Conveyor's own
``conveyor.queue`` functions, and baselines in bare driver SQL (psycopg, sqlite3) doing the same
claim and the same acknowledgement on the same table, so the cost of the layers above the driver
shows.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from conveyor import queue
from conveyor.store.database import create_database_engine, session_factory

Implementation = Literal["conveyor", "raw"]
Ack = Literal["per_job", "batch"]

PG_CLAIM = (
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = %(lease)s,"
    " worker_id = %(worker)s, started_at = coalesce(started_at, %(now)s)"
    " WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= %(now)s"
    " ORDER BY priority, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING id"
)
PG_ACK_BATCH = (
    "UPDATE jobs SET status = 'succeeded', progress = 100, finished_at = %(now)s, lease_until = NULL"
    " WHERE id = ANY(%(ids)s) AND worker_id = %(worker)s AND status = 'running'"
)
PG_ACK_ONE = (
    "UPDATE jobs SET status = 'succeeded', progress = 100, summary = '{}', review_status = 'none',"
    " finished_at = %(now)s, lease_until = NULL, error = NULL, error_code = NULL"
    " WHERE id = %(id)s AND worker_id = %(worker)s AND status = 'running' RETURNING id"
)
SQLITE_CLAIM = (
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = :lease,"
    " worker_id = :worker, started_at = coalesce(started_at, :now)"
    " WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= :now"
    " ORDER BY priority, id LIMIT :limit) RETURNING id"
)
SQLITE_ACK_BATCH = (
    "UPDATE jobs SET status = 'succeeded', progress = 100, finished_at = ?, lease_until = NULL"
    " WHERE id IN ({marks}) AND worker_id = ? AND status = 'running'"
)
SQLITE_ACK_ONE = (
    "UPDATE jobs SET status = 'succeeded', progress = 100, summary = '{}', review_status = 'none',"
    " finished_at = :now, lease_until = NULL, error = NULL, error_code = NULL"
    " WHERE id = :id AND worker_id = :worker AND status = 'running' RETURNING id"
)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    database_url: str
    implementation: Implementation
    ack: Ack
    worker_id: str
    quota: int
    claim_limit: int = 10
    lease_s: float = 60.0
    deadline_s: float = 600.0


class Drainer(Protocol):
    def claim(self) -> list[int]: ...

    def ack_each(self, job_ids: list[int]) -> None: ...

    def ack_batch(self, job_ids: list[int]) -> None: ...

    def connect(self) -> None: ...

    def backend_pids(self) -> list[int]:
        """The PostgreSQL server processes this drainer's connections talk to (none on SQLite)."""
        ...

    def close(self) -> None: ...


class ConveyorDrainer:
    """What a worker does, through ``conveyor.queue`` and an engine built as ``conveyor.worker``
    builds its own (two connections, no pool pre-ping)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.engine = create_database_engine(spec.database_url, pool_size=2, pre_ping=False)
        self.sessions = session_factory(self.engine)
        self.pids = _track_backends(self.engine)

    def claim(self) -> list[int]:
        with self.sessions.begin() as session:
            jobs = queue.claim(
                session,
                worker_id=self.spec.worker_id,
                limit=self.spec.claim_limit,
                lease_seconds=self.spec.lease_s,
            )
            return [job.id for job in jobs]

    def ack_each(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            with self.sessions.begin() as session:
                queue.finish(session, job_id=job_id, worker_id=self.spec.worker_id)

    def ack_batch(self, job_ids: list[int]) -> None:
        with self.sessions.begin() as session:
            queue.finish_many(session, job_ids=job_ids, worker_id=self.spec.worker_id)

    def connect(self) -> None:
        with self.sessions.begin() as session:
            session.connection()

    def backend_pids(self) -> list[int]:
        return list(self.pids)

    def close(self) -> None:
        self.engine.dispose()


class RawPostgresDrainer:
    """The floor: psycopg and hand-written SQL, one transaction per claim and per acknowledgement."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        url = make_url(spec.database_url).set(drivername="postgresql")
        self.connection = psycopg.connect(url.render_as_string(hide_password=False))

    def claim(self) -> list[int]:
        now = dt.datetime.now(dt.UTC)
        lease = now + dt.timedelta(seconds=self.spec.lease_s)
        with self.connection.transaction():
            params = {
                "now": now,
                "lease": lease,
                "worker": self.spec.worker_id,
                "limit": self.spec.claim_limit,
            }
            rows = self.connection.execute(PG_CLAIM, params).fetchall()
        return sorted(row[0] for row in rows)

    def ack_each(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            with self.connection.transaction():
                now = dt.datetime.now(dt.UTC)
                self.connection.execute(PG_ACK_ONE, {"now": now, "id": job_id, "worker": self.spec.worker_id})

    def ack_batch(self, job_ids: list[int]) -> None:
        with self.connection.transaction():
            now = dt.datetime.now(dt.UTC)
            self.connection.execute(PG_ACK_BATCH, {"now": now, "ids": job_ids, "worker": self.spec.worker_id})

    def connect(self) -> None:
        self.connection.execute("SELECT 1").fetchall()
        self.connection.rollback()

    def backend_pids(self) -> list[int]:
        return [self.connection.info.backend_pid]

    def close(self) -> None:
        self.connection.close()


def _track_backends(engine: Engine) -> set[int]:
    """The backend pid of every PostgreSQL connection the engine opens, kept up to date."""
    pids: set[int] = set()
    if engine.dialect.name == "postgresql":

        def remember(dbapi_connection: Any, _record: Any) -> None:
            pids.add(dbapi_connection.info.backend_pid)

        event.listen(engine, "connect", remember)
    return pids


def _sqlite_time(value: dt.datetime) -> str:
    """The text SQLAlchemy stores for a naive UTC datetime on SQLite, so comparisons line up."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


class RawSqliteDrainer:
    """The SQLite floor: sqlite3 with the pragmas Conveyor sets (WAL, synchronous=FULL), BEGIN IMMEDIATE."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        path = make_url(spec.database_url).database or ""
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            self.connection.execute(f"PRAGMA {pragma}")

    def _write(self, statement: str, params: dict[str, object] | list[object]) -> list[int]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            rows = self.connection.execute(statement, params).fetchall()
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return [row[0] for row in rows]

    def claim(self) -> list[int]:
        now = dt.datetime.now(dt.UTC)
        lease = now + dt.timedelta(seconds=self.spec.lease_s)
        params: dict[str, object] = {
            "now": _sqlite_time(now),
            "lease": _sqlite_time(lease),
            "worker": self.spec.worker_id,
            "limit": self.spec.claim_limit,
        }
        return sorted(self._write(SQLITE_CLAIM, params))

    def ack_each(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            now = _sqlite_time(dt.datetime.now(dt.UTC))
            self._write(SQLITE_ACK_ONE, {"now": now, "id": job_id, "worker": self.spec.worker_id})

    def ack_batch(self, job_ids: list[int]) -> None:
        statement = SQLITE_ACK_BATCH.format(marks=", ".join("?" * len(job_ids)))
        now = _sqlite_time(dt.datetime.now(dt.UTC))
        self._write(statement, [now, *job_ids, self.spec.worker_id])

    def connect(self) -> None:
        self.connection.execute("SELECT 1").fetchall()

    def backend_pids(self) -> list[int]:
        return []

    def close(self) -> None:
        self.connection.close()


def open_drainer(spec: WorkerSpec) -> Drainer:
    if spec.implementation == "conveyor":
        return ConveyorDrainer(spec)
    if spec.database_url.startswith("sqlite"):
        return RawSqliteDrainer(spec)
    return RawPostgresDrainer(spec)
