"""``/api/jobs/{id}/report``: a succeeded job's records and findings as xlsx, csv or json."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from conveyor import reports
from conveyor.web.dependencies import ReadSessionDep, ViewerDep

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
CHUNK_BYTES = 64 * 1024
# Reports up to this size stay in memory; bigger ones spill to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
ReportFormat = Literal["xlsx", "csv", "json"]


@router.get(
    "/{job_id}/report",
    response_class=StreamingResponse,
    responses={200: {"content": {media: {} for media in reports.MEDIA_TYPES.values()}}},
)
def report(
    job_id: int,
    _principal: ViewerDep,
    session: ReadSessionDep,
    format: Annotated[ReportFormat, Query(description="xlsx, csv or json")] = "xlsx",
) -> StreamingResponse:
    """Download a succeeded job's results (404 for an unknown job, 409 if it has not succeeded).

    The report is written whole before the response starts, so a failure is an error response
    rather than a cut-off download, and the database session is not held while the client reads.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  # closed by _chunks
    try:
        reports.write_report(reports.load_report(session, job_id=job_id), spool, format=format)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _chunks(spool),
        media_type=reports.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}.{format}"'},
    )


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk
