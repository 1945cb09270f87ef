"""The corpus's real timesheet export through the ``timecard`` pipeline: every row becomes an entry
with the hours its own punches give, and a sheet that names nobody goes to a person for review."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from conveyor.content import OfflineContext
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline


def test_the_timeguard_export(corpus_dir: Path) -> None:
    path = corpus_dir / "timecards" / "timesheets" / "timeguard_timesheet.csv"
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    pipeline = get_pipeline("timecard")
    result = run_pipeline(pipeline, local_document(path), pipeline.validate_params({}), OfflineContext())
    entries = [record.data for record in result.records if record.kind == "entry"]
    assert len(entries) == len(rows) == result.summary["entries"]
    for row, entry in zip(rows, entries, strict=True):
        start = dt.datetime.fromisoformat(f"{row['date']}T{row['start']}")
        end = dt.datetime.fromisoformat(f"{row['date']}T{row['end']}")
        if end <= start:
            end += dt.timedelta(days=1)
        assert entry["date"] == row["date"]
        assert Decimal(str(entry["hours"])) == Decimal((end - start).seconds) / 3600
    weeks = [record.data for record in result.records if record.kind == "week"]
    assert sum(Decimal(str(week["hours"])) for week in weeks) == sum(
        Decimal(str(e["hours"])) for e in entries
    )
    assert result.review.required and "low_confidence" in result.review.reasons, "no employee column"
