"""The upload API: 1 KB uploads at 50 concurrent connections from a separate load-generator process,
against ``conveyor serve --workers 0`` started as a subprocess; ``GET /health`` on the same server
with the same generator is the floor of the HTTP stack."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.environment import REPO_ROOT, free_port, postgres_server_url, process_cpu_s, throwaway_database
from bench.load_generator import LoadOutcome, LoadSpec, generate_main
from bench.processes import collect, stop

CONVEYOR = REPO_ROOT / ".venv" / "bin" / "conveyor"
TARGET_RATE = 1000.0
TARGET_P99_S = 0.100
START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Sizes:
    warmup_s: float
    duration_s: float
    repeats: int


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    api_key: str
    pid: int


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "CONVEYOR_DATA_DIR": str(data_dir), "CONVEYOR_LOG_LEVEL": "WARNING"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    env.pop("CONVEYOR_STORAGE_URL", None)
    if database_url:
        env["CONVEYOR_DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def running_server(data_dir: Path, database_url: str | None) -> Iterator[Server]:
    """``conveyor serve`` on a free loopback port, with a submitter key; stopped on exit."""
    env = _environment(data_dir, database_url)
    port = free_port()
    log = (data_dir / "serve.log").open("wb")
    command = [str(CONVEYOR), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0"]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(base_url, process, data_dir)
        created = subprocess.run(
            [str(CONVEYOR), "keys", "create", "--role", "submitter"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        yield Server(base_url, created.stdout.strip().splitlines()[-1], process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    tail = (data_dir / "serve.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"conveyor serve did not come up (exit code {process.poll()}):\n{tail}")


@dataclass(frozen=True, slots=True)
class Measured:
    load: LoadOutcome
    server_cpu_ms: float  # per answered request, in the server process


def drive(spec: LoadSpec) -> LoadOutcome:
    context = multiprocessing.get_context("spawn")
    outcomes: Any = context.Queue()
    process = context.Process(target=generate_main, args=(spec, outcomes))
    process.start()
    try:
        [outcome] = collect(outcomes, 1, [process], spec.warmup_s + spec.duration_s + 120)
    finally:
        stop([process])
    assert isinstance(outcome, LoadOutcome)
    return outcome


def measure(server: Server, sizes: Sizes, label: str) -> dict[str, list[Measured]]:
    specs = {
        "health": LoadSpec(f"{server.base_url}/health", "health", "", 50, sizes.warmup_s, sizes.duration_s),
        "upload": LoadSpec(
            f"{server.base_url}/api/upload", "upload", server.api_key, 50, sizes.warmup_s, sizes.duration_s
        ),
    }
    results: dict[str, list[Measured]] = {name: [] for name in specs}
    for attempt in range(sizes.repeats):
        for name, spec in specs.items():
            report.progress(f"upload {label} {name} run {attempt + 1}/{sizes.repeats}")
            cpu_before = process_cpu_s([server.pid])
            load = drive(spec)
            cpu_ms = (process_cpu_s([server.pid]) - cpu_before) / max(1, load.answered) * 1000
            results[name].append(Measured(load, cpu_ms))
    return results


@contextlib.contextmanager
def databases() -> Iterator[dict[str, str | None]]:
    """SQLite in the data dir (the default), and a throwaway PostgreSQL database when reachable."""
    server = postgres_server_url()
    if server is None:
        yield {"sqlite": None}
        return
    with throwaway_database(server, "upload") as url:
        yield {"sqlite": None, "postgresql": url}


def _row(database: str, endpoint: str, runs: list[Measured], floor: float) -> list[str]:
    outcomes = [run.load for run in runs]
    rate = report.median([o.rate for o in outcomes])
    return [
        database,
        endpoint,
        report.rate(rate),
        report.millis(report.median([o.p50_s for o in outcomes])),
        report.millis(report.median([o.p99_s for o in outcomes])),
        f"{sum(o.errors for o in outcomes):,}",
        f"{report.median([run.server_cpu_ms for run in runs]):.2f}",
        report.ratio(rate / floor if floor else None),
    ]


def run(*, quick: bool) -> report.BenchReport:
    sizes = Sizes(0.5, 2.0, repeats=1) if quick else Sizes(2.0, 10.0, repeats=3)
    bench = report.BenchReport(
        name="upload",
        title=f"Upload API, 1 KB files, 50 connections, {sizes.duration_s:.0f} s runs"
        f" (median of {sizes.repeats})",
        columns=[
            "database",
            "endpoint",
            "requests/s",
            "p50",
            "p99",
            "errors",
            "server CPU ms/req",
            "vs /health",
        ],
    )
    verdicts: list[report.Target] = []
    with databases() as urls:
        for database, url in urls.items():
            with (
                tempfile.TemporaryDirectory(prefix="conveyor-bench-upload-") as scratch,
                running_server(Path(scratch), url) as server,
            ):
                results = measure(server, sizes, database)
            floor = report.median([run.load.rate for run in results["health"]])
            bench.rows.append(_row(database, "GET /health", results["health"], floor))
            bench.rows.append(_row(database, "POST /api/upload", results["upload"], floor))
            bench.data[database] = {name: [asdict(run) for run in runs] for name, runs in results.items()}
            uploads = [run.load for run in results["upload"]]
            rate = report.median([o.rate for o in uploads])
            p99 = report.median([o.p99_s for o in uploads])
            errors = sum(o.errors for o in uploads)
            verdicts.append(
                report.Target(
                    f"{database}: >= {TARGET_RATE:,.0f} uploads/s, p99 < {TARGET_P99_S * 1000:.0f} ms, no"
                    f" errors: {report.rate(rate)}/s, p99 {report.millis(p99)}, {errors} errors",
                    rate >= TARGET_RATE and p99 < TARGET_P99_S and errors == 0,
                )
            )
            first_error = next((o.first_error for o in uploads if o.first_error), None)
            if first_error:
                bench.notes.append(f"{database}: first upload error: {first_error}")
    bench.targets = verdicts
    bench.notes.extend(
        [
            "server: conveyor serve --workers 0 (one uvicorn process); load generator: one process, asyncio"
            " streams on uvloop, 50 keep-alive connections; each upload's bytes are distinct (no dedup)",
            "server CPU ms/req: the server process's CPU (from /proc) over the run, warm-up included, per"
            " answered request (PostgreSQL's own CPU not counted)",
        ]
    )
    return bench
