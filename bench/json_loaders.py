"""The two ways the JSON ingestion benchmark loads a file, each run in a process of its own so that
its peak memory (``ru_maxrss``) is its own: Conveyor's records pipeline feeding
``store.results.write_records``, and the row-by-row baseline."""

from __future__ import annotations

import datetime as dt
import hashlib
import resource
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import IO

import orjson
import psycopg
from sqlalchemy.engine import make_url

from bench.environment import process_cpu_s
from conveyor.content import DocumentInput, OfflineContext
from conveyor.pipelines.records import RecordsPipeline
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.results import write_records

PARAMS = {"key": "id", "collection": "bench"}
BASELINE_INSERT = (
    "INSERT INTO records (job_id, document_id, pipeline, namespace, kind, key, data, created_at, updated_at)"
    " VALUES (%(job_id)s, NULL, 'records', %(namespace)s, 'record', %(key)s, %(data)s::jsonb,"
    " %(now)s, %(now)s)"
    " ON CONFLICT (pipeline, namespace, kind, key) DO UPDATE SET data = EXCLUDED.data,"
    " job_id = EXCLUDED.job_id, document_id = EXCLUDED.document_id, updated_at = EXCLUDED.updated_at"
)


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    records: int
    elapsed_s: float
    peak_rss_mb: float
    start_rss_mb: float
    client_cpu_s: float = 0.0  # this process: parsing, records, COPY rows
    server_cpu_s: float = 0.0  # its PostgreSQL backend: staging, merge, indexes, WAL
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.elapsed_s


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _document(path: Path) -> DocumentInput:
    def open_file() -> IO[bytes]:
        return path.open("rb")

    digest = hashlib.sha256(path.name.encode()).hexdigest()  # any value: nothing is deduplicated here
    return DocumentInput(path.name, "application/json", digest, path.stat().st_size, open_file)


def conveyor_load(database_url: str, path: Path, job_id: int) -> LoadOutcome:
    """The pipeline's lazy records straight into ``write_records`` (COPY), one transaction."""
    engine = create_database_engine(database_url, pool_size=1)
    sessions = session_factory(engine)
    pipeline = RecordsPipeline()
    with engine.connect() as connection:
        backend = connection.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
    start_rss = _rss_mb()
    try:
        started, cpu, server = time.perf_counter(), time.process_time(), process_cpu_s([backend])
        result = pipeline.run(_document(path), PARAMS, OfflineContext())
        with sessions.begin() as session:
            written = write_records(
                session,
                records=result.records,
                job_id=job_id,
                document_id=None,
                pipeline=pipeline.name,
                namespace=str(result.summary["collection"]),
            )
        elapsed = time.perf_counter() - started
        cpu, server = time.process_time() - cpu, process_cpu_s([backend]) - server
    finally:
        engine.dispose()
    if result.findings:
        raise RuntimeError(f"{len(result.findings)} records quarantined: {result.findings[0].message}")
    return LoadOutcome(written, elapsed, _rss_mb(), start_rss, cpu, server)


def baseline_load(database_url: str, path: Path, job_id: int) -> LoadOutcome:
    """orjson parses the file; psycopg executes one ``INSERT ... ON CONFLICT`` per record, all in
    one transaction (the statement is prepared by psycopg after its fifth use)."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    start_rss = _rss_mb()
    with psycopg.connect(url) as connection:
        backend = connection.info.backend_pid
        started, cpu, server = time.perf_counter(), time.process_time(), process_cpu_s([backend])
        values = orjson.loads(path.read_bytes())
        now = dt.datetime.now(dt.UTC)
        with connection.transaction(), connection.cursor() as cursor:
            for value in values:
                params = {
                    "job_id": job_id,
                    "namespace": PARAMS["collection"],
                    "key": str(value["id"]),
                    "data": orjson.dumps(value).decode(),
                    "now": now,
                }
                cursor.execute(BASELINE_INSERT, params)
        elapsed = time.perf_counter() - started
        cpu, server = time.process_time() - cpu, process_cpu_s([backend]) - server
    return LoadOutcome(len(values), elapsed, _rss_mb(), start_rss, cpu, server)


def load_main(method: str, database_url: str, path: Path, job_id: int, outcomes: Queue[LoadOutcome]) -> None:
    """A spawned process: one load, its outcome (or error) put on ``outcomes``."""
    load = conveyor_load if method == "conveyor" else baseline_load
    try:
        outcomes.put(load(database_url, path, job_id))
    except Exception as error:
        outcomes.put(LoadOutcome(0, 0.0, 0.0, 0.0, error=repr(error)))
        raise
