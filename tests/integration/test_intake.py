"""The intake use cases on real databases: submit and dedup, cancel and retry, settings, API keys."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor import intake, queue
from conveyor.errors import Conflict, Forbidden, InputError, NotFound, Unauthenticated
from conveyor.intake import Role
from conveyor.settings import Settings
from conveyor.store import migrate
from conveyor.store.blobs import LocalBlobStore, open_blob_store
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.tables import ApiKey, Document, Event
from tests.integration.conftest import Store

ROWS = b'[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]'


@dataclass(frozen=True)
class Submitted:
    id: int
    duplicate_of: int | None


def submit(
    store: Store,
    content: bytes = ROWS,
    *,
    pipeline: str = "records",
    params: dict[str, object] | None = None,
    priority: int = 3,
    force: bool = False,
) -> Submitted:
    with store.sessions.begin() as session:
        job = intake.submit_document(
            session,
            store.blobs,
            stream_or_blob=io.BytesIO(content),
            filename="rows.json",
            pipeline=pipeline,
            params=params,
            priority=priority,
            force=force,
        )
        return Submitted(job.id, job.duplicate_of)


def test_a_submission_stores_the_bytes_and_queues_a_job(store: Store) -> None:
    job_id = submit(store, priority=2).id

    with store.sessions() as session:
        job = intake.get_job(session, job_id=job_id)
        assert (job.status, job.priority, job.duplicate_of) == ("queued", 2, None)
        assert job.document_id is not None
        document = session.get(Document, job.document_id)
        assert document is not None
    assert document.sha256 == hashlib.sha256(ROWS).hexdigest()
    assert document.size == len(ROWS)
    assert document.media_type == "application/json"
    assert document.filename == "rows.json"
    with store.blobs.open(document.blob_key) as stream:
        assert stream.read() == ROWS


def _succeed(store: Store, job_id: int) -> None:
    with store.sessions.begin() as session:
        (claimed,) = queue.claim(session, worker_id="test", limit=1, lease_seconds=30)
        assert claimed.id == job_id
        assert queue.finish(session, job_id=job_id, worker_id="test")


def test_the_same_bytes_and_params_are_deduplicated(store: Store) -> None:
    first = submit(store).id
    while_queued = submit(store)
    assert while_queued.duplicate_of is None, "only finished work can be pointed at"
    _succeed(store, first)

    again = submit(store)
    forced = submit(store, force=True)
    other_params = submit(store, params={"collection": "elsewhere"})
    other_bytes = submit(store, content=ROWS + b" ")

    assert again.duplicate_of == first
    assert forced.duplicate_of is None
    assert other_params.duplicate_of is None
    assert other_bytes.duplicate_of is None
    with store.sessions() as session:
        duplicate = intake.get_job(session, job_id=again.id)
        assert duplicate.status == "succeeded"
        assert duplicate.summary == {"duplicate_of": first}


def test_bad_submissions_are_refused_before_storing(store: Store) -> None:
    with pytest.raises(InputError, match="unknown pipeline"):
        submit(store, content=b"never stored", pipeline="no-such-pipeline")
    with pytest.raises(InputError, match="priority"):
        submit(store, content=b"never stored", priority=9)
    assert list(store.blobs.keys()) == []


@pytest.mark.parametrize("priority", [0, 5, -1])
def test_a_priority_out_of_range_is_an_input_error_on_every_path(store: Store, priority: int) -> None:
    key = store.blobs.put(io.BytesIO(ROWS)).key
    with store.sessions.begin() as session, pytest.raises(InputError, match="priority must be 1"):
        intake.submit_uploads(
            session,
            store.blobs,
            files=[("rows.json", io.BytesIO(b"never stored"))],
            pipeline="records",
            priority=priority,
        )
    with store.sessions.begin() as session, pytest.raises(InputError, match="priority must be 1"):
        intake.submit_reference(session, store.blobs, ref=key, pipeline="records", priority=priority)
    assert list(store.blobs.keys()) == [key]
    with store.sessions() as session:
        assert intake.list_jobs(session).items == []


def test_submit_by_reference_to_a_blob(store: Store) -> None:
    key = store.blobs.put(io.BytesIO(ROWS)).key
    with store.sessions.begin() as session:
        job = intake.submit_reference(session, store.blobs, ref=key, pipeline="records")
        assert job.source == key
    with store.sessions.begin() as session, pytest.raises(InputError, match="no blob"):
        intake.submit_reference(session, store.blobs, ref="sha256/00/00/missing", pipeline="records")
    with store.sessions.begin() as session, pytest.raises(InputError, match="S3"):
        intake.submit_reference(session, store.blobs, ref="s3://bucket/key", pipeline="records")


def test_cancel_and_retry(store: Store) -> None:
    job_id = submit(store).id

    with store.sessions.begin() as session:
        assert intake.cancel_job(session, job_id=job_id).status == "cancelled"
    with store.sessions.begin() as session, pytest.raises(Conflict, match="already cancelled"):
        intake.cancel_job(session, job_id=job_id)
    with store.sessions() as session:
        events = intake.job_events(session, job_id=job_id)
        assert [(event.type, event.data["code"]) for event in events] == [("ERROR", "cancelled")]

    with store.sessions.begin() as session:
        job = intake.retry_job(session, job_id=job_id)
        assert (job.status, job.attempts, job.finished_at) == ("queued", 0, None)
    with store.sessions.begin() as session, pytest.raises(Conflict, match="only failed"):
        intake.retry_job(session, job_id=job_id)
    with store.sessions.begin() as session, pytest.raises(Conflict, match="only finished"):
        intake.delete_job(session, store.blobs, job_id=job_id, actor="test")
    with store.sessions.begin() as session, pytest.raises(NotFound):
        intake.cancel_job(session, job_id=job_id + 1000)


def test_jobs_are_listed_newest_first_page_by_page(store: Store) -> None:
    ids = [submit(store, content=ROWS + bytes([n])).id for n in range(5)]

    seen: list[int] = []
    cursor = None
    with store.sessions() as session:
        while True:
            page = intake.list_jobs(session, limit=2, cursor=cursor)
            seen += [job.id for job in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert intake.list_jobs(session, status="failed").items == []

    assert seen == sorted(ids, reverse=True)


def test_settings_are_validated_and_audited(store: Store) -> None:
    for bad in (0, -3, "90", 1.5, True, None):
        with store.sessions.begin() as session, pytest.raises(InputError, match=r"retention\.records"):
            intake.put_setting(session, key="retention.records", value=bad, actor="alice")

    with store.sessions.begin() as session:
        intake.put_setting(session, key="retention.records", value=30, actor="alice")
    with store.sessions.begin() as session:
        row = intake.put_setting(session, key="retention.records", value=45, actor="bob")
        assert row.value == {"value": 45} and row.updated_by == "bob"
        intake.put_setting(session, key="ui.theme", value={"any": ["json", 1]}, actor="bob")

    with store.sessions() as session:
        assert intake.get_setting(session, key="ui.theme").value == {"value": {"any": ["json", 1]}}
        assert [row.key for row in intake.list_settings(session)] == ["retention.records", "ui.theme"]
        trail = intake.audit_trail(session, target="retention.records")
        assert [(event.actor, event.before, event.after) for event in trail] == [
            ("bob", {"value": 30}, {"value": 45}),
            ("alice", None, {"value": 30}),
        ]
        with pytest.raises(NotFound):
            intake.get_setting(session, key="nothing.here")


def test_api_keys(store: Store) -> None:
    with store.sessions.begin() as session:
        first = intake.ensure_admin_key(session)
        assert first is not None and first.startswith("cvk_")
        assert intake.ensure_admin_key(session) is None
        key, plaintext = intake.create_api_key(session, role="viewer", name="dashboard")
        key_id = key.id
        with pytest.raises(InputError, match="unknown role"):
            intake.create_api_key(session, role="owner")

    with store.sessions() as session:
        assert intake.authenticate(session, plaintext).name == "dashboard"
        assert intake.authenticate(session, first).role == "admin"
        stored = session.scalars(select(ApiKey.key_hash)).all()
        assert plaintext not in stored
        assert hashlib.sha256(plaintext.encode()).hexdigest() in stored
        for wrong in (None, "", "cvk_guess", plaintext + "x"):
            with pytest.raises(Unauthenticated):
                intake.authenticate(session, wrong)

    with store.sessions.begin() as session:
        intake.revoke_api_key(session, key_id=key_id, actor="admin")
    with store.sessions() as session, pytest.raises(Unauthenticated, match="revoked"):
        intake.authenticate(session, plaintext)


def test_roles_are_ordered() -> None:
    intake.authorize(role="admin", needed=Role.REVIEWER)
    intake.authorize(role="submitter", needed=Role.VIEWER)
    intake.authorize(role="viewer", needed=Role.VIEWER)
    for role, needed in (("viewer", Role.SUBMITTER), ("reviewer", Role.ADMIN)):
        with pytest.raises(Forbidden):
            intake.authorize(role=role, needed=needed)


def test_a_document_shows_its_latest_job(store: Store) -> None:
    job_id = submit(store).id
    with store.sessions() as session:
        job = intake.get_job(session, job_id=job_id)
        assert job.document_id is not None
        view = intake.get_document(session, document_id=job.document_id)
        assert view.latest_job is not None and view.latest_job.id == job_id
        assert view.records.items == []
        assert session.scalars(select(Event)).all() == []
        with pytest.raises(NotFound):
            intake.get_document(session, document_id=job.document_id + 100)


def test_readiness_names_what_is_missing(database_url: str, tmp_path: Path) -> None:
    engine = create_database_engine(database_url)
    blobs = LocalBlobStore(tmp_path / "blobs")
    try:
        before = intake.check_readiness(engine=engine, blobs=blobs)
        assert not before.is_ready
        assert before.checks == {"database": "ok", "migrations": "not at head", "storage": "ok"}
        migrate.upgrade(engine)
        assert intake.check_readiness(engine=engine, blobs=blobs).is_ready
    finally:
        engine.dispose()


def test_readiness_does_not_wait_for_the_sqlite_write_lock(sqlite_url: str, tmp_path: Path) -> None:
    engine = create_database_engine(sqlite_url)
    migrate.upgrade(engine)
    writer = sqlite3.connect(tmp_path / "conveyor.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        readiness = intake.check_readiness(engine=engine, blobs=LocalBlobStore(tmp_path / "blobs"))
        assert time.monotonic() - started < 2
        assert readiness.checks == {"database": "ok", "migrations": "ok", "storage": "ok"}
    finally:
        writer.close()
        engine.dispose()


def test_submit_by_s3_reference(sqlite_url: str, s3_env: str, s3_bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_env).put_object(Bucket=s3_bucket, Key="inbox/orders.json", Body=ROWS)
    blobs = open_blob_store(f"s3://{s3_bucket}/conveyor", endpoint_url=s3_env)
    engine = create_database_engine(sqlite_url)
    migrate.upgrade(engine)
    try:
        with session_factory(engine).begin() as session:
            job = intake.submit_reference(
                session, blobs, ref=f"s3://{s3_bucket}/inbox/orders.json", pipeline="records"
            )
            document = session.get(Document, job.document_id)
            assert document is not None
            assert (document.filename, document.size) == ("orders.json", len(ROWS))
            assert document.media_type == "application/json"
        with blobs.open(document.blob_key) as stream:
            assert stream.read() == ROWS
    finally:
        engine.dispose()


def test_s3_references_read_only_the_storage_bucket_and_the_allowed_ones(
    sqlite_url: str, s3_env: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env)
    other = f"{s3_bucket}-other"
    client.create_bucket(Bucket=other)
    client.put_object(Bucket=other, Key="private/rows.json", Body=ROWS)
    monkeypatch.setenv("CONVEYOR_S3_REFERENCE_BUCKETS", f'["{other}"]')
    allowed = Settings().s3_reference_buckets
    assert allowed == [other]
    blobs = open_blob_store(f"s3://{s3_bucket}/conveyor", endpoint_url=s3_env)
    engine = create_database_engine(sqlite_url)
    migrate.upgrade(engine)
    ref = f"s3://{other}/private/rows.json"
    try:
        with session_factory(engine).begin() as session, pytest.raises(InputError) as refused:
            intake.submit_reference(session, blobs, ref=ref, pipeline="records")
        assert repr(other) in refused.value.message
        assert "CONVEYOR_S3_REFERENCE_BUCKETS" in refused.value.message
        assert list(blobs.keys()) == []

        with session_factory(engine).begin() as session:
            job = intake.submit_reference(
                session, blobs, ref=ref, pipeline="records", reference_buckets=allowed
            )
            assert job.source == ref
    finally:
        engine.dispose()
