"""A batch's report read from the database, streamed: files in order, their matches, and the
targets no file matched. The writers (``conveyor.batch_reports``) call each part once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.batch_reports import BatchReport, BatchSummary, FileRow, MatchRow
from conveyor.errors import NotFound
from conveyor.store.tables import Batch, BatchFile

PAGE_ROWS = 1000


def load_batch_report(session: Session, batch_id: int) -> BatchReport:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"batch {batch_id} not found")
    summary = BatchSummary(
        batch_id=batch.id,
        status=batch.status,
        source=batch.source or "",
        pattern=str(batch.params.get("pattern") or ""),
        total=batch.total,
        processed=batch.processed,
        failed=batch.failed,
        matches=batch.matches,
        targets=batch.targets,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
    )
    targets: list[str] = list(batch.params.get("targets") or [])

    def files() -> Iterator[FileRow]:
        for row in _files(session, batch_id):
            yield FileRow(
                file_id=row.id,
                file=row.name,
                status="failed" if row.status == "failed" else str(row.result.get("status", row.status)),
                codes=tuple(row.result.get("code_list", ())),
                error=row.error,
            )

    def matches() -> Iterator[MatchRow]:
        for row in _files(session, batch_id):
            for match in row.result.get("matches", ()):
                yield _match_row(row, match)

    def unmatched_targets() -> Iterator[str]:
        matched: set[str] = set()
        for row in _files(session, batch_id):
            matched.update(row.result.get("matched_targets", ()))
        return (target for target in targets if target not in matched)

    return BatchReport(summary=summary, files=files, matches=matches, unmatched_targets=unmatched_targets)


def _files(session: Session, batch_id: int) -> Iterator[BatchFile]:
    """The batch's files in id order, a page at a time (keyset), so 6,600 rows never sit in memory."""
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(BatchFile)
                .where(BatchFile.batch_id == batch_id, BatchFile.id > after)
                .order_by(BatchFile.id)
                .limit(PAGE_ROWS)
            )
        )
        yield from rows
        if len(rows) < PAGE_ROWS:
            return
        after = rows[-1].id
        session.expunge_all()


def _match_row(row: BatchFile, match: dict[str, Any]) -> MatchRow:
    return MatchRow(
        code=str(match["code"]),
        target=str(match["target"]),
        kind=str(match["kind"]),
        file_id=row.id,
        file=row.name,
        page=int(match["page"]),
        confidence=float(match["confidence"]),
    )
