"""Queue throughput with no-op jobs: enqueue, claim 10, acknowledge; SQLite and PostgreSQL, 1 and 2
worker processes, from an empty queue (a producer enqueues while workers drain) and from a backlog,
each commit durable; Conveyor's queue functions beside bare driver SQL doing the same work."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bench import report
from bench.environment import postgres_server_url, throwaway_database
from bench.queue_agents import Produce
from bench.queue_drainers import Ack, Implementation, WorkerSpec
from bench.queue_pool import AgentPool, QueueDatabase

Database = Literal["sqlite", "postgresql"]
Start = Literal["empty", "backlog"]
STARTS: tuple[Start, ...] = ("backlog", "empty")
ACKS: tuple[Ack, ...] = ("batch", "per_job")
HEADLINE = ("postgresql", "backlog", 2, "batch")
PGQUEUER_RATE = 4000.0
FLOOR_RATE = 1000.0


@dataclass(frozen=True, slots=True)
class Case:
    database: Database
    start: Start
    workers: int
    ack: Ack

    def implementations(self) -> tuple[Implementation, ...]:
        return ("conveyor", "raw")


@dataclass(frozen=True, slots=True)
class Sizes:
    """The backlog is always ``backlog`` jobs. The headline case (PostgreSQL, two workers, batched,
    the pgqueuer comparison) drains all of it; the others time the first ``batch_quota`` (batched)
    or ``per_job_quota`` (a commit per job: ten times the commits) jobs, to fit the time budget."""

    backlog: int
    batch_quota: int
    per_job_quota: int
    repeats: int

    def plan(self, case: Case) -> tuple[int, int]:
        """(jobs queued before the start, jobs to time)."""
        if case.ack == "per_job":
            quota = self.per_job_quota
        else:
            headline = (case.database, case.start, case.workers, case.ack) == HEADLINE
            quota = self.backlog if headline else self.batch_quota
        return (self.backlog if case.start == "backlog" else 0), quota


@dataclass(frozen=True, slots=True)
class RunFigures:
    rate: float
    completed: int
    elapsed_s: float
    produced_s: float | None
    worker_cpu_us: float  # per job, in the worker processes
    server_cpu_us: float  # per job, in their PostgreSQL backends (0 on SQLite)


def run_once(
    pool: AgentPool, db: QueueDatabase, case: Case, implementation: Implementation, sizes: Sizes
) -> RunFigures:
    backlog, quota = sizes.plan(case)
    url = db.fresh(backlog)
    commands: list[WorkerSpec | Produce | None] = [
        WorkerSpec(url, implementation, case.ack, f"bench-{index}", quota) for index in range(case.workers)
    ]
    if case.start == "empty":
        commands.append(Produce(url, quota))
    started_at, outcomes = pool.run(commands, producing=case.start == "empty")
    workers = [outcome for outcome in outcomes if outcome.agent < case.workers]
    completed = sum(outcome.completed for outcome in workers)
    succeeded = db.succeeded(url)
    if succeeded != completed or completed < quota:
        raise RuntimeError(
            f"{succeeded} succeeded, {completed} acknowledged of {quota}: {case} {implementation}"
        )
    elapsed = max(outcome.finished_at for outcome in workers) - started_at
    produced = [outcome.finished_at - started_at for outcome in outcomes if outcome.agent >= case.workers]
    return RunFigures(
        rate=completed / elapsed,
        completed=completed,
        elapsed_s=elapsed,
        produced_s=produced[0] if produced else None,
        worker_cpu_us=sum(outcome.cpu_s for outcome in workers) / completed * 1e6,
        server_cpu_us=sum(outcome.server_cpu_s for outcome in workers) / completed * 1e6,
    )


def cases(databases: list[Database]) -> Iterator[Case]:
    for database in databases:
        for start in STARTS:
            for workers in (1, 2):
                for ack in ACKS:
                    yield Case(database, start, workers, ack)


@contextlib.contextmanager
def queue_databases(scratch: Path) -> Iterator[dict[Database, QueueDatabase]]:
    databases: dict[Database, QueueDatabase] = {"sqlite": QueueDatabase("sqlite", "", scratch)}
    server = postgres_server_url()
    if server is None:
        yield databases
        return
    with throwaway_database(server, "queue") as url:
        databases["postgresql"] = QueueDatabase("postgresql", url, scratch)
        yield databases


def measure_case(pool: AgentPool, db: QueueDatabase, case: Case, sizes: Sizes) -> dict[str, list[RunFigures]]:
    """Every implementation, interleaved run by run, so a slow spell of the machine hits all alike."""
    figures: dict[str, list[RunFigures]] = {name: [] for name in case.implementations()}
    for attempt in range(sizes.repeats):
        for implementation in case.implementations():
            report.progress(f"queue {case} {implementation} run {attempt + 1}/{sizes.repeats}")
            figures[implementation].append(run_once(pool, db, case, implementation, sizes))
    return figures


def _row(case: Case, sizes: Sizes, medians: dict[str, float], cpu: dict[str, float]) -> list[str]:
    backlog, quota = sizes.plan(case)
    return [
        case.database,
        f"{backlog // 1000}k backlog" if backlog else "empty",
        str(case.workers),
        "per-job" if case.ack == "per_job" else "batched",
        f"{quota:,}",
        report.rate(medians["conveyor"]),
        report.rate(medians["raw"]),
        report.ratio(medians["conveyor"] / medians["raw"]),
        "/".join(report.rate(cpu.get(name)) for name in ("conveyor", "raw")),
    ]


def cpu_per_job(runs: list[RunFigures]) -> float:
    return report.median([f.worker_cpu_us + f.server_cpu_us for f in runs])


def run(*, quick: bool) -> report.BenchReport:
    sizes = Sizes(2_000, 1_000, 300, repeats=1) if quick else Sizes(20_000, 5_000, 1_000, repeats=3)
    bench = report.BenchReport(
        name="queue",
        title=f"Queue throughput, no-op jobs, claim 10, jobs/s (median of {sizes.repeats})",
        columns=[
            "database",
            "start",
            "workers",
            "ack",
            "timed",
            "conveyor",
            "raw SQL",
            "conv/raw",
            "CPU µs/job c/r",
        ],
    )
    runs: list[dict[str, Any]] = []
    medians: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-bench-queue-") as scratch,
        queue_databases(Path(scratch)) as databases,
        AgentPool() as pool,
    ):
        if "postgresql" not in databases:
            bench.notes.append("PostgreSQL unreachable: its rows were skipped")
        for case in cases(list(databases)):
            figures = measure_case(pool, databases[case.database], case, sizes)
            middle = {name: report.median([f.rate for f in runs_]) for name, runs_ in figures.items()}
            cpu = {name: cpu_per_job(runs_) for name, runs_ in figures.items()}
            bench.rows.append(_row(case, sizes, middle, cpu))
            medians.append({**asdict(case), **middle, "cpu_us_per_job": cpu})
            runs.extend(
                {**asdict(case), "implementation": name, **asdict(f)}
                for name, runs_ in figures.items()
                for f in runs_
            )
    bench.data = {"sizes": asdict(sizes), "medians": medians, "runs": runs}
    bench.targets.extend(targets(medians))
    bench.notes.extend(notes(sizes))
    return bench


def targets(medians: list[dict[str, Any]]) -> list[report.Target]:
    headline = [
        row["conveyor"]
        for row in medians
        if (row["database"], row["start"], row["workers"], row["ack"]) == HEADLINE
    ]
    lowest = min((row["conveyor"] for row in medians), default=None)
    return [
        report.Target(
            f"PostgreSQL, backlog, 2 workers, batched ack >= {PGQUEUER_RATE:,.0f} jobs/s (pgqueuer):"
            f" {report.rate(headline[0]) if headline else '-'}",
            headline[0] >= PGQUEUER_RATE if headline else None,
        ),
        report.Target(
            f"every configuration >= {FLOOR_RATE:,.0f} jobs/s: lowest {report.rate(lowest)}",
            None if lowest is None else lowest >= FLOOR_RATE,
        ),
    ]


def notes(sizes: Sizes) -> list[str]:
    return [
        "raw SQL: psycopg (PostgreSQL) or sqlite3 (SQLite) running the same claim and acknowledgement"
        " statements on the same table",
        "every commit durable: PostgreSQL fsync + synchronous_commit on; SQLite WAL + synchronous=FULL",
        f"backlog: {sizes.backlog:,} queued jobs at the start; empty: one producer process enqueues the"
        " timed jobs through queue.enqueue_many, 50 per commit, while the workers drain",
        "rate = jobs acknowledged / (last acknowledgement - common start); 'timed' = jobs acknowledged"
        " per run (PostgreSQL, 2 workers, batched, backlog: the whole backlog, as pgqueuer's figure)",
        "ack: batched = queue.finish_many per claimed batch; per-job = queue.finish, one commit per job",
        "CPU µs/job: conveyor/raw, worker processes plus their PostgreSQL backends (from"
        " /proc), median; steadier than rates on a busy machine",
    ]
