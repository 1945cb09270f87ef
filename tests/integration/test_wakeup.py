"""Idle workers on PostgreSQL are woken by NOTIFY at enqueue, not by their poll timer."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from conveyor import queue
from conveyor.store import migrate
from conveyor.store.database import create_database_engine, session_factory
from conveyor.worker import Waker


def test_enqueue_wakes_a_listening_worker_long_before_its_poll(postgres_url: str) -> None:
    engine = create_database_engine(postgres_url)
    migrate.upgrade(engine)
    sessions: sessionmaker[Session] = session_factory(engine)
    waker = Waker(engine, poll_seconds=30)
    woke = threading.Event()

    def wait() -> None:
        waker.wait(threading.Event())
        woke.set()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert not woke.is_set(), "nothing was enqueued yet"
    with sessions.begin() as session:
        queue.enqueue(session, pipeline="records")
    assert woke.wait(5), "the NOTIFY of the enqueue should wake the waiting worker"
    thread.join(5)
    waker.close()
    engine.dispose()
