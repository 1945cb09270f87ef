"""The processes of the queue benchmark. A few agents are spawned once and reused for every run
(spawning and importing cost about a second each): for each run the benchmark sends every agent
a command (drain as a worker, produce jobs, or sit this one out), then all pass one barrier together,
so the clock starts when the last of them is connected and ready."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from typing import Protocol

from bench.environment import process_cpu_s
from bench.queue_drainers import Drainer, WorkerSpec, open_drainer
from conveyor import queue
from conveyor.store.database import create_database_engine, session_factory

IDLE_SLEEP_S = 0.001
PRODUCER_BATCH = 50


class Counter(Protocol):
    """A ``multiprocessing.Value('q')``: the jobs the workers of one run have claimed together."""

    value: int

    def get_lock(self) -> AbstractContextManager[object]: ...


@dataclass(frozen=True, slots=True)
class Produce:
    database_url: str
    jobs: int


Command = WorkerSpec | Produce | None  # None: take no part in this run (but pass the barrier)


@dataclass(frozen=True, slots=True)
class Outcome:
    agent: int
    completed: int = 0
    claims: int = 0
    finished_at: float = 0.0  # time.monotonic(), the same clock in every process on Linux
    cpu_s: float = 0.0  # this process
    server_cpu_s: float = 0.0  # its PostgreSQL backends
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Shared:
    """What every agent and the benchmark share for the whole benchmark."""

    start: Barrier
    producer_done: Event
    claimed: Counter
    outcomes: Queue[Outcome]


def drain(agent: int, drainer: Drainer, spec: WorkerSpec, shared: Shared) -> Outcome:
    """Claim and acknowledge until the workers together have claimed ``spec.quota`` jobs, or the
    producer has finished and nothing is left to claim."""
    completed = claims = 0
    finished_at = time.monotonic()
    deadline = finished_at + spec.deadline_s
    cpu_before, server_before = time.process_time(), process_cpu_s(drainer.backend_pids())
    while time.monotonic() < deadline and shared.claimed.value < spec.quota:
        finished_producing = shared.producer_done.is_set()
        job_ids = drainer.claim()
        claims += 1
        if not job_ids:
            if finished_producing:
                break
            time.sleep(IDLE_SLEEP_S)
            continue
        with shared.claimed.get_lock():
            shared.claimed.value += len(job_ids)
        if spec.ack == "per_job":
            drainer.ack_each(job_ids)
        else:
            drainer.ack_batch(job_ids)
        completed += len(job_ids)
        finished_at = time.monotonic()
    cpu = time.process_time() - cpu_before
    server = process_cpu_s(drainer.backend_pids()) - server_before
    return Outcome(agent, completed, claims, finished_at, cpu, server)


def produce(agent: int, command: Produce, shared: Shared) -> Outcome:
    """Enqueue no-op jobs through ``queue.enqueue_many``, PRODUCER_BATCH per transaction, as fast
    as it can."""
    engine = create_database_engine(command.database_url, pool_size=1)
    sessions = session_factory(engine)
    try:
        with sessions.begin() as session:
            session.connection()
        shared.start.wait()
        for offset in range(0, command.jobs, PRODUCER_BATCH):
            count = min(PRODUCER_BATCH, command.jobs - offset)
            with sessions.begin() as session:
                queue.enqueue_many(session, ({"pipeline": "noop"} for _ in range(count)))
        return Outcome(agent, completed=command.jobs, finished_at=time.monotonic())
    finally:
        shared.producer_done.set()
        engine.dispose()


def run_command(agent: int, command: Command, shared: Shared) -> Outcome | None:
    if command is None:
        shared.start.wait()
        return None
    if isinstance(command, Produce):
        return produce(agent, command, shared)
    drainer = open_drainer(command)
    try:
        drainer.connect()
        shared.start.wait()
        return drain(agent, drainer, command, shared)
    finally:
        drainer.close()


def agent_main(agent: int, commands: Queue[Command | str], shared: Shared) -> None:
    """A spawned agent: one command per run until told to ``"exit"``; a failure is reported (and
    breaks the barrier, so nobody waits for this agent) rather than killing the process."""
    while (command := commands.get()) != "exit":
        assert not isinstance(command, str)
        try:
            outcome = run_command(agent, command, shared)
        except Exception as error:
            shared.start.abort()
            outcome = Outcome(agent, error=repr(error))
        if outcome is not None:
            shared.outcomes.put(outcome)
