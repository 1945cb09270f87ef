"""The one place benchmarks print: progress lines, result tables, targets; and the JSON results."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench.environment import RESULTS_DIR

# Tables are wider than the 80 columns rich assumes when output goes to a file or a pipe.
console = Console(highlight=False, width=None if Console().is_terminal else 160)
status = Console(stderr=True, highlight=False, width=None if Console(stderr=True).is_terminal else 200)


@dataclass(frozen=True, slots=True)
class Target:
    description: str
    met: bool | None  # None: not measured in this run


@dataclass(slots=True)
class BenchReport:
    """One benchmark's outcome: a table of figures side by side, the targets and notes, and the raw
    data (every run, not only medians) that goes into ``bench/results/<name>.json``."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def millis(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def progress(message: str) -> None:
    status.print(f"[dim]… {message}[/dim]")


def show(report: BenchReport) -> None:
    table = Table(title=report.title, title_justify="left", show_lines=False)
    for index, column in enumerate(report.columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in report.rows:
        table.add_row(*row)
    console.print()
    console.print(table)
    for target in report.targets:
        mark = {True: "[green]met[/green]", False: "[red]MISSED[/red]", None: "[yellow]n/a[/yellow]"}
        console.print(f"  target: {target.description} - {mark[target.met]}")
    for note in report.notes:
        console.print(f"  [dim]note: {note}[/dim]")


def save(report: BenchReport, *, quick: bool) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        **asdict(report),
        "quick": quick,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "node": platform.node()},
    }
    path = RESULTS_DIR / f"{report.name}.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    console.print(f"  [dim]results: {path}[/dim]")
