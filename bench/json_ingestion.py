"""JSON ingestion into PostgreSQL: a million nested records through the records pipeline and
``write_records`` (COPY), beside one ``INSERT ... ON CONFLICT`` per record on a subset."""

from __future__ import annotations

import multiprocessing
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench import report
from bench.environment import libpq_url, postgres_server_url, throwaway_database
from bench.json_loaders import LoadOutcome, load_main
from bench.processes import collect, stop

TARGET_RATE = 50_000.0
TARGET_RATIO = 20.0
TIMEOUT_S = 900.0
CHUNK = 10_000
CITIES = ("Utrecht", "Lyon", "Porto", "Graz", "Aarhus", "Gent", "Turku", "Brno")


@dataclass(frozen=True, slots=True)
class Sizes:
    records: int
    subset: int
    repeats: int


def record(n: int) -> dict[str, Any]:
    customer = n % 50_000
    return {
        "id": n,
        "order": {
            "id": f"ORD-{n:08d}",
            "placed_at": f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}T{n % 24:02d}:15:00Z",
            "total": round(19.99 * (n % 7 + 1) + 4.5, 2),
            "lines": [
                {"sku": f"SKU-{n % 997:04d}", "qty": n % 5 + 1, "price": 19.99},
                {"sku": f"SKU-{(n * 7) % 997:04d}", "qty": 1, "price": 4.5},
            ],
        },
        "customer": {
            "id": customer,
            "name": f"Customer {customer}",
            "email": f"c{customer}@example.com",
            "address": {"city": CITIES[customer % len(CITIES)], "country": "EU"},
        },
    }


def write_file(path: Path, count: int) -> int:
    """A JSON array of ``count`` records, written in chunks; returns its size in bytes."""
    with path.open("wb") as out:
        out.write(b"[")
        for start in range(0, count, CHUNK):
            chunk = orjson.dumps([record(n) for n in range(start, min(count, start + CHUNK))])
            out.write((b"," if start else b"") + chunk[1:-1])
        out.write(b"]")
    return path.stat().st_size


def reset(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("TRUNCATE records")
        connection.execute("CHECKPOINT")


def load(method: str, url: str, path: Path, job_id: int) -> LoadOutcome:
    reset(url)
    context = multiprocessing.get_context("spawn")
    outcomes: Any = context.Queue()
    process = context.Process(target=load_main, args=(method, url, path, job_id, outcomes))
    process.start()
    try:
        [outcome] = collect(outcomes, 1, [process], TIMEOUT_S)
    finally:
        stop([process], grace_s=60)
    assert isinstance(outcome, LoadOutcome)
    if outcome.error:
        raise RuntimeError(f"{method} load of {path.name} failed: {outcome.error}")
    with psycopg.connect(libpq_url(url)) as connection:
        row = connection.execute("SELECT count(*) FROM records").fetchone()
    if row is None or row[0] != outcome.records:
        raise RuntimeError(f"{method}: {outcome.records} records reported, {row} in the table")
    return outcome


def measure(method: str, url: str, path: Path, repeats: int, label: str) -> list[LoadOutcome]:
    outcomes = []
    for attempt in range(repeats):
        report.progress(f"json {label} run {attempt + 1}/{repeats}")
        outcomes.append(load(method, url, path, job_id=attempt + 1))
    return outcomes


def run(*, quick: bool) -> report.BenchReport:
    sizes = Sizes(50_000, 10_000, repeats=1) if quick else Sizes(1_000_000, 50_000, repeats=3)
    bench = report.BenchReport(
        name="json",
        title=f"JSON ingestion into PostgreSQL (median of {sizes.repeats})",
        columns=[
            "load",
            "records",
            "file MB",
            "records/s",
            "seconds",
            "CPU s client/server",
            "peak RSS MB",
            "RSS growth MB",
            "vs baseline",
        ],
    )
    server = postgres_server_url()
    if server is None:
        bench.notes.append("PostgreSQL unreachable: nothing measured")
        bench.targets.append(report.Target("PostgreSQL available", False))
        return bench
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-bench-json-") as scratch,
        throwaway_database(server, "json") as url,
    ):
        files = {"full": Path(scratch) / "records.json", "subset": Path(scratch) / "subset.json"}
        report.progress(f"json: writing {sizes.records:,} and {sizes.subset:,} records")
        megabytes = {
            "full": write_file(files["full"], sizes.records) / 1e6,
            "subset": write_file(files["subset"], sizes.subset) / 1e6,
        }
        plans = [
            ("baseline", "baseline", "subset", "row-by-row INSERT ... ON CONFLICT (psycopg)"),
            ("conveyor-subset", "conveyor", "subset", "records pipeline -> write_records (COPY)"),
            ("conveyor", "conveyor", "full", "records pipeline -> write_records (COPY)"),
        ]
        results: dict[str, list[LoadOutcome]] = {}
        for name, method, file, _ in plans:
            results[name] = measure(method, url, files[file], sizes.repeats, name)
    rates = {name: report.median([o.rate for o in outcomes]) for name, outcomes in results.items()}
    for name, _, file, label in plans:
        outcomes = results[name]
        bench.rows.append(
            [
                label,
                f"{outcomes[0].records:,}",
                f"{megabytes[file]:,.0f}",
                report.rate(rates[name]),
                f"{report.median([o.elapsed_s for o in outcomes]):.1f}",
                f"{report.median([o.client_cpu_s for o in outcomes]):.1f}"
                f" / {report.median([o.server_cpu_s for o in outcomes]):.1f}",
                f"{max(o.peak_rss_mb for o in outcomes):,.0f}",
                f"{max(o.peak_rss_mb - o.start_rss_mb for o in outcomes):,.0f}",
                report.ratio(rates[name] / rates["baseline"]),
            ]
        )
    bench.data = {
        "sizes": asdict(sizes),
        "file_mb": megabytes,
        "runs": {name: [asdict(o) for o in outcomes] for name, outcomes in results.items()},
        "median_rates": rates,
    }
    ratio = rates["conveyor"] / rates["baseline"]
    bench.targets = [
        report.Target(
            f"records pipeline + COPY >= {TARGET_RATE:,.0f} records/s: {report.rate(rates['conveyor'])}",
            rates["conveyor"] >= TARGET_RATE,
        ),
        report.Target(f">= {TARGET_RATIO:.0f}x the row-by-row baseline: {ratio:.1f}x", ratio >= TARGET_RATIO),
    ]
    bench.notes.append(
        "each load runs in a fresh process, timed from opening the file to COMMIT; peak RSS is that"
        " process's ru_maxrss (imports included); growth = peak minus ru_maxrss just before the load"
    )
    bench.notes.append("CPU s: the loading process / its PostgreSQL backend (from /proc), medians")
    bench.notes.append(
        "params key=id: records are upserted by natural key into an empty table (TRUNCATE + CHECKPOINT"
        " before each run); files over 64 MB stream through ijson, smaller ones parse whole with orjson"
    )
    return bench
