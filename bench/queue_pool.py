"""The queue benchmark's long-lived agent processes, and its databases reset before every run."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg
from sqlalchemy import func, select

from bench.environment import libpq_url, migrate_schema
from bench.processes import collect, stop
from bench.queue_agents import Command, Outcome, Shared, agent_main
from conveyor import queue
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.tables import Job

AGENTS = 3  # two workers and a producer at most
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 600.0


class AgentPool:
    """``AGENTS`` spawned processes that run one command each per run, starting together."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.shared = Shared(
            start=context.Barrier(AGENTS + 1),
            producer_done=context.Event(),
            claimed=context.Value("q", 0),
            outcomes=context.Queue(),
        )
        self.commands: list[Any] = [context.Queue() for _ in range(AGENTS)]
        self.processes = [
            context.Process(target=agent_main, args=(agent, self.commands[agent], self.shared), daemon=True)
            for agent in range(AGENTS)
        ]
        for process in self.processes:
            process.start()

    def run(self, commands: list[Command], *, producing: bool) -> tuple[float, list[Outcome]]:
        """Hand out the commands (agents beyond them sit out), start everyone at once, wait for the
        outcomes; returns the start time (``time.monotonic()``) and the outcomes."""
        self.shared.claimed.value = 0
        if producing:
            self.shared.producer_done.clear()
        else:
            self.shared.producer_done.set()
        padded = [*commands, *[None] * (AGENTS - len(commands))]
        for agent, command in enumerate(padded):
            self.commands[agent].put(command)
        self.shared.start.wait(timeout=START_TIMEOUT_S)
        started_at = time.monotonic()
        active = sum(command is not None for command in padded)
        outcomes: list[Outcome] = collect(self.shared.outcomes, active, self.processes, RUN_TIMEOUT_S)
        errors = [outcome.error for outcome in outcomes if outcome.error]
        if errors:
            raise RuntimeError(f"a queue benchmark agent failed: {errors[0]}")
        return started_at, outcomes

    def __enter__(self) -> AgentPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for commands in self.commands:
            commands.put("exit")
        stop(self.processes, grace_s=10)


class QueueDatabase:
    """One database per dialect for the whole benchmark, reset before every run."""

    def __init__(self, database: Literal["sqlite", "postgresql"], url: str, scratch: Path) -> None:
        self.database = database
        self.url = url
        self.scratch = scratch
        self.runs = 0
        if database == "sqlite":
            self.template = scratch / "template.db"
            migrate_schema(f"sqlite:///{self.template}")

    def fresh(self, backlog: int) -> str:
        """An empty jobs table (then ``backlog`` queued jobs), checkpointed, so every run starts alike."""
        self.runs += 1
        if self.database == "sqlite":
            path = self.scratch / f"run-{self.runs}.db"
            shutil.copyfile(self.template, path)
            (self.scratch / f"run-{self.runs - 1}.db").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            url = self.url
            with psycopg.connect(libpq_url(url), autocommit=True) as connection:
                connection.execute("TRUNCATE jobs RESTART IDENTITY CASCADE")
        if backlog:
            engine = create_database_engine(url)
            with session_factory(engine).begin() as session:
                queue.enqueue_many(session, ({"pipeline": "noop"} for _ in range(backlog)))
            engine.dispose()
        if self.database == "postgresql":
            with psycopg.connect(libpq_url(url), autocommit=True) as connection:
                connection.execute("VACUUM ANALYZE jobs")
                connection.execute("CHECKPOINT")
        return url

    def succeeded(self, url: str) -> int:
        engine = create_database_engine(url)
        try:
            with session_factory(engine)() as session:
                return int(session.scalar(select(func.count()).where(Job.status == "succeeded")) or 0)
        finally:
            engine.dispose()
