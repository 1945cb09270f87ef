"""Retention on real databases: per-pipeline periods, legal hold, shared records, blob cleanup."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor import intake, progress, queue, retention
from conveyor.content import Finding, Record
from conveyor.errors import Conflict
from conveyor.store.results import write_findings, write_records
from conveyor.store.tables import Document, Event, FindingRow, Job, RecordRow
from tests.integration.conftest import Store

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def add_job(
    store: Store,
    *,
    pipeline: str,
    content: bytes,
    days_ago: float,
    status: str = "succeeded",
    legal_hold: bool = False,
    records: tuple[str, ...] = ("a",),
) -> int:
    """A job finished ``days_ago`` before NOW, with a document, records, a finding and an event."""
    stored = store.blobs.put(io.BytesIO(content))
    with store.sessions.begin() as session:
        document = Document(
            sha256=stored.sha256,
            filename="f.json",
            media_type="application/json",
            size=stored.size,
            blob_key=stored.key,
        )
        session.add(document)
        session.flush()
        job = queue.enqueue(session, pipeline=pipeline, document_id=document.id)
        job.status = status
        job.legal_hold = legal_hold
        job.finished_at = NOW - dt.timedelta(days=days_ago)
        namespace = "shared" if pipeline == "records" else f"job:{job.id}"
        write_records(
            session,
            records=[Record("row", {"v": key}, key) for key in records],
            job_id=job.id,
            document_id=document.id,
            pipeline=pipeline,
            namespace=namespace,
        )
        write_findings(session, job_id=job.id, findings=[Finding("r", "info", "m")])
        progress.record_event(session, type="COMPLETE", job_id=job.id)
        return job.id


def add_duplicate(store: Store, *, of: int, days_ago: float, legal_hold: bool = False) -> int:
    """A job born a duplicate of ``of`` (same bytes, own document row), ``days_ago`` before NOW."""
    with store.sessions.begin() as session:
        original = session.get(Job, of)
        assert original is not None and original.document_id is not None
        source = session.get(Document, original.document_id)
        assert source is not None
        document = Document(
            sha256=source.sha256,
            filename=source.filename,
            media_type=source.media_type,
            size=source.size,
            blob_key=source.blob_key,
        )
        session.add(document)
        session.flush()
        job = queue.enqueue(session, pipeline=original.pipeline, document_id=document.id, duplicate_of=of)
        job.legal_hold = legal_hold
        job.finished_at = NOW - dt.timedelta(days=days_ago)
        return job.id


def count(session: Session, table: type[object], *where: object) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)  # type: ignore[arg-type]


def job_ids(store: Store) -> set[int]:
    with store.sessions() as session:
        return set(session.scalars(select(Job.id)))


def run_cleanup(store: Store, older_than_days: int | None = None) -> dict[str, int]:
    with store.sessions.begin() as session:
        return retention.cleanup(session, store.blobs, now=NOW, older_than_days=older_than_days)


def test_each_pipeline_keeps_its_own_period(store: Store) -> None:
    recent = add_job(store, pipeline="records", content=b"1", days_ago=30)
    expired = add_job(store, pipeline="records", content=b"2", days_ago=91)
    timecard_two_years = add_job(store, pipeline="timecard", content=b"3", days_ago=730)
    timecard_four_years = add_job(store, pipeline="timecard", content=b"4", days_ago=1096)

    counts = run_cleanup(store)

    assert job_ids(store) == {recent, timecard_two_years}
    assert counts["jobs"] == 2
    assert expired not in job_ids(store) and timecard_four_years not in job_ids(store)


def test_the_setting_overrides_the_default(store: Store) -> None:
    recent = add_job(store, pipeline="records", content=b"1", days_ago=30)
    with store.sessions.begin() as session:
        intake.put_setting(session, key="retention.records", value=10, actor="test")
        assert retention.retention_days(session, pipeline="records") == 10
        assert retention.retention_days(session, pipeline="timecard") == 1095

    run_cleanup(store)

    assert recent not in job_ids(store)


def test_older_than_overrides_every_pipeline(store: Store) -> None:
    add_job(store, pipeline="timecard", content=b"1", days_ago=40)
    young = add_job(store, pipeline="records", content=b"2", days_ago=20)

    run_cleanup(store, older_than_days=30)

    assert job_ids(store) == {young}


def test_unfinished_jobs_are_never_deleted(store: Store) -> None:
    queued = add_job(store, pipeline="records", content=b"1", days_ago=500, status="queued")
    running = add_job(store, pipeline="records", content=b"2", days_ago=500, status="running")
    failed = add_job(store, pipeline="records", content=b"3", days_ago=500, status="failed")

    run_cleanup(store)

    assert job_ids(store) == {queued, running}
    assert failed not in job_ids(store)


def test_a_held_job_is_never_deleted_nor_its_document_or_blob(store: Store) -> None:
    held = add_job(store, pipeline="records", content=b"held", days_ago=5000, legal_hold=True)

    run_cleanup(store, older_than_days=1)

    with store.sessions() as session:
        job = session.get(Job, held)
        assert job is not None and job.document_id is not None
        document = session.get(Document, job.document_id)
        assert document is not None
        assert count(session, RecordRow, RecordRow.job_id == held) == 1
    assert store.blobs.exists(document.blob_key)
    with store.sessions.begin() as session, pytest.raises(Conflict, match="legal hold"):
        intake.delete_job(session, store.blobs, job_id=held, actor="test")


def test_everything_a_job_owns_goes_with_it(store: Store) -> None:
    old = add_job(store, pipeline="timecard", content=b"old", days_ago=2000, records=("a", "b"))

    counts = run_cleanup(store)

    assert counts == {
        "jobs": 1,
        "records": 2,
        "findings": 1,
        "review_items": 0,
        "events": 1,
        "documents": 1,
        "blobs": 1,
    }
    with store.sessions() as session:
        assert count(session, RecordRow, RecordRow.job_id == old) == 0
        assert count(session, FindingRow, FindingRow.job_id == old) == 0
        assert count(session, Event, Event.job_id == old) == 0
        assert count(session, Document) == 0


def test_unreferenced_blobs_go_and_referenced_ones_stay(store: Store) -> None:
    add_job(store, pipeline="records", content=b"shared bytes", days_ago=100)
    add_job(store, pipeline="records", content=b"shared bytes", days_ago=1)
    add_job(store, pipeline="records", content=b"lonely bytes", days_ago=100)
    shared = store.blobs.put(io.BytesIO(b"shared bytes")).key
    lonely = store.blobs.put(io.BytesIO(b"lonely bytes")).key

    counts = run_cleanup(store)

    assert counts["documents"] == 2 and counts["blobs"] == 1
    assert store.blobs.exists(shared)
    assert not store.blobs.exists(lonely)


def test_blobs_stay_when_the_deletion_rolls_back(store: Store) -> None:
    add_job(store, pipeline="records", content=b"kept after rollback", days_ago=100)
    key = store.blobs.put(io.BytesIO(b"kept after rollback")).key

    with store.sessions() as session:
        counts = retention.cleanup(session, store.blobs, now=NOW)
        session.rollback()
        session.commit()  # a later commit of the same session must not delete them either

    assert counts["blobs"] == 1
    assert store.blobs.exists(key)
    assert len(job_ids(store)) == 1


def test_shared_key_records_go_only_where_the_job_wrote_last(store: Store) -> None:
    first = add_job(store, pipeline="records", content=b"1", days_ago=100, records=("k1", "k2"))
    second = add_job(store, pipeline="records", content=b"2", days_ago=1, records=("k2",))

    run_cleanup(store)

    with store.sessions() as session:
        keys = dict(session.execute(select(RecordRow.key, RecordRow.job_id)).all())
    assert keys == {"k2": second}
    assert first not in job_ids(store)


def test_an_original_goes_only_with_its_last_duplicate(store: Store) -> None:
    original = add_job(store, pipeline="records", content=b"o", days_ago=100, records=("a", "b"))
    duplicate = add_duplicate(store, of=original, days_ago=10)

    assert run_cleanup(store)["jobs"] == 0

    assert job_ids(store) == {original, duplicate}
    with store.sessions() as session:
        assert len(intake.job_records(session, job_id=duplicate).items) == 2

    counts = run_cleanup(store, older_than_days=5)

    assert job_ids(store) == set()
    assert (counts["jobs"], counts["records"], counts["documents"], counts["blobs"]) == (2, 2, 2, 1)


def test_a_held_duplicate_keeps_its_original_and_its_results(store: Store) -> None:
    original = add_job(store, pipeline="records", content=b"o", days_ago=5000)
    held = add_duplicate(store, of=original, days_ago=5000, legal_hold=True)
    free = add_duplicate(store, of=original, days_ago=5000)

    run_cleanup(store, older_than_days=1)

    assert job_ids(store) == {original, held}
    assert free not in job_ids(store)
    with store.sessions() as session:
        assert len(intake.job_records(session, job_id=held).items) == 1


def test_deleting_an_original_that_duplicates_read_is_refused(store: Store) -> None:
    original = add_job(store, pipeline="records", content=b"o", days_ago=1)
    first = add_duplicate(store, of=original, days_ago=1)
    second = add_duplicate(store, of=original, days_ago=1)

    with store.sessions.begin() as session, pytest.raises(Conflict) as refused:
        intake.delete_job(session, store.blobs, job_id=original, actor="test")
    assert f"duplicate jobs {first}, {second};" in refused.value.message

    for job_id in (first, second, original):
        with store.sessions.begin() as session:
            assert intake.delete_job(session, store.blobs, job_id=job_id, actor="test")["jobs"] == 1
    assert job_ids(store) == set()
