"""The issue 5 batch: 6,600 one-page drawings scanned for 200 target codes as a ``codescan`` batch
on the embedded default (SQLite and a data folder, in a temporary folder) through the functions
``conveyor scan`` runs (``scanning.start``, ``worker.running_pool``, ``scanning.follow``), beside a
bare loop doing the least work that finds the codes: pypdfium2 open, every page's
``get_text_range()``, the default pattern's ``finditer``, in one process.

- Throughput: from the batch's commit to COMPLETE as the follower sees it, two worker processes;
  the target holds each worker to one core of the bare loop.
- First match: from the commit, as the follower sees it (it polls every 0.2 s) and by the events'
  ``at`` (STARTED is written last before the commit). The measured batch is made while the workers
  run, as on a server. A 20-drawing batch before it, with a target in its first file, runs as
  ``conveyor scan`` runs (workers started after the commit): the cold figure; it also leaves every
  worker with its parser processes started.
- Memory: VmHWM from /proc of the process that made and followed the batch (the API's role), of
  each worker and of each parser process (replaced after 500 calls: a thread keeps the peak of every
  one it saw); the same thread samples RSS with the batch's counters, for each worker's RSS at 25,
  50, 75 % of the files and at their end (before the report job, which is not the batch growing).

Batches and bare loops run in fresh spawned processes, so peaks are their own. The drawings are
generated once into a cache folder named after the generator's source (``CONVEYOR_BENCH_CACHE``,
default ``~/.cache/conveyor-bench``). ``python -m bench.codescan_batch --files 500`` runs smaller;
``--profile OUT.prof`` instead runs one of the two workers under cProfile and says where its time goes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
from rich.console import Console
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from tests import drawings
from tests.drawings import drawing_pdf, targets_xlsx

from bench import report
from bench.processes import collect, stop
from conveyor import logs, scanning
from conveyor.pipelines.codescan import DEFAULT_PATTERN
from conveyor.settings import Settings
from conveyor.store import migrate
from conveyor.store.database import create_database_engine, read_session_factory, session_factory
from conveyor.store.tables import Batch, BatchFile, Event, Job
from conveyor.worker import WorkerPool, WorkerProcess, running_pool

FILES = 6600
QUICK_FILES = 200
FILES_VARIABLE = "CONVEYOR_BENCH_CODESCAN_FILES"
REPEATS_VARIABLE = "CONVEYOR_BENCH_CODESCAN_REPEATS"
PROFILE_VARIABLE = "CONVEYOR_BENCH_CODESCAN_PROFILE"
WARM_UP_FILES = 20
TARGETS = 200
MATCHABLE_TARGETS = 160  # the other 40 are written nowhere: the report's unmatched targets
MATCH_SHARE = 0.05
SPLIT_SHARE = 0.10
WORKERS = 2
TARGET_SHARE = 0.60
TARGET_FIRST_MATCH_S = 1.0
TARGET_GROWTH = 0.10
SQLITE_BUSY_S = 30.0  # store.database: busy_timeout
SAMPLE_SECONDS = 0.25
TIMEOUT_S = 1800.0
PLAN_VERSION = 1
SEED = "conveyor-codescan-bench"
PREFIXES = ("HOLE", "VLV", "P", "FL")


# --- the drawings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drawing:
    name: str
    codes: tuple[str, ...]
    split: tuple[str, ...]
    targets: int


@dataclass(frozen=True, slots=True)
class Corpus:
    folder: Path
    warm_up: Path
    targets: Path
    files: int
    codes: int
    matches: int  # target codes written: one per drawing that carries one
    first_match: int | None  # the first drawing with a target, by its place in the scan
    warm_up_matches: int


def target_codes() -> list[str]:
    rng = random.Random(f"{SEED}:targets")
    return [f"HOLE-{number}" for number in rng.sample(range(10_000, 20_000), TARGETS)]


def drawing(group: str, index: int, targets: Sequence[str], *, match: bool | None = None) -> Drawing:
    """Drawing ``index`` of ``group``, the same on every machine: two to five codes no target is
    (numbers from 20,000), one target in about one drawing in twenty (or as ``match`` says), and
    about one code in ten broken across a line end."""
    rng = random.Random(f"{SEED}:{group}:{index}")
    codes = [f"{rng.choice(PREFIXES)}-{rng.randrange(20_000, 100_000)}" for _ in range(rng.randint(2, 5))]
    carries = rng.random() < MATCH_SHARE if match is None else match
    if carries:
        codes.insert(rng.randrange(len(codes) + 1), rng.choice(targets[:MATCHABLE_TARGETS]))
    split = tuple(code for code in codes if rng.random() < SPLIT_SHARE)
    return Drawing(f"{group}-{index + 1:05d}.pdf", tuple(codes), split, int(carries))


def cache_folder() -> Path:
    """Named after the generator's source and this plan's version: a change to either generates anew."""
    configured = os.environ.get("CONVEYOR_BENCH_CACHE")
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conveyor-bench"
    digest = hashlib.sha256(Path(drawings.__file__).read_bytes() + f"plan {PLAN_VERSION}".encode())
    return (Path(configured) if configured else home) / f"codescan-{digest.hexdigest()[:12]}"


def prepare(files: int) -> Corpus:
    root = cache_folder()
    targets = target_codes()
    plans = [drawing("drawing", index, targets) for index in range(files)]
    warm = [drawing("warm-up", index, targets, match=index == 0) for index in range(WARM_UP_FILES)]
    store = root / "drawings"
    store.mkdir(parents=True, exist_ok=True)
    missing = [plan for plan in [*plans, *warm] if not (store / plan.name).is_file()]
    if missing:
        report.progress(f"codescan: generating {len(missing):,} drawings into {store} (kept for later runs)")
    for plan in missing:
        _write(store / plan.name, drawing_pdf(plan.codes, split=plan.split))
    if not (root / "targets.xlsx").is_file():
        _write(root / "targets.xlsx", targets_xlsx(targets))
    return Corpus(
        folder=_linked(store, root / f"batch-{files}", plans),
        warm_up=_linked(store, root / "warm-up", warm),
        targets=root / "targets.xlsx",
        files=files,
        codes=sum(len(plan.codes) for plan in plans),
        matches=sum(plan.targets for plan in plans),
        first_match=next((place for place, plan in enumerate(plans, 1) if plan.targets), None),
        warm_up_matches=sum(plan.targets for plan in warm),
    )


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _linked(store: Path, folder: Path, plans: Sequence[Drawing]) -> Path:
    """``folder`` holding these drawings and nothing else (a batch scans every file in it): hard
    links into the store, copies where a link cannot be made."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {plan.name for plan in plans}
    for path in folder.iterdir():
        if path.name not in wanted:
            path.unlink()
    for name in sorted(wanted - {path.name for path in folder.iterdir()}):
        try:
            (folder / name).hardlink_to(store / name)
        except OSError:
            shutil.copyfile(store / name, folder / name)
    return folder


# --- processes, from /proc ----------------------------------------------------------------------------


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    """Children started by any thread of ``pid``."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _cpu_s(pid: int, *, reaped: bool = False) -> float:
    """User + system seconds of ``pid``; with ``reaped``, plus those of the children it waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(value) for value in fields[11 : 15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def _parsers_of(pid: int) -> tuple[int | None, list[int]]:
    """The forkserver ``pid`` started its parser processes from, and those processes."""
    for child in _children(pid):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child, _children(child)
        except OSError:
            continue
    return None, []


def _parser_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid``'s parser processes: those running, and those gone (which their
    forkserver has waited for)."""
    forkserver, parsers = _parsers_of(pid)
    return sum(map(_cpu_s, parsers)) + (_cpu_s(forkserver, reaped=True) if forkserver else 0.0)


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    done: int
    api_mb: float
    workers_mb: tuple[float, ...]
    parsers_mb: tuple[float, ...]  # each worker's parser processes, RSS summed


class Watcher(threading.Thread):
    """Samples the scan's processes with the batch's counters every SAMPLE_SECONDS, and keeps the
    peak (VmHWM) of every process it saw, so parser processes replaced mid-batch still count."""

    def __init__(self, pool: WorkerPool, readers: sessionmaker[Session], batch_id: int) -> None:
        super().__init__(name="bench-watcher", daemon=True)
        self.pool, self.readers, self.batch_id = pool, readers, batch_id
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self.samples: list[Sample] = []
        self.peaks: dict[tuple[str, int], float] = {}  # (worker | parser | forkserver, pid) -> MB
        self.cpu_at_start = self.cpu_s()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            self.sample()

    def finish(self) -> None:
        self.stopped.set()
        self.join()
        self.sample()

    def workers(self) -> list[int]:
        return [process.pid for process in self.pool.processes if process.pid]

    def sample(self) -> None:
        with self.readers() as session:
            done = session.execute(
                select(Batch.processed + Batch.failed).where(Batch.id == self.batch_id)
            ).scalar_one()
        workers, parsers = [], []
        for worker in self.workers():
            forkserver, children = _parsers_of(worker)
            roles = [("worker", worker), *(("parser", pid) for pid in children)]
            for role, pid in [*roles, *([("forkserver", forkserver)] if forkserver else [])]:
                self.peaks[role, pid] = max(self.peaks.get((role, pid), 0.0), _status_mb(pid, "VmHWM"))
            workers.append(_status_mb(worker, "VmRSS"))
            parsers.append(sum(_status_mb(pid, "VmRSS") for pid in children))
        api = _status_mb(os.getpid(), "VmRSS")
        self.samples.append(
            Sample(time.monotonic() - self.started, done, api, tuple(workers), tuple(parsers))
        )

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds so far of the workers, and of their parser processes."""
        workers = self.workers()
        return sum(map(_cpu_s, workers)), sum(map(_parser_cpu_s, workers))

    def peak_mb(self, role: str) -> float:
        return max((mb for (kind, _), mb in self.peaks.items() if kind == role), default=0.0)


# --- one batch run, in a process of its own -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRun:
    create_s: float  # scanning.start of the measured batch: files stored, rows, chunk jobs, commit
    seen_s: float  # commit -> COMPLETE, as the follower saw it
    settled_s: float  # STARTED.at -> the last file settled
    report_s: float  # the last file settled -> COMPLETE.at: the report job
    first_seen_s: float | None
    first_event_s: float | None
    follower_lag_s: float  # the first match seen by the follower, after its event's at
    cold_first_seen_s: float | None
    cold_first_event_s: float | None
    api_peak_mb: float
    api_parser_peak_mb: float  # the API process reads the target list in parser processes of its own
    worker_peak_mb: tuple[float, ...]
    parser_peak_mb: float  # the largest parser process
    forkserver_peak_mb: float
    api_cpu_s: float
    worker_cpu_s: float
    parser_cpu_s: float
    samples: tuple[Sample, ...]


class _Clock:
    """Seconds since a batch's commit, and to the first match the follower showed (also as a
    wall-clock time, to set beside the event's ``at``)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.first_match: float | None = None
        self.first_match_at = 0.0

    def match(self, _found: dict[str, Any]) -> None:
        if self.first_match is None:
            self.first_match, self.first_match_at = self.since(), time.time()

    def since(self) -> float:
        return time.monotonic() - self.start


def _database(data_dir: Path) -> tuple[Settings, Engine]:
    # Logging at WARNING: INFO writes a line per chunk job, 660 of them.
    settings = Settings(data_dir=data_dir, database_url=None, storage_url=None, log_level="WARNING")
    logs.configure(settings.log_level, settings.log_format)
    engine = create_database_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    return settings, engine


def _request(folder: Path, corpus: Corpus) -> scanning.ScanRequest:
    return scanning.ScanRequest(folder, targets=corpus.targets, workers=WORKERS)


def _checked(outcome: scanning.ScanOutcome, files: int, matches: int) -> None:
    expected = {"type": "COMPLETE", "total": files, "processed": files, "failed": 0, "matches": matches}
    got = {name: outcome.last_event.get(name) for name in expected}
    if got != expected or len(outcome.matches) != matches:
        raise RuntimeError(
            f"batch {outcome.batch_id} ended {got}, {len(outcome.matches)} matches shown; expected {expected}"
        )


def _event_times(sessions: sessionmaker[Session], batch_id: int) -> dict[str, float]:
    """Seconds from STARTED to the first event of each type and to the last file settled; and the
    first MATCH_FOUND's ``at`` as a Unix time."""
    with sessions() as session:
        query = select(Event.type, func.min(Event.at)).where(Event.batch_id == batch_id).group_by(Event.type)
        firsts = dict(session.execute(query).all())
        last_file = session.scalar(
            select(func.max(BatchFile.finished_at)).where(BatchFile.batch_id == batch_id)
        )
    started = firsts.pop("STARTED")
    assert last_file is not None, "a batch without files"
    times = {kind: (at - started).total_seconds() for kind, at in firsts.items()}
    match = firsts.get("MATCH_FOUND")
    match_at = match.replace(tzinfo=match.tzinfo or dt.UTC).timestamp() if match else float("nan")
    return {**times, "last_file": (last_file - started).total_seconds(), "match_at": match_at}


def scan_batches(corpus: Corpus, data_dir: Path) -> BatchRun:
    """The warm-up batch as ``conveyor scan`` runs it, then the measured one on the running workers."""
    settings, engine = _database(data_dir)
    sessions = session_factory(engine)
    console = Console(stderr=True, highlight=False)
    cold_id = scanning.start(settings, sessions, _request(corpus.warm_up, corpus))
    cold = _Clock()
    with running_pool(settings, WORKERS) as pool:
        assert pool is not None
        _checked(
            scanning.follow(sessions, cold_id, console, cold.match), WARM_UP_FILES, corpus.warm_up_matches
        )
        creating = time.monotonic()
        batch_id = scanning.start(settings, sessions, _request(corpus.folder, corpus))
        clock, api_cpu = _Clock(), time.process_time()
        watcher = Watcher(pool, read_session_factory(engine), batch_id)
        watcher.start()
        outcome = scanning.follow(sessions, batch_id, console, clock.match)
        seen_s, api_cpu = clock.since(), time.process_time() - api_cpu
        watcher.finish()
        worker_cpu, parser_cpu = watcher.cpu_s()
        worker_peaks = tuple(_status_mb(pid, "VmHWM") for pid in watcher.workers())
    _checked(outcome, corpus.files, corpus.matches)
    times, cold_times = _event_times(sessions, batch_id), _event_times(sessions, cold_id)
    _, api_parsers = _parsers_of(os.getpid())
    return BatchRun(
        create_s=clock.start - creating,
        seen_s=seen_s,
        settled_s=times["last_file"],
        report_s=times["COMPLETE"] - times["last_file"],
        first_seen_s=clock.first_match,
        first_event_s=times.get("MATCH_FOUND"),
        follower_lag_s=clock.first_match_at - times["match_at"],
        cold_first_seen_s=cold.first_match,
        cold_first_event_s=cold_times.get("MATCH_FOUND"),
        api_peak_mb=_status_mb(os.getpid(), "VmHWM"),
        api_parser_peak_mb=max((_status_mb(pid, "VmHWM") for pid in api_parsers), default=0.0),
        worker_peak_mb=worker_peaks,
        parser_peak_mb=watcher.peak_mb("parser"),
        forkserver_peak_mb=watcher.peak_mb("forkserver"),
        api_cpu_s=api_cpu,
        worker_cpu_s=worker_cpu - watcher.cpu_at_start[0],
        parser_cpu_s=parser_cpu - watcher.cpu_at_start[1],
        samples=tuple(watcher.samples),
    )


# --- the bare loop -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BareRun:
    seconds: float
    cpu_s: float
    codes: int


def bare_loop(folder: Path) -> BareRun:
    pattern = re.compile(DEFAULT_PATTERN, re.IGNORECASE)
    paths = sorted(folder.iterdir())
    codes = 0
    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        document = pdfium.PdfDocument(str(path))
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            codes += sum(1 for _ in pattern.finditer(textpage.get_text_range()))
            textpage.close()
            page.close()
        document.close()
    return BareRun(time.perf_counter() - started, time.process_time() - cpu, codes)


def _reporting(function: Callable[..., object], *args: object) -> None:
    """In a spawned process: ``function(*args[:-1])`` put on the queue ``args[-1]``, or its error."""
    *given, outcomes = args
    assert isinstance(outcomes, Queue)
    try:
        outcomes.put(function(*given))
    except Exception as error:
        outcomes.put(f"{type(error).__name__}: {error}")
        raise


def spawned(function: Callable[..., Any], *args: object) -> Any:
    """``function(*args)`` in a fresh spawned process; what it returned."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    outcomes: Any = context.Queue()
    process = context.Process(target=_reporting, args=(function, *args, outcomes))
    process.start()
    try:
        [outcome] = collect(outcomes, 1, [process], TIMEOUT_S)
    finally:
        stop([process], grace_s=120)
    if isinstance(outcome, str):
        raise RuntimeError(f"{function.__name__} failed: {outcome}")
    return outcome


# --- the table ----------------------------------------------------------------------------------------------


def run(quick: bool) -> report.BenchReport:
    files = int(os.environ.get(FILES_VARIABLE) or (QUICK_FILES if quick else FILES))
    repeats = 1 if quick else int(os.environ.get(REPEATS_VARIABLE) or 3)
    if os.environ.get(PROFILE_VARIABLE):
        return profiled(files, Path(os.environ[PROFILE_VARIABLE]))
    corpus = prepare(files)
    bare: list[BareRun] = []
    batches: list[BatchRun] = []
    for attempt in range(1, repeats + 1):
        report.progress(f"codescan: bare loop over {files:,} drawings, run {attempt}/{repeats}")
        bare.append(spawned(bare_loop, corpus.folder))
        report.progress(f"codescan: batch of {files:,} drawings, {WORKERS} workers, run {attempt}/{repeats}")
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-codescan-") as data_dir:
            batches.append(spawned(scan_batches, corpus, Path(data_dir)))
    return tabled(corpus, bare, batches, quick=quick)


def quarters(samples: Sequence[Sample], total: int) -> list[Sample]:
    """The first samples at 25, 50 and 75 % of the files, and the last before they were all done
    (the report job, which runs next, is not the batch growing)."""
    picked = [next(s for s in samples if 4 * s.done >= quarter * total) for quarter in (1, 2, 3)]
    return [*picked, next((s for s in reversed(samples) if s.done < total), samples[-1])]


def growth(values: Sequence[float]) -> float:
    return values[-1] / values[0] - 1 if values[0] else float("nan")


def _megabytes(values: Sequence[float]) -> str:
    return "/".join(f"{value:,.0f}" for value in values)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def tabled(
    corpus: Corpus, bare: Sequence[BareRun], batches: Sequence[BatchRun], *, quick: bool
) -> report.BenchReport:
    files = corpus.files
    outcome = report.BenchReport(
        name="codescan_batch",
        title=f"codescan batch: {files:,} one-page text drawings, {TARGETS} targets, {WORKERS} worker"
        f" processes, SQLite (median of {len(batches)})",
        columns=["measure", "median", "vs bare loop", "runs"],
    )
    bare_rate = report.median([files / run.seconds for run in bare])
    bare_cpu = report.median([run.cpu_s for run in bare])

    def row(
        label: str, values: Sequence[float | None], show: Callable[[float], str], versus: float | str = ""
    ) -> None:
        known = [value for value in values if value is not None]
        middle = report.median(known) if known else None
        shown = ", ".join("-" if value is None else show(value) for value in values)
        ratio = report.ratio(middle / versus) if isinstance(versus, float) and middle else str(versus)
        outcome.rows.append([label, "-" if middle is None else show(middle), ratio, shown])

    def cpu_ms(seconds: float) -> str:
        return f"{seconds * 1000 / files:.2f} ms"

    rates = [files / run.seen_s for run in batches]
    bare_rates, settled = [files / r.seconds for r in bare], [files / r.settled_s for r in batches]
    rows: list[tuple[str, Sequence[float | None], Callable[[float], str], float | str]] = [
        ("bare loop, 1 process (pdfium text + regex), files/s", bare_rates, report.rate, bare_rate),
        ("batch, commit -> COMPLETE (follower), files/s", rates, report.rate, bare_rate),
        ("  per worker process, files/s", [rate / WORKERS for rate in rates], report.rate, bare_rate),
        ("  STARTED -> last file settled (at), files/s", settled, report.rate, bare_rate),
        ("  report job: last file -> COMPLETE (at)", [r.report_s for r in batches], _seconds, ""),
        (
            "batch creation (store, rows, jobs), files/s",
            [files / r.create_s for r in batches],
            report.rate,
            "",
        ),
        ("first MATCH_FOUND after commit (follower)", [r.first_seen_s for r in batches], _seconds, ""),
        ("  by the events' at (STARTED -> MATCH_FOUND)", [r.first_event_s for r in batches], _seconds, ""),
        ("  the follower saw it after its at", [r.follower_lag_s for r in batches], _seconds, ""),
        ("  cold, as conveyor scan (follower)", [r.cold_first_seen_s for r in batches], _seconds, ""),
        ("  cold, by the events' at", [r.cold_first_event_s for r in batches], _seconds, ""),
        ("CPU per file: bare loop", [r.cpu_s for r in bare], cpu_ms, bare_cpu),
        ("CPU per file: API process (following)", [r.api_cpu_s for r in batches], cpu_ms, bare_cpu),
        ("CPU per file: worker processes", [r.worker_cpu_s for r in batches], cpu_ms, bare_cpu),
        ("CPU per file: parser processes", [r.parser_cpu_s for r in batches], cpu_ms, bare_cpu),
    ]
    for label, values, show, versus in rows:
        row(label, values, show, versus)
    for label, peaks in (
        ("peak MB: API process (creation, following)", [r.api_peak_mb for r in batches]),
        ("  its parser processes (target list)", [r.api_parser_peak_mb for r in batches]),
        ("peak MB: each worker process", [mb for r in batches for mb in r.worker_peak_mb]),
        ("peak MB: largest parser process", [r.parser_peak_mb for r in batches]),
        ("peak MB: a worker's forkserver", [r.forkserver_peak_mb for r in batches]),
    ):
        outcome.rows.append([label, f"{max(peaks):,.0f} (max)", "", _megabytes(peaks)])
    worst = _memory_rows(outcome, batches, files)
    first_seen = report.median(
        [r.first_seen_s for r in batches if r.first_seen_s is not None] or [float("nan")]
    )
    rate = report.median(rates)
    share = rate / WORKERS / bare_rate
    outcome.targets = [
        report.Target(
            f"per worker process at least {TARGET_SHARE:.0%} of the bare loop's per-core rate:"
            f" {rate / WORKERS:,.0f} of {bare_rate:,.0f} files/s = {share:.0%}",
            None if quick else share >= TARGET_SHARE,
        ),
        report.Target(
            f"first match under {TARGET_FIRST_MATCH_S:.0f} s after the commit, workers running, as the"
            f" follower saw it: {first_seen:.2f} s (the first target is in drawing #{corpus.first_match})",
            None if quick else first_seen < TARGET_FIRST_MATCH_S,
        ),
        report.Target(
            f"memory flat: each worker's RSS at the end of the files within {TARGET_GROWTH:.0%} of its RSS"
            f" at 25 %: worst {worst:+.1%}",
            None if quick else worst < TARGET_GROWTH,
        ),
    ]
    outcome.notes += _notes(corpus, bare, batches)
    outcome.data = {
        "files": files,
        "corpus": {name: str(value) for name, value in asdict(corpus).items()},
        "bare": [asdict(run) for run in bare],
        "batches": [asdict(run) for run in batches],
        "per_worker_share": share,
        "first_match_seen_s": first_seen,
        "worst_worker_growth": worst,
    }
    return outcome


def _memory_rows(outcome: report.BenchReport, batches: Sequence[BatchRun], files: int) -> float:
    """RSS at 25/50/75 % and at the end of the files, per run; the worst worker's growth."""
    worst = float("-inf")
    for number, run in enumerate(batches, 1):
        picked = quarters(run.samples, files)
        count = min(len(sample.workers_mb) for sample in picked)
        workers = [[sample.workers_mb[index] for sample in picked] for index in range(count)]
        growths = [growth(values) for values in workers]
        worst = max(worst, *growths)
        spread = max((max(values) - min(values)) / min(values) for values in workers)
        api = [sample.api_mb for sample in picked]
        parsers = [sum(sample.parsers_mb) for sample in picked]
        outcome.rows += [
            [
                f"workers' RSS MB at 25/50/75/end % (run {number})",
                "  ".join(map(_megabytes, workers)),
                " ".join(f"{value:+.1%}" for value in growths),
                f"spread {spread:.1%}",
            ],
            [
                f"  API, parsers (summed) (run {number})",
                f"{_megabytes(api)}  {_megabytes(parsers)}",
                f"{growth(api):+.1%} {growth(parsers):+.1%}",
                "",
            ],
        ]
    return worst


def _notes(corpus: Corpus, bare: Sequence[BareRun], batches: Sequence[BatchRun]) -> list[str]:
    notes = [
        f"{corpus.files:,} drawings, {corpus.codes:,} codes ({SPLIT_SHARE:.0%} broken across a line end),"
        f" {corpus.matches} with a target; {TARGETS} targets, {TARGETS - MATCHABLE_TARGETS} written"
        f" nowhere; cached in {corpus.folder.parent}",
        f"the bare regex found {report.median([run.codes for run in bare]):,.0f} codes of {corpus.codes:,}:"
        " not the ones broken across lines, which the pipeline joins (its matches are checked exactly)",
        "the follower polls every 0.2 s; idle workers on SQLite poll every 0.5 s (a claim that waited"
        " for the batch's transaction sees its jobs: the clock is read after the lock)",
        "CPU: API process from time.process_time (its sampling thread included), workers and parsers"
        " from /proc (parsers that exited through their forkserver); logging at WARNING",
    ]
    slow = [run.create_s for run in batches if run.create_s > SQLITE_BUSY_S]
    if slow:
        notes.append(
            f"creating the batch held SQLite's write lock for {max(slow):.0f} s, past its"
            f" {SQLITE_BUSY_S:.0f} s busy timeout: the idle workers' claims failed with 'database is"
            " locked' (logged) and backed off"
        )
    return notes


# --- where a worker's time goes -----------------------------------------------------------------------------

Stats = dict[
    tuple[str, int, str], tuple[Any, ...]
]  # pstats: (file, line, function) -> (.., .., own, cumulative, ..)
WAITS = ("acquire' of '_thread.lock", "poll", "select", "sleep")
TOP_FUNCTIONS = 14


def _kind(path: str, name: str) -> str:
    """What a function's own time is spent on."""
    if path == "~" and "sqlite3." in name:
        return "SQLite (C): statements, COMMIT"
    if path == "~" and any(wait in name for wait in WAITS):
        return "waiting: parser results, locks, polls"
    if "/sqlalchemy/" in path:
        return "SQLAlchemy (Python)"
    return "conveyor (Python)" if "/conveyor/" in path else "other Python: stdlib, pebble, pydantic, ..."


def time_spent(stats: Stats) -> dict[str, float]:
    """Seconds of own time by kind (they add up to the whole), the wait for SQLite's write lock taken
    out of SQLite's share, then the conveyor functions with the most cumulative time."""
    kinds: dict[str, float] = {}
    for (path, _, name), timing in stats.items():
        kinds[_kind(path, name)] = kinds.get(_kind(path, name), 0.0) + float(timing[2])
    begin = sum(float(t[3]) for (path, _, name), t in stats.items() if name == "_sqlite_begin")
    kinds["SQLite (C): statements, COMMIT"] = kinds.get("SQLite (C): statements, COMMIT", 0.0) - begin
    kinds["SQLite: BEGIN IMMEDIATE, waiting for the write lock"] = begin
    whole = sum(kinds.values())
    functions = sorted(
        (
            (float(t[3]), f"{path.rsplit('/conveyor/', 1)[1]}:{name}")
            for (path, _, name), t in stats.items()
            if "/conveyor/" in path and float(t[3]) < 0.9 * whole
        ),
        reverse=True,
    )
    ordered = dict(sorted(kinds.items(), key=lambda item: -item[1]))
    return {**ordered, **{f"  {label} (cumulative)": spent for spent, label in functions[:TOP_FUNCTIONS]}}


def profile_worker(corpus: Corpus, data_dir: Path, out: Path) -> dict[str, float]:
    """The batch run by this process as a worker under cProfile beside WORKERS - 1 worker processes,
    after warm-up batches have started everyone's parser processes: seconds spent (``time_spent``),
    this worker's files and its parsers' CPU time."""
    import cProfile
    import pstats

    settings, engine = _database(data_dir)
    sessions = session_factory(engine)
    quiet = Console(quiet=True)
    with running_pool(settings, WORKERS - 1):
        # One warm-up batch for the worker processes, one for this process's parser processes.
        warm_up = scanning.start(settings, sessions, _request(corpus.warm_up, corpus))
        scanning.follow(sessions, warm_up, quiet, _ignore)
        scanning.start(settings, sessions, _request(corpus.warm_up, corpus))
        WorkerProcess(settings).run(idle_exit=True)
        batch_id = scanning.start(settings, sessions, _request(corpus.folder, corpus))
        worker, parser_cpu = WorkerProcess(settings), _parser_cpu_s(os.getpid())
        profiler = cProfile.Profile()
        profiler.runcall(worker.run, idle_exit=True)
        parser_cpu = _parser_cpu_s(os.getpid()) - parser_cpu
        _checked(scanning.follow(sessions, batch_id, quiet, _ignore), corpus.files, corpus.matches)
    profiler.dump_stats(out)
    with sessions() as session:
        mine = select(func.count()).select_from(BatchFile).join(Job, BatchFile.job_id == Job.id)
        files = session.scalar(mine.where(BatchFile.batch_id == batch_id, Job.worker_id == worker.worker_id))
    stats: Stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return {**time_spent(stats), "files": float(files or 0), "parser_cpu": parser_cpu}


def _ignore(_match: dict[str, Any]) -> None:
    pass


def profiled(files: int, out: Path) -> report.BenchReport:
    corpus = prepare(files)
    report.progress(f"codescan: batch of {files:,} drawings, one of {WORKERS} workers under cProfile")
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-codescan-") as data_dir:
        seconds: dict[str, float] = spawned(profile_worker, corpus, Path(data_dir), out.resolve())
    mine, parser_cpu = seconds.pop("files"), seconds.pop("parser_cpu")
    whole = sum(spent for label, spent in seconds.items() if not label.startswith(" "))
    outcome = report.BenchReport(
        name="codescan_batch_profile",
        title=f"codescan batch of {files:,} drawings: one of {WORKERS} workers under cProfile, its"
        f" {mine:,.0f} files",
        columns=["where the worker's time went", "ms per file", "share"],
    )
    for label, spent in [*seconds.items(), ("the worker, in all", whole)]:
        outcome.rows.append([label, f"{spent * 1000 / mine:.2f}", f"{spent / whole:.0%}"])
    outcome.notes += [
        f"{mine / whole:,.0f} files/s for this worker under the profiler; its parser processes used"
        f" {parser_cpu * 1000 / mine:.2f} ms CPU per file (the worker waits for them)",
        "the first rows split the worker's time by what it ran (own time, adding up); the indented"
        " ones are conveyor functions with what they called, which overlap",
        "cProfile slows Python code (SQLAlchemy's most) more than waiting: the benchmark's CPU per"
        f" file is the unprofiled figure; profile: {out}",
    ]
    return outcome


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.codescan_batch [--files N] [--repeats N] [--profile OUT.prof]``: this benchmark
    alone, run as ``python -m bench codescan`` in a new process. Parser processes import the main module
    of the program that started them, unless it is a ``__main__``: this module would cost each of them
    two seconds."""
    parser = argparse.ArgumentParser(prog="python -m bench.codescan_batch", description=main.__doc__)
    parser.add_argument("--files", type=int, default=FILES, help=f"drawings in the batch (default {FILES})")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--profile", type=Path, metavar="OUT.prof", help="profile a worker instead")
    args = parser.parse_args(argv)
    variables = {FILES_VARIABLE: str(args.files), REPEATS_VARIABLE: str(args.repeats)}
    if args.profile:
        variables[PROFILE_VARIABLE] = str(args.profile.resolve())
    return subprocess.call([sys.executable, "-m", "bench", "codescan"], env={**os.environ, **variables})


if __name__ == "__main__":
    sys.exit(main())
