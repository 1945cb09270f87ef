"""Writing a job's results: records upserted by natural key, findings, review items.

Records arrive as an iterator (a 1 GB file is never in memory) and are written in batches. On
PostgreSQL they are streamed with COPY into a temporary table and merged with one
``INSERT ... ON CONFLICT`` (the last version of a key in the file wins); on SQLite an executemany
upsert does the same row by row inside the one transaction.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from conveyor.content import Finding, Record
from conveyor.errors import InputError
from conveyor.store.tables import FindingRow, RecordRow, ReviewItem, utcnow

BATCH_ROWS = 50_000


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
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Upsert every record, ``batch_rows`` at a time; returns how many rows were inserted or
    updated (a key repeated in the file counts once per batch it appears in)."""
    keyed = _with_keys(records)
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgres(session, keyed, job_id, document_id, pipeline, namespace, batch_rows)
    return _write_sqlite(session, keyed, job_id, document_id, pipeline, namespace, batch_rows)


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
    batch_rows: int,
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
    while batch := list(islice(records, batch_rows)):
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


_MERGE = (
    "INSERT INTO records"
    " (job_id, document_id, pipeline, namespace, kind, key, data, created_at, updated_at)"
    " SELECT DISTINCT ON (kind, key) %(job_id)s, %(document_id)s, %(pipeline)s, %(namespace)s,"
    " kind, key, data::jsonb, %(now)s, %(now)s FROM records_stage ORDER BY kind, key, seq DESC"
    " ON CONFLICT (pipeline, namespace, kind, key) DO UPDATE SET data = EXCLUDED.data,"
    " job_id = EXCLUDED.job_id, document_id = EXCLUDED.document_id,"
    " updated_at = EXCLUDED.updated_at"
)


def _write_postgres(
    session: Session,
    records: Iterator[Record],
    job_id: int,
    document_id: int | None,
    pipeline: str,
    namespace: str,
    batch_rows: int,
) -> int:
    """COPY chunks into a temporary table and merge each into ``records``.

    Parsing the file (this thread, Python) and merging a chunk (the PostgreSQL server, JSONB and
    index work) take about as long as each other, so a second thread owns the connection and
    copies and merges chunk N while this one parses chunk N+1. Later chunks upsert over earlier
    ones, so the last version of a key in the file still wins. At most two chunks wait in memory.
    """
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS records_stage"
        " (seq bigint, kind text, key text, data text) ON COMMIT DELETE ROWS"
    )
    merger = _ChunkMerger(
        connection.connection.driver_connection,
        {
            "job_id": job_id,
            "document_id": document_id,
            "pipeline": pipeline,
            "namespace": namespace,
            "now": utcnow(),
        },
    )
    merger.start()
    try:
        chunk: list[tuple[int, str, str | None, str]] = []
        for seq, record in enumerate(records):
            chunk.append((seq, record.kind, record.key, _json_text(record)))
            if len(chunk) >= batch_rows:
                merger.put(chunk)
                chunk = []
        if chunk:
            merger.put(chunk)
    except BaseException:
        merger.finish(quietly=True)  # the file's own error is the one to report
        raise
    merger.finish()
    return merger.written


class _ChunkMerger(threading.Thread):
    """Owns the database connection while records are written; see ``_write_postgres``."""

    def __init__(self, raw: Any, params: dict[str, Any]) -> None:
        super().__init__(name="records-merge", daemon=True)
        self.raw = raw
        self.params = params
        self.chunks: queue.Queue[list[tuple[int, str, str | None, str]] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.written = 0

    def run(self) -> None:
        try:
            while (chunk := self.chunks.get()) is not None:
                self.raw.execute("TRUNCATE records_stage")
                with (
                    self.raw.cursor() as cursor,
                    cursor.copy("COPY records_stage (seq, kind, key, data) FROM STDIN") as copy,
                ):
                    for row in chunk:
                        copy.write_row(row)
                self.written += self.raw.execute(_MERGE, self.params).rowcount
        except BaseException as error:
            self.error = error
            while self.chunks.get() is not None:  # let a waiting producer through
                pass

    def put(self, chunk: list[tuple[int, str, str | None, str]]) -> None:
        if self.error is not None:
            raise self.error
        self.chunks.put(chunk)

    def finish(self, *, quietly: bool = False) -> None:
        """Wait for the last merge; re-raise its error here, in the caller's thread."""
        self.chunks.put(None)
        self.join()
        if self.error is not None and not quietly:
            raise self.error


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
