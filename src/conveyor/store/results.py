"""Writing a job's results: records upserted by natural key, findings, review items.

Records arrive as an iterator (a 1 GB file is never in memory) and are written in batches. On
PostgreSQL they are streamed with COPY into a temporary table and merged with one
``INSERT ... ON CONFLICT`` (the last version of a key in the file wins); on SQLite an executemany
upsert does the same row by row inside the one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from conveyor.content import Finding, Record
from conveyor.errors import InputError
from conveyor.store.tables import FindingRow, RecordRow, ReviewItem, utcnow

BATCH = 5000


# A NUL character in a string is written as \u0000; a backslash before it is written as \\.
# So an escape is a real NUL only after an even number of backslashes.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _json_text(record: Record) -> str:
    dumped = orjson.dumps(record.data).decode()
    if "\\u0000" in dumped and _NUL_ESCAPE.search(dumped):
        raise InputError(f"record {record.key!r} contains a NUL character (\\u0000), which cannot be stored")
    return dumped


def write_records(
    session: Session,
    *,
    records: Iterable[Record],
    job_id: int,
    document_id: int | None,
    pipeline: str,
    namespace: str,
) -> int:
    """Upsert every record; returns how many rows were written (after in-file duplicates merge)."""
    keyed = _with_keys(records)
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgres(session, keyed, job_id, document_id, pipeline, namespace)
    return _write_sqlite(session, keyed, job_id, document_id, pipeline, namespace)


def _with_keys(records: Iterable[Record]) -> Iterator[Record]:
    """Records without a key (per-job output such as pages) are keyed by their position."""
    for position, record in enumerate(records):
        if record.key is None:
            record.key = f"#{position}"
        yield record


def _write_sqlite(
    session: Session,
    records: Iterator[Record],
    job_id: int,
    document_id: int | None,
    pipeline: str,
    namespace: str,
) -> int:
    statement = sqlite_insert(RecordRow)
    statement = statement.on_conflict_do_update(
        index_elements=["pipeline", "namespace", "kind", "key"],
        set_={
            "data": statement.excluded.data,
            "job_id": statement.excluded.job_id,
            "document_id": statement.excluded.document_id,
            "updated_at": statement.excluded.updated_at,
        },
    )
    connection = session.connection()
    written = 0
    now = utcnow()
    while batch := list(islice(records, BATCH)):
        rows: list[dict[str, Any]] = []
        for record in batch:
            _json_text(record)
            rows.append(
                {
                    "job_id": job_id,
                    "document_id": document_id,
                    "pipeline": pipeline,
                    "namespace": namespace,
                    "kind": record.kind,
                    "key": record.key,
                    "data": record.data,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        connection.execute(statement, rows)
        written += len(rows)
    return written


def _write_postgres(
    session: Session,
    records: Iterator[Record],
    job_id: int,
    document_id: int | None,
    pipeline: str,
    namespace: str,
) -> int:
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS records_stage"
        " (seq bigint, kind text, key text, data text) ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql("TRUNCATE records_stage")
    raw: Any = connection.connection.driver_connection
    staged = 0
    with (
        raw.cursor() as cursor,
        cursor.copy("COPY records_stage (seq, kind, key, data) FROM STDIN") as copy,
    ):
        for seq, record in enumerate(records):
            copy.write_row((seq, record.kind, record.key, _json_text(record)))
            staged += 1
    if not staged:
        return 0
    result = connection.execute(
        text(
            "INSERT INTO records"
            " (job_id, document_id, pipeline, namespace, kind, key, data, created_at, updated_at)"
            " SELECT DISTINCT ON (kind, key) :job_id, :document_id, :pipeline, :namespace,"
            " kind, key, data::jsonb, :now, :now FROM records_stage ORDER BY kind, key, seq DESC"
            " ON CONFLICT (pipeline, namespace, kind, key) DO UPDATE SET data = EXCLUDED.data,"
            " job_id = EXCLUDED.job_id, document_id = EXCLUDED.document_id,"
            " updated_at = EXCLUDED.updated_at"
        ),
        {
            "job_id": job_id,
            "document_id": document_id,
            "pipeline": pipeline,
            "namespace": namespace,
            "now": utcnow(),
        },
    )
    return int(result.rowcount)


def write_findings(session: Session, *, job_id: int, findings: Iterable[Finding]) -> int:
    rows = [{"job_id": job_id, "created_at": utcnow(), **finding.as_json()} for finding in findings]
    if rows:
        session.execute(insert(FindingRow), rows)
    return len(rows)


def open_review(session: Session, *, job_id: int, pipeline: str, reasons: list[str]) -> ReviewItem:
    item = ReviewItem(job_id=job_id, pipeline=pipeline, reasons={"reasons": reasons})
    session.add(item)
    session.flush()
    return item
