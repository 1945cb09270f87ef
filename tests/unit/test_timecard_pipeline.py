"""The ``timecard`` pipeline on generated spreadsheets: the Department of Labor's worked examples as
exact figures, violations asking for review, and files that are not timecards refused by name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from conveyor.content import OfflineContext, PipelineResult
from conveyor.errors import InputError
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline
from tests.documents import write
from tests.sheets import xlsx_bytes

PIPELINE = get_pipeline("timecard")
SUNDAY = dt.date(2024, 3, 3)
HEADER = ["Employee", "Date", "Time In", "Time Out", "Rate"]


def week_of(name: str, hours_per_day: list[float], rate: float) -> list[list[Any]]:
    """Rows starting 8:00 on Monday onward, each ``hours`` long."""
    rows: list[list[Any]] = []
    for offset, hours in enumerate(hours_per_day, 1):
        start = dt.datetime.combine(SUNDAY + dt.timedelta(days=offset), dt.time(8))
        end = start + dt.timedelta(hours=hours)
        rows.append([name, start.date(), start.time(), end.time(), rate])
    return rows


def run(
    tmp_path: Path, rows: list[list[Any]], params: dict[str, Any] | None = None
) -> tuple[PipelineResult, list[dict[str, Any]]]:
    path = write(tmp_path / "card.xlsx", xlsx_bytes({"Week": [HEADER, *rows]}))
    result = run_pipeline(
        PIPELINE, local_document(path), PIPELINE.validate_params(params or {}), OfflineContext()
    )
    return result, [record.as_json() for record in result.records]


def weeks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record["data"] for record in records if record["kind"] == "week"]


def test_45_hours_at_12_dollars(tmp_path: Path) -> None:
    """DOL Fact Sheet #23 style: 45 hours at $12.00 is 40 regular and 5 overtime, $480.00 + $90.00."""
    result, records = run(tmp_path, week_of("Ada", [9, 9, 9, 9, 9], 12))
    [week] = weeks(records)
    assert week == {
        "employee": "Ada",
        "week_start": "2024-03-03",
        "hours": 45.0,
        "regular_hours": 40.0,
        "overtime_hours": 5.0,
        "double_time_hours": 0.0,
        "rate": 12.0,
        "regular_pay": 480.0,
        "overtime_pay": 90.0,
        "total_pay": 570.0,
    }
    [overtime] = [finding for finding in result.findings if finding.rule == "overtime"]
    assert overtime.severity == "info" and "29 CFR 778.107" in overtime.message
    assert not result.review.required
    entries = [record["data"] for record in records if record["kind"] == "entry"]
    assert [entry["source"] for entry in entries][:2] == ["Week!A2:E2", "Week!A3:E3"]
    assert result.summary["entries"] == 5 and result.summary["hours"] == 45.0


def test_under_the_minimum_wage_asks_for_review(tmp_path: Path) -> None:
    result, _ = run(tmp_path, week_of("Grace", [8, 8, 8, 8, 8], 7))
    [violation] = [finding for finding in result.findings if finding.rule == "minimum_wage"]
    assert violation.severity == "error"
    assert "7.25" in violation.message
    assert result.review.required and "rule_violation" in result.review.reasons


def test_the_threshold_is_a_param(tmp_path: Path) -> None:
    _, records = run(tmp_path, week_of("Ada", [9, 9, 9, 9, 9], 12), {"overtime_threshold_hours": 44})
    [week] = weeks(records)
    assert (week["regular_hours"], week["overtime_hours"]) == (44.0, 1.0)


def test_a_sheet_without_a_timecard_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.xlsx", xlsx_bytes({"Prices": [["Item", "Price"], ["Tea", 3]]}))
    with pytest.raises(InputError, match=r"prices\.xlsx: no timecard table found"):
        run_pipeline(PIPELINE, local_document(path), PIPELINE.validate_params({}), OfflineContext())


def test_bad_params_are_named() -> None:
    with pytest.raises(InputError, match="param 'workweek_start'"):
        PIPELINE.validate_params({"workweek_start": "someday"})
