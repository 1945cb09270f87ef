"""A 100,000-row timecard workbook through the ``timecard`` pipeline (read in its parser process,
tables found, entries extracted, workweeks, pay and rules), beside ``pandas.read_excel`` (openpyxl)
merely loading the same file.

Every run is a fresh spawned process, so that its peak memory is its own. The pipeline's parser
pool is started in that process on a tiny workbook before the clock starts, as a worker keeps its
parsers for every job; pandas and openpyxl are imported before the clock starts in theirs. The
parser's peak is ``VmHWM`` in ``/proc`` of the pool's process, read before the pool is closed
(``RUSAGE_CHILDREN`` would not see it: parsers are forked by the forkserver, not by the process
that runs the pipeline).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from tests.sheets import write_xlsx

from bench import report
from bench.environment import process_cpu_s
from bench.processes import collect, stop

TARGET_RATIO = 3.0
TARGET_MEMORY_MB = 500.0
TIMEOUT_S = 900.0
EMPLOYEES = 200
HEADER = ("Employee", "Date", "Time In", "Time Out", "Rate")
FIRST_DAY = dt.date(2022, 1, 3)  # a Monday


@dataclass(frozen=True, slots=True)
class RunOutcome:
    rows: int
    elapsed_s: float
    peak_rss_mb: float  # the process that ran the pipeline (or pandas), imports included
    start_rss_mb: float  # its ru_maxrss just before the clock started
    cpu_s: float = 0.0
    parser_peak_mb: float = 0.0  # VmHWM of the parser process(es), summed
    parser_cpu_s: float = 0.0
    forkserver_mb: float = 0.0  # VmHWM of the forkserver the parsers are forked from
    entries: int = 0
    weeks: int = 0
    findings: int = 0
    error: str | None = None

    @property
    def pipeline_peak_mb(self) -> float:
        """Both processes at their peaks at once: an upper bound of what the pipeline needs."""
        return self.peak_rss_mb + self.parser_peak_mb


def workdays(count: int) -> list[dt.date]:
    days: list[dt.date] = []
    day = FIRST_DAY
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def timecard_grid(count: int) -> list[list[object]]:
    """A payroll export: one punch per employee and workday, day by day, real Excel dates and times;
    a few long days so that some weeks have overtime."""
    grid: list[list[object]] = [list(HEADER)]
    for day in workdays(-(-count // EMPLOYEES)):
        for employee in range(EMPLOYEES):
            if len(grid) > count:
                return grid
            seed = day.toordinal() * 31 + employee * 17
            start = dt.time(7 + seed % 3, (seed * 7) % 60)
            end = dt.time(15 + seed % 3 + (2 if seed % 11 == 0 else 0), (seed * 13) % 60)
            grid.append([f"Employee {employee:03d}", day, start, end, 15.0 + employee % 26])
    return grid


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _status_kb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine (readable ones)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    return parents


def _forkserver_and_parsers() -> tuple[list[int], list[int]]:
    """This process's children that have children (the forkserver), and those grandchildren (the
    parser processes); the resource tracker has none."""
    parents = _children()
    mine = [pid for pid, parent in parents.items() if parent == os.getpid()]
    parsers = [pid for pid, parent in parents.items() if parent in mine]
    servers = [pid for pid in mine if any(parents[p] == pid for p in parsers)]
    return servers, parsers


def pipeline_load(path: Path, warm_up: Path, profile: Path | None) -> RunOutcome:
    from conveyor.content import Limits, OfflineContext
    from conveyor.extractors.isolation import close_shared
    from conveyor.extractors.spooling import local_document
    from conveyor.pipelines import get_pipeline, run_pipeline

    pipeline = get_pipeline("timecard")
    params = pipeline.validate_params({})
    context = OfflineContext(Limits(parse_workers=1))
    run_pipeline(pipeline, local_document(warm_up), params, context)  # parser pool started
    document = local_document(path)  # hashing and sniffing happen on intake, before a job exists
    _, parsers = _forkserver_and_parsers()
    parser_cpu = process_cpu_s(parsers)
    start_rss = _rss_mb()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    result = run_pipeline(pipeline, document, params, context)
    kinds = Counter(record.kind for record in result.records)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    servers, now_parsers = _forkserver_and_parsers()
    if now_parsers != parsers:
        raise RuntimeError(f"parser processes changed during the run: {parsers} -> {now_parsers}")
    outcome = RunOutcome(
        rows=int(result.summary["entries"]),
        elapsed_s=elapsed,
        peak_rss_mb=_rss_mb(),
        start_rss_mb=start_rss,
        cpu_s=cpu,
        parser_peak_mb=sum(_status_kb(pid, "VmHWM") for pid in parsers) / 1024,
        parser_cpu_s=process_cpu_s(parsers) - parser_cpu,
        forkserver_mb=sum(_status_kb(pid, "VmHWM") for pid in servers) / 1024,
        entries=kinds["entry"],
        weeks=kinds["week"],
        findings=len(result.findings),
    )
    close_shared()
    return outcome


def baseline_load(path: Path) -> RunOutcome:
    import openpyxl  # type: ignore[import-untyped]  # noqa: F401  (imported untimed, like pandas)
    import pandas  # type: ignore[import-untyped]

    start_rss = _rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    frame = pandas.read_excel(path, engine="openpyxl")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return RunOutcome(len(frame), elapsed, _rss_mb(), start_rss, cpu)


def load_main(method: str, path: Path, warm_up: Path, profile: Path | None, outcomes: Queue[Any]) -> None:
    """A spawned process: one load, its outcome (or error) put on ``outcomes``."""
    try:
        if method == "pipeline":
            outcomes.put(pipeline_load(path, warm_up, profile))
        else:
            outcomes.put(baseline_load(path))
    except Exception as error:
        outcomes.put(RunOutcome(0, 0.0, 0.0, 0.0, error=repr(error)))
        raise


def load(method: str, path: Path, warm_up: Path, profile: Path | None = None) -> RunOutcome:
    context = multiprocessing.get_context("spawn")
    outcomes: Any = context.Queue()
    process = context.Process(target=load_main, args=(method, path, warm_up, profile, outcomes))
    process.start()
    try:
        [outcome] = collect(outcomes, 1, [process], TIMEOUT_S)
    finally:
        stop([process], grace_s=60)
    assert isinstance(outcome, RunOutcome)
    if outcome.error:
        raise RuntimeError(f"{method} load of {path.name} failed: {outcome.error}")
    return outcome


def _row(label: str, runs: Sequence[RunOutcome], baseline_s: float, rows: int) -> list[str]:
    seconds = report.median([o.elapsed_s for o in runs])
    parser = [o.parser_peak_mb for o in runs]
    return [
        label,
        f"{rows:,}",
        report.rate(report.median([o.entries for o in runs]) / seconds) if runs[0].entries else "-",
        report.rate(rows / seconds),
        f"{seconds:.2f}",
        f"{report.median([o.cpu_s for o in runs]):.2f}"
        + (f" + {report.median([o.parser_cpu_s for o in runs]):.2f}" if any(parser) else ""),
        f"{max(o.peak_rss_mb for o in runs):,.0f}",
        f"{max(parser):,.0f}" if any(parser) else "-",
        f"{max(o.pipeline_peak_mb for o in runs):,.0f}",
        report.ratio(baseline_s / seconds),
    ]


def run(quick: bool) -> report.BenchReport:
    rows, repeats = (10_000, 1) if quick else (100_000, 3)
    outcome = report.BenchReport(
        name="timecard_throughput",
        title=f"Timecard xlsx, {rows:,} rows x {len(HEADER)} columns, {EMPLOYEES} employees"
        f" (median of {repeats})",
        columns=[
            "method",
            "rows",
            "entries/s",
            "rows/s",
            "seconds",
            "CPU s (+ parser)",
            "peak RSS MB",
            "parser peak MB",
            "total peak MB",
            "vs pandas load",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-timecard-") as scratch:
        path, warm_up = Path(scratch) / "timecards.xlsx", Path(scratch) / "warm-up.xlsx"
        report.progress(f"timecards: writing {rows:,} rows")
        write_xlsx(path, {"Hours": timecard_grid(rows)})
        write_xlsx(warm_up, {"Hours": timecard_grid(10)})
        megabytes = path.stat().st_size / 1e6
        results: dict[str, list[RunOutcome]] = {"pandas": [], "pipeline": []}
        for attempt in range(repeats):
            for method in results:
                report.progress(f"timecards: {method} run {attempt + 1}/{repeats}")
                results[method].append(load(method, path, warm_up))
    for method, runs in results.items():
        for run_outcome in runs:
            if run_outcome.rows != rows:
                raise RuntimeError(f"{method}: {run_outcome.rows} rows read of {rows}")
    pandas_s = report.median([o.elapsed_s for o in results["pandas"]])
    pipeline_s = report.median([o.elapsed_s for o in results["pipeline"]])
    outcome.rows = [
        _row("pandas.read_excel(engine='openpyxl'), load only", results["pandas"], pandas_s, rows),
        _row("timecard pipeline: read + extract + weeks + rules", results["pipeline"], pandas_s, rows),
    ]
    ratio = pandas_s / pipeline_s
    memory = max(o.pipeline_peak_mb for o in results["pipeline"])
    outcome.targets = [
        report.Target(
            f"pipeline at least {TARGET_RATIO:.0f}x faster than the pandas load alone: {ratio:.2f}x",
            None if quick else ratio >= TARGET_RATIO,
        ),
        report.Target(
            f"pipeline memory under {TARGET_MEMORY_MB:.0f} MB (its process + parser process, peaks"
            f" summed): {memory:,.0f} MB",
            None if quick else memory < TARGET_MEMORY_MB,
        ),
    ]
    first = results["pipeline"][0]
    outcome.notes += [
        f"file {megabytes:.1f} MB; {first.entries:,} entries, {first.weeks:,} weeks,"
        f" {first.findings:,} findings",
        "each run a fresh spawned process, timed from the call to the last record; pandas and the"
        " parser pool (on a 10-row workbook) are started untimed; peak RSS is ru_maxrss, imports"
        " included",
        "parser peak: VmHWM of the pool's process from /proc before the pool is closed; the"
        f" forkserver it is forked from (shared pages, idle) peaked at"
        f" {max(o.forkserver_mb for o in results['pipeline']):,.0f} MB, not counted",
    ]
    outcome.data = {
        "rows": rows,
        "file_mb": megabytes,
        "runs": {method: [asdict(o) for o in runs] for method, runs in results.items()},
        "ratio": ratio,
        "pipeline_peak_mb": memory,
    }
    return outcome
