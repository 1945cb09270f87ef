"""The ``timecard`` pipeline: a spreadsheet in, ``entry`` and ``week`` records and wage-and-hour
findings out, with review asked for when a rule finds an error or extraction is unsure.

    workbook (parser process, limits)  ->  tables found, entries extracted  ->  workweeks and pay
    ->  rules  ->  records, findings, review
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field

from conveyor.content import DocumentInput, Finding, PipelineContext, PipelineResult, Record
from conveyor.errors import Cancelled, InputError
from conveyor.extractors.cells import gc_paused
from conveyor.extractors.isolation import Deadline, sandbox_for
from conveyor.extractors.spooling import local_file
from conveyor.extractors.spreadsheet import SPREADSHEET_TYPES, Workbook, read_workbook
from conveyor.pipelines.params import checked_params
from conveyor.pipelines.timecards import rules
from conveyor.pipelines.timecards.assisted import Assisted, assisted_entries
from conveyor.pipelines.timecards.extraction import extract_entries
from conveyor.pipelines.timecards.model import Entry, RuleSettings, Week
from conveyor.pipelines.timecards.reading import CACHED_CELLS
from conveyor.pipelines.timecards.weeks import CENT, week_workings


class TimecardParams(RuleSettings):
    """The rules' settings plus what only extraction needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int | None = Field(default=None, ge=1900, le=2200)
    min_confidence: float = Field(default=0.7, ge=0, le=1)
    # Ask the configured language model (if any) about rows read with less than min_confidence.
    use_model: bool = True


class TimecardPipeline:
    """xlsx, xlsm, xls, ods, csv timecards in; entries, weeks and FLSA findings out."""

    name = "timecard"
    shared_keys = False

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return checked_params(TimecardParams, params).model_dump(mode="json")

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult:
        options = TimecardParams.model_validate(self.validate_params(params))
        if document.media_type not in SPREADSHEET_TYPES:
            raise InputError(
                f"{document.filename}: the timecard pipeline reads spreadsheets (xlsx, xlsm, xls, ods,"
                f" csv); this file's content is {document.media_type}"
            )
        # Hundreds of thousands of small acyclic objects (the workbook's cells as they arrive from the
        # parser, entries, Decimals, datetimes, records): the cyclic collector would walk that growing
        # heap again and again, a third of the run, and find nothing.
        with gc_paused():
            workbook = _read(document, context)
            if context.is_cancelled():
                raise Cancelled
            return self._result(workbook, document, options, context)

    def _result(
        self, workbook: Workbook, document: DocumentInput, options: TimecardParams, context: PipelineContext
    ) -> PipelineResult:
        entries = extract_entries(workbook.sheets, year=options.year)
        model = context.language_model if options.use_model else None
        assisted = (
            Assisted(entries)
            if model is None
            else assisted_entries(model, workbook.sheets, entries, min_confidence=options.min_confidence)
        )
        entries = assisted.entries
        if not entries:
            raise InputError(
                f"{document.filename}: no timecard table found (a header row naming at least a date or"
                " day and in/out or hours columns)"
            )
        checked = checked_entries(entries, RuleSettings.of(options.model_dump()))
        findings = checked.findings
        result = PipelineResult(findings=[*assisted.findings, *findings])
        result.records = [*map(entry_record, entries), *map(week_record, checked.weeks)]
        if any(finding.severity == "error" for finding in findings):
            result.review.ask("rule_violation")
        unsure = [entry for entry in entries if entry.confidence < options.min_confidence]
        if unsure:
            result.review.ask("low_confidence")
        if assisted.model_rows:
            result.review.ask("model_extracted")
        result.summary = {
            "entries": len(entries),
            **checked.summary,
            "low_confidence_entries": len(unsure),
            "model_rows": assisted.model_rows,
        }
        return result


@dataclass(frozen=True, slots=True)
class Checked:
    """Entries' workweeks and rule findings, and the summary figures they give."""

    weeks: list[Week]
    findings: list[Finding]
    summary: dict[str, Any]


def checked_entries(entries: Sequence[Entry], settings: RuleSettings) -> Checked:
    """What a run computes from its entries and a reviewer's correction computes again: one place,
    so the two never drift."""
    workings = week_workings(entries, settings)
    weeks = [work.week for work in workings]
    findings = rules.check(entries, weeks, settings, workings=workings)
    summary = {
        "employees": len({entry.employee for entry in entries}),
        "weeks": len(weeks),
        "hours": _number(sum((entry.hours for entry in entries), Decimal(0))),
        "findings_by_rule": dict(Counter(finding.rule for finding in findings)),
    }
    return Checked(weeks, findings, summary)


def _read(document: DocumentInput, context: PipelineContext) -> Workbook:
    limits = context.limits
    with local_file(document, limits) as path:
        workbook: Workbook = sandbox_for(limits).run(
            read_workbook,
            path,
            document.media_type,
            document.filename,
            limits,
            deadline=Deadline.start(limits.seconds_per_file),
            subject=document.filename,
            is_cancelled=context.is_cancelled,
        )
    return workbook


@functools.lru_cache(maxsize=CACHED_CELLS)
def _number(value: Decimal | None) -> float | None:
    """Cached: a sheet's hours and rates take few distinct values over many rows."""
    return None if value is None else float(value.quantize(CENT))


def _moment(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="minutes")


def entry_record(entry: Entry) -> Record:
    return Record(
        kind="entry",
        key=entry.source,
        data={
            "employee": entry.employee,
            "date": entry.date.isoformat(),
            "start": _moment(entry.start),
            "end": _moment(entry.end),
            "hours": _number(entry.hours),
            "break_hours": _number(entry.break_hours),
            "rate": _number(entry.rate),
            "source": entry.source,
            "confidence": round(entry.confidence, 2),
        },
    )


def week_record(week: Week) -> Record:
    return Record(
        kind="week",
        key=f"{week.employee}:{week.week_start.isoformat()}",
        data={
            "employee": week.employee,
            "week_start": week.week_start.isoformat(),
            "hours": _number(week.hours),
            "regular_hours": _number(week.regular_hours),
            "overtime_hours": _number(week.overtime_hours),
            "double_time_hours": _number(week.double_time_hours),
            "rate": _number(week.rate),
            "regular_pay": _number(week.regular_pay),
            "overtime_pay": _number(week.overtime_pay),
            "total_pay": _number(week.total_pay),
        },
    )
