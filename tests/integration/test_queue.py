"""The queue semantics of DESIGN §3 on real SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import Counter

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from conveyor import queue
from conveyor.errors import Conflict, InputError, TransientError
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.tables import Job, utcnow


def _enqueue(sessions: sessionmaker[Session], **kwargs: object) -> int:
    with sessions.begin() as session:
        return queue.enqueue(session, pipeline="records", **kwargs).id  # type: ignore[arg-type]


def _claim(sessions: sessionmaker[Session], limit: int = 1, worker: str = "w1") -> list[queue.ClaimedJob]:
    with sessions.begin() as session:
        return queue.claim(session, worker_id=worker, limit=limit, lease_seconds=30)


def _job(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        return queue.get(session, job_id)


def test_claim_order_is_priority_then_age(sessions: sessionmaker[Session]) -> None:
    low = _enqueue(sessions, priority=4)
    normal_old = _enqueue(sessions, priority=3)
    urgent = _enqueue(sessions, priority=1)
    normal_new = _enqueue(sessions, priority=3)
    order = [job.id for job in _claim(sessions, limit=2)] + [job.id for job in _claim(sessions, limit=10)]
    assert order == [urgent, normal_old, normal_new, low]
    assert _claim(sessions) == []


def test_priority_out_of_range_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InputError, match="priority"):
        _enqueue(sessions, priority=0)


def test_claim_takes_a_lease_and_counts_an_attempt(sessions: sessionmaker[Session]) -> None:
    job_id = _enqueue(sessions)
    (claimed,) = _claim(sessions)
    assert (claimed.id, claimed.attempts, claimed.pipeline, claimed.cancel_requested) == (
        job_id,
        1,
        "records",
        False,
    )
    job = _job(sessions, job_id)
    assert job.status == "running"
    assert job.worker_id == "w1"
    assert job.lease_until is not None and job.lease_until > utcnow()


def test_heartbeat_extends_only_own_leases_and_reports_cancel(
    sessions: sessionmaker[Session],
) -> None:
    job_id = _enqueue(sessions)
    _claim(sessions)
    before = _job(sessions, job_id).lease_until
    with sessions.begin() as session:
        assert queue.heartbeat(session, job_ids=[job_id], worker_id="other", lease_seconds=300).held == set()
    assert _job(sessions, job_id).lease_until == before
    with sessions.begin() as session:
        queue.cancel(session, job_id=job_id)
    with sessions.begin() as session:
        beat = queue.heartbeat(session, job_ids=[job_id], worker_id="w1", lease_seconds=300)
    assert beat == queue.Beat(held={job_id}, cancel_requested={job_id})
    after = _job(sessions, job_id).lease_until
    assert before is not None and after is not None and after > before


def _expire(sessions: sessionmaker[Session], job_id: int) -> None:
    with sessions.begin() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - dt.timedelta(seconds=1))
        )


def test_expired_lease_is_requeued_then_dead_lettered(sessions: sessionmaker[Session]) -> None:
    job_id = _enqueue(sessions, max_attempts=2)
    _claim(sessions)
    _expire(sessions, job_id)
    with sessions.begin() as session:
        assert queue.requeue_expired(session) == queue.Swept(
            requeued=[job_id], dead_lettered=[], cancelled=[]
        )
    job = _job(sessions, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 1, None)
    (again,) = _claim(sessions, worker="w2")
    assert again.attempts == 2
    _expire(sessions, job_id)
    with sessions.begin() as session:
        queue.requeue_expired(session)
    job = _job(sessions, job_id)
    assert (job.status, job.dead_lettered, job.error_code) == ("failed", True, "lease_expired")
    with sessions() as session:
        assert [j.id for j in queue.dead_letters(session)] == [job_id]


def _lease_passed_from_w1_to_w2(sessions: sessionmaker[Session]) -> int:
    """A job w1 claimed, whose lease ran out and which w2 then claimed."""
    job_id = _enqueue(sessions)
    _claim(sessions, worker="w1")
    _expire(sessions, job_id)
    with sessions.begin() as session:
        queue.requeue_expired(session)
    _claim(sessions, worker="w2")
    return job_id


def test_finish_after_losing_the_lease_is_refused(sessions: sessionmaker[Session]) -> None:
    job_id = _lease_passed_from_w1_to_w2(sessions)
    with sessions.begin() as session:
        assert not queue.finish(session, job_id=job_id, worker_id="w1")
    with sessions.begin() as session:
        assert queue.finish(session, job_id=job_id, worker_id="w2", summary={"n": 1})
    assert _job(sessions, job_id).status == "succeeded"


def test_backoff_schedule_is_exponential_capped_and_jittered() -> None:
    backoff = queue.Backoff(base_seconds=2, max_seconds=60)
    assert [backoff.delay(n, rand=lambda: 0.5) for n in range(1, 7)] == [2, 4, 8, 16, 32, 60]
    assert backoff.delay(3, rand=lambda: 0.0) == 4  # half of 8
    assert backoff.delay(3, rand=lambda: 0.999) == pytest.approx(8 * 1.499)


def test_retryable_error_requeues_with_backoff_then_dead_letters(
    sessions: sessionmaker[Session],
) -> None:
    job_id = _enqueue(sessions, max_attempts=3)
    backoff = queue.Backoff(base_seconds=10, max_seconds=100)
    delays = []
    for attempt in (1, 2):
        (claimed,) = _claim(sessions)
        started = utcnow()
        with sessions.begin() as session:
            status = queue.fail(
                session,
                job=claimed,
                worker_id="w1",
                error=TransientError("db busy"),
                backoff=backoff,
                rand=lambda: 0.5,
            )
        assert status == "queued"
        job = _job(sessions, job_id)
        delays.append((job.run_after - started).total_seconds())
        assert _claim(sessions) == [], f"attempt {attempt}: must wait for run_after"
        with sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(run_after=utcnow()))
    assert delays[0] == pytest.approx(10, abs=1) and delays[1] == pytest.approx(20, abs=1)
    (claimed,) = _claim(sessions)
    assert claimed.attempts == 3
    with sessions.begin() as session:
        status = queue.fail(
            session, job=claimed, worker_id="w1", error=TransientError("db busy"), backoff=backoff
        )
    job = _job(sessions, job_id)
    assert (status, job.status, job.dead_lettered, job.error) == ("failed", "failed", True, "db busy")


def test_crash_of_unknown_kind_is_retried(sessions: sessionmaker[Session]) -> None:
    _enqueue(sessions, max_attempts=2)
    (claimed,) = _claim(sessions)
    with sessions.begin() as session:
        status = queue.fail(
            session, job=claimed, worker_id="w1", error=KeyError("x"), backoff=queue.Backoff(0, 0)
        )
    assert status == "queued"
    assert _job(sessions, claimed.id).error_code == "internal_error"


def test_input_error_is_never_retried(sessions: sessionmaker[Session]) -> None:
    job_id = _enqueue(sessions, max_attempts=5)
    (claimed,) = _claim(sessions)
    with sessions.begin() as session:
        status = queue.fail(
            session,
            job=claimed,
            worker_id="w1",
            error=InputError("a.json: invalid JSON at line 1, column 2"),
            backoff=queue.Backoff(),
        )
    job = _job(sessions, job_id)
    assert (status, job.status, job.attempts, job.dead_lettered) == ("failed", "failed", 1, False)
    assert job.error_code == "input_error" and "line 1, column 2" in (job.error or "")


def test_cancel_queued_and_running(sessions: sessionmaker[Session]) -> None:
    queued_id = _enqueue(sessions, priority=4)
    running_id = _enqueue(sessions, priority=1)
    (running,) = _claim(sessions)
    assert running.id == running_id
    with sessions.begin() as session:
        assert queue.cancel(session, job_id=queued_id).status == "cancelled"
        job = queue.cancel(session, job_id=running_id)
        assert (job.status, job.cancel_requested) == ("running", True)
    assert _claim(sessions) == []
    with sessions.begin() as session:
        assert queue.mark_cancelled(session, job_id=running_id, worker_id="w1")
    assert _job(sessions, running_id).status == "cancelled"
    with sessions.begin() as session, pytest.raises(Conflict):
        queue.cancel(session, job_id=running_id)


def test_retry_puts_a_dead_letter_back(sessions: sessionmaker[Session]) -> None:
    job_id = _enqueue(sessions, max_attempts=1)
    (claimed,) = _claim(sessions)
    with sessions.begin() as session:
        queue.fail(session, job=claimed, worker_id="w1", error=TransientError(), backoff=queue.Backoff())
    with sessions.begin() as session:
        job = queue.retry(session, job_id=job_id)
    assert (job.status, job.attempts, job.dead_lettered, job.error) == ("queued", 0, False, None)
    assert [j.id for j in _claim(sessions)] == [job_id]


def test_release_hands_back_without_counting_an_attempt(sessions: sessionmaker[Session]) -> None:
    job_id = _enqueue(sessions)
    _claim(sessions)
    with sessions.begin() as session:
        assert queue.release(session, job_ids=[job_id], worker_id="w1") == 1
    job = _job(sessions, job_id)
    assert (job.status, job.attempts) == ("queued", 0)


def test_stats_count_by_status(sessions: sessionmaker[Session]) -> None:
    for _ in range(3):
        _enqueue(sessions)
    _claim(sessions)
    with sessions() as session:
        stats = queue.stats(session)
    assert stats["by_status"]["queued"] == 2
    assert stats["by_status"]["running"] == 1
    assert stats["by_pipeline"] == {"records": {"queued": 2, "running": 1}}


def _drain(url: str, worker: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = create_database_engine(url)
    sessions = session_factory(engine)
    done: list[int] = []
    idle = 0
    while idle < 3:
        with sessions.begin() as session:
            jobs = queue.claim(session, worker_id=worker, limit=10, lease_seconds=300)
        if not jobs:
            idle += 1
            continue
        idle = 0
        for job in jobs:
            with sessions.begin() as session:
                assert queue.finish(session, job_id=job.id, worker_id=worker)
            done.append(job.id)
    engine.dispose()
    results.put(done)


@pytest.mark.slow
def test_four_processes_run_two_thousand_jobs_exactly_once(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        queue.enqueue_many(session, ({"pipeline": "noop"} for _ in range(2000)))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_drain, args=(database_url, f"w{i}", results)) for i in range(4)]
    for process in processes:
        process.start()
    done = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    counts = Counter(job_id for ids in done for job_id in ids)
    assert len(counts) == 2000
    assert max(counts.values()) == 1
    assert all(ids for ids in done), "every process should have taken a share"
    with sessions() as session:
        statuses = Counter(session.scalars(select(Job.status)))
        attempts = set(session.scalars(select(Job.attempts)))
    assert statuses == {"succeeded": 2000}
    assert attempts == {1}


def test_a_cancel_asked_for_is_honoured_by_every_way_back_to_the_queue(
    sessions: sessionmaker[Session],
) -> None:
    expired, released, failed = (_enqueue(sessions) for _ in range(3))
    _claim(sessions, limit=3)
    with sessions.begin() as session:
        for job_id in (expired, released, failed):
            queue.cancel(session, job_id=job_id)
    _expire(sessions, expired)
    with sessions.begin() as session:
        assert queue.requeue_expired(session).cancelled == [expired]
        queue.release(session, job_ids=[released], worker_id="w1")
        job = queue.get(session, failed)
        status = queue.fail(session, job=job, worker_id="w1", error=TransientError(), backoff=queue.Backoff())
    assert status == "cancelled"
    assert [_job(sessions, j).status for j in (expired, released, failed)] == ["cancelled"] * 3
    assert _claim(sessions) == []


def test_heartbeat_reports_a_lease_taken_away(sessions: sessionmaker[Session]) -> None:
    job_id = _lease_passed_from_w1_to_w2(sessions)
    with sessions.begin() as session:
        beat = queue.heartbeat(session, job_ids=[job_id], worker_id="w1", lease_seconds=30)
    assert beat.held == set()


def test_a_long_transaction_extends_the_other_running_leases(sessions: sessionmaker[Session]) -> None:
    mine, other = _enqueue(sessions), _enqueue(sessions)
    _claim(sessions, limit=2)
    before = {j: _job(sessions, j).lease_until for j in (mine, other)}
    with sessions.begin() as session:
        queue.extend_running_leases(session, seconds=120, except_job=mine)
    assert _job(sessions, mine).lease_until == before[mine]
    extended, earlier = _job(sessions, other).lease_until, before[other]
    assert extended is not None and earlier is not None
    assert (extended - earlier).total_seconds() == pytest.approx(120)
