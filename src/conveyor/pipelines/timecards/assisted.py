"""Entries read by a language model where the sheet's own reading is unsure (optional, off by default).

Only with a model configured (``CONVEYOR_AI_PROVIDER``), and only for the rows extraction read with
less confidence than ``min_confidence`` or, when no table was found at all, for the sheets' rows. The
model sees those rows (and the rows above them, for headers and names carried down) as text with
their row numbers, and answers entries in one fixed JSON shape. Each answer is then read by the same
value parsers as a cell and checked against what was asked: a model cannot add a row that was not
asked about, an employee named nowhere on the sheet, a time that is not a time or hours over a week.
The rules then run on these entries as on any other. A row a model read keeps the job in review
(reason ``model_extracted``) with a finding that names the values that came from the model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.ai import LanguageModel, ModelUnavailable
from conveyor.content import Finding
from conveyor.extractors.cells import column_letters, sheet_prefix
from conveyor.extractors.spreadsheet import Sheet
from conveyor.pipelines.timecards import values
from conveyor.pipelines.timecards.model import Entry

MODEL_CONFIDENCE: Final = 0.75
MAX_ROWS: Final = 300  # rows asked about per file; the rest keep the sheet's reading
CONTEXT_ROWS: Final = 6  # rows shown above each asked row: its table's header, names carried down
HEADER_ROWS: Final = 10  # a sheet's first rows, always shown: titles, week labels, headers
MAX_CELL_TEXT: Final = 80
_FIRST_ROW = re.compile(r"[A-Z]{1,3}(\d+)")
_ENTRY_FIELDS: Final = ("sheet", "row", "employee", "date", "start", "end", "hours", "break_hours", "rate")
_NULLABLE_TEXT = {"type": ["string", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}

INSTRUCTIONS: Final = """\
You read timecards from spreadsheets for payroll. You get rows of a sheet, each as its row number and \
its non-empty cells (column letter = value). For each row listed under "Rows to read", give the worked \
interval it records, one entry per interval (a row may record none; then give none). Use only what the \
sheet says: the employee and the date may be carried down from a row above or a label, never guessed. \
Dates as YYYY-MM-DD, clock times as HH:MM on a 24-hour clock, hours as decimal hours worked with \
breaks deducted, rate as the hourly pay; null for anything the sheet does not give."""

SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entries"],
    "properties": {
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "sheet",
                    "row",
                    "employee",
                    "date",
                    "start",
                    "end",
                    "hours",
                    "break_hours",
                    "rate",
                ],
                "properties": {
                    "sheet": {"type": "string", "description": "the sheet's name as given"},
                    "row": {"type": "integer", "description": "the row number as given"},
                    "employee": {"type": "string"},
                    "date": {"type": "string", "description": "YYYY-MM-DD"},
                    "start": _NULLABLE_TEXT | {"description": "clock-in, HH:MM, 24-hour"},
                    "end": _NULLABLE_TEXT | {"description": "clock-out, HH:MM, 24-hour"},
                    "hours": _NULLABLE_NUMBER | {"description": "hours worked, breaks deducted"},
                    "break_hours": _NULLABLE_NUMBER,
                    "rate": _NULLABLE_NUMBER | {"description": "hourly pay rate"},
                },
            },
        }
    },
}


class ModelEntry(BaseModel):
    """One entry as a model answers it, before its values are read like a cell's."""

    model_config = ConfigDict(extra="ignore")

    sheet: str
    row: int = Field(ge=1)
    employee: str = Field(min_length=1, max_length=200)
    date: dt.date
    start: str | None = None
    end: str | None = None
    hours: Decimal | None = Field(default=None, ge=0, le=values.MAX_DURATION_HOURS)
    break_hours: Decimal | None = Field(default=None, ge=0, le=24)
    rate: Decimal | None = Field(default=None, ge=0)


@dataclass
class Assisted:
    """The entries after the model's help, its findings, and how many rows it read."""

    entries: list[Entry]
    findings: list[Finding] = field(default_factory=list)
    model_rows: int = 0


Row = tuple[str, int]  # sheet name, row number as Excel shows it (from 1)


def assisted_entries(
    model: LanguageModel, sheets: Sequence[Sheet], entries: list[Entry], *, min_confidence: float
) -> Assisted:
    """``entries`` with the unsure rows read again by ``model`` (all rows when there are no entries).

    Raises ModelUnavailable only when there is nothing to fall back on (no entries at all); otherwise
    the sheet's reading stands and a ``model_unavailable`` finding says why the model did not help.
    """
    by_name = {sheet.name: sheet for sheet in sheets}
    unsure: dict[Row, list[Entry]] = {}
    for entry in entries:
        if entry.confidence < min_confidence and (row := _row_of(entry.source, sheets)) is not None:
            unsure.setdefault(row, []).append(entry)
    if entries and not unsure:
        return Assisted(entries)
    asked = list(unsure) if entries else [row for sheet in sheets for row in _worked_rows(sheet)]
    asked = asked[:MAX_ROWS]
    try:
        answer = model.structured(
            instructions=INSTRUCTIONS, content=_prompt(by_name, asked), schema=SCHEMA, name="timecard_entries"
        )
    except ModelUnavailable as error:
        if not entries:
            raise
        return Assisted(
            entries, [Finding("model_unavailable", "warning", f"{error}; the sheet's reading stands")]
        )
    read, problems = _read_answer(answer, set(asked), by_name)
    return _merged(entries, unsure, read, problems, model.description)


def _row_of(source: str, sheets: Sequence[Sheet]) -> Row | None:
    """The sheet and row an entry's ``source`` (``Sheet1!A5:F5``, ``'My sheet'!C7``) points at."""
    for sheet in sheets:
        prefix = sheet_prefix(sheet.name)
        if source.startswith(prefix) and (match := _FIRST_ROW.match(source, len(prefix))):
            return sheet.name, int(match.group(1))
    return None


def _worked_rows(sheet: Sheet) -> list[Row]:
    """Rows that hold at least two values: a worked day needs a date or a name beside a time or hours."""
    return [
        (sheet.name, index + 1)
        for index, cells in enumerate(sheet.rows)
        if sum(value is not None and value != "" for value in cells) >= 2
    ]


def _prompt(sheets: dict[str, Sheet], asked: list[Row]) -> str:
    parts: list[str] = []
    for name, sheet in sheets.items():
        rows = sorted({row for sheet_name, row in asked if sheet_name == name})
        if not rows:
            continue
        shown = set(range(1, min(HEADER_ROWS, len(sheet.rows)) + 1))
        for row in rows:
            shown.update(range(max(1, row - CONTEXT_ROWS), row + 1))
        lines = [f"Sheet {name!r}:"]
        lines += [line for row in sorted(shown) if (line := _row_text(sheet, row))]
        lines.append(f"Rows to read on sheet {name!r}: {', '.join(map(str, rows))}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _row_text(sheet: Sheet, row: int) -> str | None:
    cells = sheet.rows[row - 1] if row <= len(sheet.rows) else []
    texts = [
        f"{column_letters(column)}={_cell_text(value)}"
        for column, value in enumerate(cells)
        if value is not None and value != ""
    ]
    return f"row {row}: " + " | ".join(texts) if texts else None


def _cell_text(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds() / 3600:g} hours (a duration)"
    text = " ".join(str(value).split())
    return text[:MAX_CELL_TEXT] + "…" if len(text) > MAX_CELL_TEXT else text


def _read_answer(
    answer: object, asked: set[Row], sheets: dict[str, Sheet]
) -> tuple[dict[Row, list[Entry]], list[str]]:
    """The model's entries that pass every check, by row, and a line for each one that did not."""
    items = answer.get("entries") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return {}, ["the answer has no list of entries"]
    read: dict[Row, list[Entry]] = {}
    problems: list[str] = []
    texts: dict[str, str] = {}  # each sheet's text cells, lower case, made once for all answers
    for item in items:
        try:
            given = ModelEntry.model_validate(item)
        except ValidationError as error:
            problems.append(f"an entry that is not of the asked shape ({error.errors()[0]['msg']})")
            continue
        row = (given.sheet, given.row)
        if row not in asked:
            problems.append(f"an entry for {given.sheet!r} row {given.row}, which was not asked about")
            continue
        sheet = sheets[given.sheet]
        if sheet.name not in texts:
            texts[sheet.name] = "\n".join(
                value.lower() for row in sheet.rows for value in row if isinstance(value, str)
            )
        entry = _entry(given, sheet, texts[sheet.name])
        if isinstance(entry, str):
            problems.append(f"{sheet_prefix(given.sheet)}{given.row}:{given.row}: {entry}")
            continue
        read.setdefault(row, []).append(entry)
    return read, problems


def _entry(given: ModelEntry, sheet: Sheet, sheet_text: str) -> Entry | str:
    """The model's entry read like a sheet's row, or why it cannot be; ``sheet_text`` is the
    sheet's text cells in lower case, one per line."""
    employee = " ".join(given.employee.split())
    if employee.lower() not in sheet_text:  # one cell per line: a name never spans two
        return f"the employee {employee!r} is named nowhere on the sheet"
    moments: list[dt.time | dt.datetime | None] = []
    for label, text in (("start", given.start), ("end", given.end)):
        reading = values.parse_time(text, is_time_column=True) if text else None
        if text and reading is None:
            return f"the {label} {text!r} is not a time of day"
        moments.append(reading[0] if reading else None)
    start_time, end_time = moments
    break_hours = given.break_hours or Decimal(0)
    start = end = None
    if start_time is not None and end_time is not None:
        start, end = values.combine(given.date, start_time, end_time)
        hours = values.worked_hours(start, end, break_hours)
    else:
        start = values.combine(given.date, start_time, start_time)[0] if start_time is not None else None
        end = values.combine(given.date, end_time, end_time)[0] if end_time is not None else None
        hours = given.hours if given.hours is not None else Decimal(0)
    return Entry(
        employee=employee,
        date=given.date,
        start=start,
        end=end,
        hours=hours,
        rate=given.rate,
        source=f"{sheet_prefix(sheet.name)}{given.row}:{given.row}",
        confidence=MODEL_CONFIDENCE,
        break_hours=break_hours,
    )


def _merged(
    entries: list[Entry],
    unsure: dict[Row, list[Entry]],
    read: dict[Row, list[Entry]],
    problems: list[str],
    description: str,
) -> Assisted:
    """The sheet's entries with each row the model read replaced by the model's entries for it."""
    replaced = {id(entry): row for row, old in unsure.items() if row in read for entry in old}
    merged: list[Entry] = []
    findings: list[Finding] = []
    placed: set[Row] = set()
    for entry in entries:
        row = replaced.get(id(entry))
        if row is None:
            merged.append(entry)
            continue
        if row not in placed:
            placed.add(row)
            sources = {old.source for old in unsure[row]}
            new = [dataclasses.replace(model_entry, source=min(sources)) for model_entry in read[row]]
            merged.extend(new)
            findings.append(_finding(new, unsure[row], description))
    for row, new in read.items():
        if row not in placed:
            merged.extend(new)
            findings.append(_finding(new, [], description))
    if problems:
        findings.append(
            Finding(
                "model_extracted",
                "warning",
                f"{description} gave {len(problems)} entr{'y' if len(problems) == 1 else 'ies'} that"
                f" failed the checks and were dropped: {'; '.join(problems[:5])}",
            )
        )
    return Assisted(merged, findings, model_rows=len(read))


_FIELDS: Final = ("employee", "date", "start", "end", "hours", "break_hours", "rate")


def _finding(new: list[Entry], old: list[Entry], description: str) -> Finding:
    """Which values came from the model: every field of a row the sheet gave nothing for, else the
    fields where the model's reading differs from the sheet's."""
    before = old[0] if old else None
    parts = []
    for entry in new:
        changed = [
            name for name in _FIELDS if before is None or getattr(entry, name) != getattr(before, name)
        ]
        shown = ", ".join(f"{name} {_shown(getattr(entry, name))}" for name in changed) or "the same values"
        parts.append(shown)
    sureness = (
        f"the sheet's own reading was {before.confidence:.2f} sure" if before else "the sheet gave no entry"
    )
    return Finding(
        "model_extracted",
        "warning",
        f"{new[0].source}: {'; '.join(parts)} came from {description} ({sureness});"
        " check them against the sheet",
        ref=new[0].source,
    )


def _shown(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.01')):f}"
    return "none" if value is None else str(value)
