"""Timecard cell values: every written form of a time, duration, date and amount, with its confidence,
and the properties the issue asks for (round-trips, a shift split at midnight, exact durations)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import hypothesis
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from conveyor.pipelines.timecards.values import (
    combine,
    parse_date,
    parse_duration,
    parse_money,
    parse_time,
    worked_hours,
    worked_seconds,
)

T = dt.time
D = dt.date
DT = dt.datetime
settings = hypothesis.settings(max_examples=150, deadline=None)

TIMES: list[tuple[object, bool, dt.time | dt.datetime, float]] = [
    (T(8, 0), False, T(8, 0), 1.0),
    (0.3125, True, T(7, 30), 1.0),
    (1 / 3, True, T(8, 0), 1.0),  # the binary float for 08:00 is 0.33333333333333331
    (0.0, True, T(0, 0), 1.0),
    (45356.3125, True, DT(2024, 3, 5, 7, 30), 0.8),  # a date-time serial in a time column
    (DT(2024, 3, 5, 8, 0), False, DT(2024, 3, 5, 8, 0), 1.0),
    (DT(2024, 3, 5, 8, tzinfo=dt.timezone(dt.timedelta(hours=-5))), False, DT(2024, 3, 5, 8), 1.0),
    (DT(1899, 12, 30, 7, 30), False, T(7, 30), 1.0),  # "no date" as other readers give a time
    (DT(1900, 1, 1, 7, 30), False, T(7, 30), 0.8),  # calamine: 1.3125 formatted hh:mm shows 07:30
    (dt.timedelta(hours=7, minutes=30), False, T(7, 30), 0.8),  # a clock time formatted [h]:mm
    (800, False, T(8, 0), 0.6),
    (1730.0, False, T(17, 30), 0.6),
    ("8:00", False, T(8, 0), 1.0),
    ("08:00", False, T(8, 0), 1.0),
    ("8:00:30", False, T(8, 0, 30), 1.0),
    ("17:45:10.25", False, T(17, 45, 10, 250_000), 1.0),
    ("08:00 AM", False, T(8, 0), 1.0),
    ("8:00\u202fPM", False, T(20, 0), 1.0),  # ICU and macOS put a narrow no-break space before PM
    ("8 am", False, T(8, 0), 1.0),
    ("8 a.m.", False, T(8, 0), 1.0),
    ("8:30pm", False, T(20, 30), 1.0),
    ("8a", False, T(8, 0), 0.9),
    ("8p", False, T(20, 0), 0.9),
    ("12:00 PM", False, T(12, 0), 1.0),
    ("12 AM", False, T(0, 0), 1.0),
    ("12:30 am", False, T(0, 30), 1.0),
    ("0800", False, T(8, 0), 0.9),
    ("1730", False, T(17, 30), 0.8),
    ("800", False, T(8, 0), 0.6),
    ("8.30", False, T(8, 30), 0.5),  # or 8.30 decimal hours: the column decides
    ("8h30", False, T(8, 30), 0.9),
    ("8h", False, T(8, 0), 0.8),
    ("24:00", False, T(0, 0), 0.9),  # end of day: combine puts it on the next day
    ("Noon", False, T(12, 0), 1.0),
    ("midnight", False, T(0, 0), 1.0),
    ("2024-03-05T08:00:00-05:00", False, DT(2024, 3, 5, 8, 0), 1.0),  # wall clock in its own offset
    ("2024-03-05T23:30:00+09:00", False, DT(2024, 3, 5, 23, 30), 1.0),  # keeps its own date
    ("2024-03-05T08:00:00Z", False, DT(2024, 3, 5, 8, 0), 1.0),
    ("2024-03-05 08:00", False, DT(2024, 3, 5, 8, 0), 1.0),
    ("3/5/2024 8:00 AM", False, DT(2024, 3, 5, 8, 0), 0.6),  # month-first, as in parse_date
    ("13.03.2024 17:30", False, DT(2024, 3, 13, 17, 30), 1.0),
    ("05.03.2024, 17:30:15", False, DT(2024, 3, 5, 17, 30, 15), 0.9),
]
NOT_TIMES: list[object] = [
    None, True, "", "  ", "25:00", "8:75", "13 pm", "0 am", "2400", "960", "12", "8.3", "8.75 hours",
    "2024-03-05", "2024-13-05T08:00", "3/5/2024", "2/30/2024 8:00", "3/5/2024 25:00", "Tuesday", "n/a",
    "x" * 200, 0.5, 7.5, 2400, 45356.3125,
    D(2024, 3, 5), dt.timedelta(days=1), dt.timedelta(hours=-1), float("nan"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "is_time_column", "expected", "confidence"), TIMES)
def test_parse_time_forms(value: object, is_time_column: bool, expected: object, confidence: float) -> None:
    assert parse_time(value, is_time_column=is_time_column) == (expected, confidence)


@pytest.mark.parametrize("value", NOT_TIMES)
def test_parse_time_rejects(value: object) -> None:
    assert parse_time(value) is None


DURATIONS: list[tuple[object, bool, Decimal, float]] = [
    ("7.5", False, Decimal("7.5"), 1.0),
    ("7,5", False, Decimal("7.5"), 1.0),
    (".5", False, Decimal("0.5"), 1.0),
    ("8", False, Decimal(8), 1.0),
    ("1,500", False, Decimal("1.5"), 0.5),  # a thousands separator would make it 1500 hours
    ("7h30", False, Decimal("7.5"), 1.0),
    ("7h 30m", False, Decimal("7.5"), 1.0),
    ("7 hrs 30 mins", False, Decimal("7.5"), 1.0),
    ("7.5h", False, Decimal("7.5"), 1.0),
    ("7,25 hours", False, Decimal("7.25"), 1.0),
    ("7 hrs", False, Decimal(7), 1.0),
    ("450 min", False, Decimal("7.5"), 1.0),
    ("90m", False, Decimal("1.5"), 1.0),
    ("1h 0m 1s", False, Decimal(3601) / 3600, 1.0),
    ("PT7H30M", False, Decimal("7.5"), 1.0),  # ISO 8601, as trackers' APIs write durations
    ("7:30", False, Decimal("7.5"), 1.0),
    ("40:00", False, Decimal(40), 1.0),
    ("01:00:01", False, Decimal(3601) / 3600, 1.0),
    ("0:00:00.5", False, Decimal("0.5") / 3600, 1.0),
    ("168", False, Decimal(168), 1.0),
    (7.5, False, Decimal("7.5"), 1.0),
    (7.1, False, Decimal("7.1"), 1.0),  # the number as written, not the binary float
    (8, False, Decimal(8), 1.0),
    (0.3125, True, Decimal("7.5"), 1.0),
    (1 / 3, True, Decimal(8), 1.0),
    (1.5, True, Decimal(36), 1.0),
    (dt.timedelta(hours=1, seconds=1), False, Decimal(3601) / 3600, 1.0),
    (dt.timedelta(seconds=1, microseconds=1), False, Decimal("1.000001") / 3600, 1.0),
    (dt.timedelta(days=1, hours=7, minutes=30), False, Decimal("31.5"), 1.0),
    (T(7, 30), False, Decimal("7.5"), 0.9),  # an hours cell formatted h:mm
    (DT(1900, 1, 1, 7, 30), False, Decimal("31.5"), 0.8),  # calamine's serial 1.3125 shown as a time
]
NOT_DURATIONS: list[object] = [
    None, False, "", "-1", "-7:30", "169", "168:00:01", "7h75", "30 7", "7:75", "abc", "7.5.1", "1:2",
    -0.5, 200, 8.0 * 24, float("inf"), dt.timedelta(hours=-1), dt.timedelta(days=8), D(2024, 3, 5),
    DT(2024, 3, 5, 7, 30),
]  # fmt: skip


@pytest.mark.parametrize(("value", "is_fraction_of_day", "expected", "confidence"), DURATIONS)
def test_parse_duration_forms(
    value: object, is_fraction_of_day: bool, expected: Decimal, confidence: float
) -> None:
    assert parse_duration(value, is_fraction_of_day=is_fraction_of_day) == (expected, confidence)


@pytest.mark.parametrize("value", NOT_DURATIONS)
def test_parse_duration_rejects(value: object) -> None:
    assert parse_duration(value) is None


def test_durations_are_exact_and_not_rounded() -> None:
    reading = parse_duration("01:00:01")
    assert reading is not None
    hours = reading[0]
    assert hours == Decimal(3601) / Decimal(3600)
    assert hours.quantize(Decimal("1e-24")) == Decimal("1.000277777777777777777778")  # not rounded early
    assert (hours * 3600).quantize(Decimal(1)) == 3601
    written = [parse_duration(value) for value in ("10:00", "10", "600 min", dt.timedelta(hours=10))]
    assert written[0] is not None and str(written[0][0]) == "10"  # not 1E+1 or 10.000000
    assert {str(reading[0]) for reading in written if reading} == {"10"}
    fraction = parse_duration(10 / 24, is_fraction_of_day=True)
    assert fraction is not None and str(fraction[0]) == "10"


DATES: list[tuple[object, int | None, bool | None, dt.date, float]] = [
    (D(2024, 3, 5), None, None, D(2024, 3, 5), 1.0),
    (DT(2024, 3, 5, 7, 30), None, None, D(2024, 3, 5), 1.0),
    (45356, None, None, D(2024, 3, 5), 0.8),
    (45356.75, None, None, D(2024, 3, 5), 0.8),  # the fraction is the time of day
    ("45356", None, None, D(2024, 3, 5), 0.5),
    ("2024-03-05", None, None, D(2024, 3, 5), 1.0),
    ("2024/3/5", None, None, D(2024, 3, 5), 1.0),
    ("2024-03-05T23:30:00-05:00", None, None, D(2024, 3, 5), 1.0),
    ("20240305", None, None, D(2024, 3, 5), 0.8),
    ("03/05/2024", None, None, D(2024, 3, 5), 0.6),  # both valid: US month-first, lower confidence
    ("03/05/2024", None, False, D(2024, 3, 5), 1.0),
    ("03/05/2024", None, True, D(2024, 5, 3), 1.0),
    ("5/3/24", None, None, D(2024, 5, 3), 0.6),
    ("5/3/24", None, True, D(2024, 3, 5), 1.0),
    ("13/05/2024", None, None, D(2024, 5, 13), 1.0),  # a first field over 12 forces day-first
    ("13/05/2024", None, False, D(2024, 5, 13), 0.8),  # ... even against dayfirst=False
    ("05/13/2024", None, True, D(2024, 5, 13), 0.8),
    ("3/3/2024", None, None, D(2024, 3, 3), 1.0),  # both readings are the same day
    ("05.03.2024", None, None, D(2024, 3, 5), 0.9),  # dots: day-first locales
    ("05.03.2024", None, False, D(2024, 5, 3), 1.0),
    ("3/5/2024 8:00 AM", None, None, D(2024, 3, 5), 0.6),
    ("Mar 5, 2024", None, None, D(2024, 3, 5), 1.0),
    ("March 5th, 2024", None, None, D(2024, 3, 5), 1.0),
    ("5 March 2024", None, None, D(2024, 3, 5), 1.0),
    ("5-Mar-24", None, None, D(2024, 3, 5), 1.0),  # Excel's d-mmm-yy
    ("2024 Mar 5", None, None, D(2024, 3, 5), 1.0),
    ("Sept 5", 2024, None, D(2024, 9, 5), 1.0),
    ("Tuesday, March 5, 2024", None, None, D(2024, 3, 5), 1.0),
    ("Tue 3/5", 2024, None, D(2024, 3, 5), 1.0),  # 2024-03-05 is a Tuesday: the weekday settles it
    ("Fri 3/5", 2024, None, D(2024, 5, 3), 1.0),  # 2024-05-03 is a Friday
    ("3/5 (Tue)", 2024, None, D(2024, 3, 5), 1.0),
    ("Wed 3/5", 2024, None, D(2024, 3, 5), 0.5),  # neither reading is a Wednesday
    ("Tue 3/5/2024", None, True, D(2024, 3, 5), 1.0),  # the weekday overrules dayfirst
    ("3/5", 2024, None, D(2024, 3, 5), 0.6),
    ("3/5", 2023, True, D(2023, 5, 3), 1.0),
]
NOT_DATES: list[tuple[object, int | None]] = [
    (None, 2024), (True, 2024), ("", 2024), ("Tuesday", 2024), ("Tue", 2024), ("3/5", None),
    ("Tue 3/5", None), ("Mar 5", None), ("March 2024", None), ("2/30/2024", None), ("29/2/2023", None),
    ("2/29", 2023), ("13/13/2024", None), ("2024-02-30", None), ("12345", None), (19999, None),
    (80000, None), (float("nan"), None), (T(8, 0), None), (dt.timedelta(days=3), None),
    (D(1900, 1, 2), None), (DT(1900, 1, 1, 7, 30), None), ("hello", None), ("5 Mar Apr", None),
]  # fmt: skip


@pytest.mark.parametrize(("value", "year", "dayfirst", "expected", "confidence"), DATES)
def test_parse_date_forms(
    value: object, year: int | None, dayfirst: bool | None, expected: dt.date, confidence: float
) -> None:
    assert parse_date(value, year=year, dayfirst=dayfirst) == (expected, confidence)


@pytest.mark.parametrize(("value", "year"), NOT_DATES)
def test_parse_date_rejects(value: object, year: int | None) -> None:
    assert parse_date(value, year=year, dayfirst=None) is None


def test_excel_serials_use_the_1899_12_30_epoch() -> None:
    """Excel counts a 29 February 1900 that never was (serial 60); counting from 1899-12-30 instead of
    1900-01-01 absorbs it, so every serial from 61 on, and all we accept, lands on the right day."""
    assert parse_date(61, year=None, dayfirst=None) is None  # below the plausible range
    assert parse_date(20_000, year=None, dayfirst=None) == (D(1954, 10, 3), 0.8)
    assert parse_date(45_292, year=None, dayfirst=None) == (D(2024, 1, 1), 0.8)
    assert parse_date(73_051.99, year=None, dayfirst=None) == (D(2100, 1, 1), 0.8)


MONEY: list[tuple[object, Decimal, float]] = [
    ("12", Decimal(12), 1.0),
    ("12.50", Decimal("12.50"), 1.0),
    ("$12.50", Decimal("12.50"), 1.0),
    ("12,50 €", Decimal("12.50"), 1.0),
    ("€12,50", Decimal("12.50"), 1.0),
    ("USD 12.5", Decimal("12.5"), 1.0),
    ("12.50 usd", Decimal("12.50"), 1.0),
    ("EUR12", Decimal(12), 1.0),
    ("US$ 7.25", Decimal("7.25"), 1.0),
    ("£9.00", Decimal("9.00"), 1.0),
    ("$15.00/hr", Decimal("15.00"), 1.0),
    ("15 per hour", Decimal(15), 1.0),
    ("1,234.56", Decimal("1234.56"), 1.0),
    ("1.234,56", Decimal("1234.56"), 1.0),
    ("1,234,567.89", Decimal("1234567.89"), 1.0),
    ("1.234.567,89", Decimal("1234567.89"), 1.0),
    ("1 234,56", Decimal("1234.56"), 1.0),  # French grouping (the space is often U+00A0 or U+202F)
    ("1\u202f234,56 €", Decimal("1234.56"), 1.0),
    ("1'234.56", Decimal("1234.56"), 1.0),  # Swiss grouping
    ("1.234.567", Decimal(1234567), 0.9),  # a repeated mark is grouping
    ("1,234", Decimal(1234), 0.6),  # ambiguous: US grouping taken
    ("1.234", Decimal("1.234"), 0.6),  # ambiguous: US decimal point taken
    ("0,125", Decimal("0.125"), 1.0),  # 0 cannot be a thousands group
    (".50", Decimal("0.50"), 1.0),
    ("-12.50", Decimal("-12.50"), 1.0),
    ("-$12.50", Decimal("-12.50"), 1.0),
    ("(12.50)", Decimal("-12.50"), 1.0),
    ("12.50-", Decimal("-12.50"), 1.0),
    ("\u221212.50", Decimal("-12.50"), 1.0),  # MINUS SIGN
    (12, Decimal(12), 1.0),
    (12.5, Decimal("12.5"), 1.0),
    (7.1, Decimal("7.1"), 1.0),
]
NOT_MONEY: list[object] = [
    None, True, "", "$", "abc", "12 50", "1,2,3", "12.5.6", "1,23,456", "12.", "1.234 567,8", "$$$12",
    "Tue 12", "12 apples", float("nan"), D(2024, 3, 5), T(8, 0),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected", "confidence"), MONEY)
def test_parse_money_forms(value: object, expected: Decimal, confidence: float) -> None:
    assert parse_money(value) == (expected, confidence)


@pytest.mark.parametrize("value", NOT_MONEY)
def test_parse_money_rejects(value: object) -> None:
    assert parse_money(value) is None


def test_combine_and_worked_hours() -> None:
    day = D(2024, 3, 5)
    assert combine(day, T(8), T(16, 30)) == (DT(2024, 3, 5, 8), DT(2024, 3, 5, 16, 30))
    assert combine(day, T(22), T(6)) == (DT(2024, 3, 5, 22), DT(2024, 3, 6, 6))  # night shift
    assert combine(day, T(22), T(0)) == (DT(2024, 3, 5, 22), DT(2024, 3, 6, 0))  # ends at midnight
    assert combine(day, T(9), T(9)) == (DT(2024, 3, 5, 9), DT(2024, 3, 5, 9))  # 0 length stays 0
    stamp = DT(2024, 3, 4, 23)
    assert combine(day, stamp, T(7)) == (stamp, DT(2024, 3, 5, 7))  # a datetime keeps its date
    assert combine(day, T(8), DT(2024, 3, 7, 8)) == (DT(2024, 3, 5, 8), DT(2024, 3, 7, 8))
    zoned = T(8, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert combine(day, zoned, T(9))[0].tzinfo is None

    start, end = combine(day, T(22), T(6, 30))
    assert worked_hours(start, end, Decimal(0)) == Decimal("8.5")
    assert worked_hours(start, end, Decimal("0.5")) == Decimal(8)
    lunch = (DT(2024, 3, 6, 2), DT(2024, 3, 6, 2, 30))
    assert worked_hours(start, end, [lunch]) == Decimal(8)
    overlapping = [lunch, (DT(2024, 3, 6, 2, 15), DT(2024, 3, 6, 2, 45))]
    assert worked_hours(start, end, overlapping) == Decimal("7.75")  # counted once
    outside = [(DT(2024, 3, 5, 21), DT(2024, 3, 5, 22, 15)), (DT(2024, 3, 6, 6), DT(2024, 3, 6, 9))]
    assert worked_hours(start, end, outside) == Decimal("7.75")  # clipped to the shift: 15 + 30 minutes
    assert worked_hours(start, end, [(DT(2024, 3, 7, 1), DT(2024, 3, 7, 2))]) == Decimal("8.5")
    assert worked_hours(start, end, Decimal(9)) == 0  # a break longer than the shift
    assert worked_hours(end, start, Decimal(0)) == 0  # end before start: nothing worked
    assert worked_hours(DT(2024, 3, 5, 8), DT(2024, 3, 5, 9, 0, 1)) == Decimal(3601) / 3600
    assert worked_seconds(DT(2024, 3, 5, 8), DT(2024, 3, 5, 8, 0, 0, 500)) == Decimal("0.0005")


def test_calamine_cells(tmp_path: Path) -> None:
    """The values as calamine really gives them from an xlsx, formatted as clock systems format them."""
    path = tmp_path / "cells.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    formats = ["hh:mm", "h:mm AM/PM", "[h]:mm", "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "General"]
    for row, number_format in enumerate(formats):
        sheet.write_row(
            row, 0, [0.3125, 1.3125, 45356.3125], workbook.add_format({"num_format": number_format})
        )
    workbook.close()
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    clock, ampm, hours, date, stamp, general = rows
    for cells in (clock, ampm):
        assert parse_time(cells[0]) == (T(7, 30), 1.0)
        assert parse_duration(cells[0]) == (Decimal("7.5"), 0.9)
        assert parse_duration(cells[1]) == (Decimal("31.5"), 0.8)
    assert parse_duration(hours[0]) == (Decimal("7.5"), 1.0)
    assert parse_duration(hours[1]) == (Decimal("31.5"), 1.0)
    assert parse_date(date[2], year=None, dayfirst=None) == (D(2024, 3, 5), 1.0)
    assert parse_time(stamp[2]) == (DT(2024, 3, 5, 7, 30), 1.0)
    assert parse_date(stamp[2], year=None, dayfirst=None) == (D(2024, 3, 5), 1.0)
    assert parse_time(general[0], is_time_column=True) == (T(7, 30), 1.0)
    assert parse_duration(general[0], is_fraction_of_day=True) == (Decimal("7.5"), 1.0)
    assert parse_date(general[2], year=None, dayfirst=None) == (D(2024, 3, 5), 0.8)


def _style_time(moment: dt.time, style: str) -> str | None:
    """The time written the way one clock system or person writes it; None when the style can't say it."""
    twelve = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    has_seconds, on_hour = moment.second != 0, moment.minute == moment.second == 0
    styles: dict[str, Callable[[], str | None]] = {
        "24h": lambda: moment.strftime("%H:%M:%S" if has_seconds else "%H:%M"),
        "24h short": lambda: f"{moment.hour}:{moment:%M}" + (f":{moment:%S}" if has_seconds else ""),
        "12h": lambda: f"{twelve:02}:{moment:%M}" + (f":{moment:%S}" if has_seconds else "") + f" {half}",
        "12h bare": lambda: None if not on_hour else f"{twelve} {half.lower()}",
        "letter": lambda: None if not on_hour else f"{twelve}{half[0].lower()}",
        "military": lambda: None if has_seconds else f"{moment:%H%M}",
        "h notation": lambda: None if has_seconds else f"{moment.hour}h{moment:%M}",
        "dotted": lambda: None if has_seconds else f"{moment.hour}.{moment:%M}",
        "iso": lambda: f"2024-03-05T{moment:%H:%M:%S}-05:00",
    }
    return styles[style]()


@settings
@given(
    st.times().map(lambda moment: moment.replace(microsecond=0)),
    st.sampled_from(
        ["24h", "24h short", "12h", "12h bare", "letter", "military", "h notation", "dotted", "iso"]
    ),
)
def test_times_round_trip(moment: dt.time, style: str) -> None:
    text = _style_time(moment, style)
    hypothesis.assume(text is not None)
    parsed = parse_time(text)
    assert parsed is not None, text
    value, confidence = parsed
    assert (value.time() if isinstance(value, dt.datetime) else value) == moment, text
    assert 0 < confidence <= 1


@settings
@given(st.times().map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)))
def test_excel_fractions_round_trip_to_the_millisecond(moment: dt.time) -> None:
    milliseconds = (
        (moment.hour * 60 + moment.minute) * 60 + moment.second
    ) * 1000 + moment.microsecond // 1000
    assert parse_time(milliseconds / 86_400_000, is_time_column=True) == (moment, 1.0)


@settings
@given(
    st.dates(D(1955, 1, 1), D(2118, 12, 31)),
    st.sampled_from(["iso", "us", "eu", "eu short", "dots", "named", "long"]),
)
def test_dates_round_trip(day: dt.date, style: str) -> None:
    text, dayfirst = {
        "iso": (day.isoformat(), None),
        "us": (f"{day.month}/{day.day}/{day.year}", False),
        "eu": (f"{day.day}/{day.month}/{day.year}", True),
        "eu short": (f"{day.day}/{day.month}/{day:%y}", True)
        if 1969 <= day.year < 2069
        else (day.isoformat(), None),
        "dots": (f"{day:%d.%m.%Y}", None),
        "named": (f"{day:%b} {day.day}, {day.year}", None),
        "long": (f"{day:%A}, {day.day} {day:%B} {day.year}", None),
    }[style]
    is_ambiguous = style == "dots" and day.day <= 12 and day.day != day.month
    assert parse_date(text, year=None, dayfirst=dayfirst) == (day, 0.9 if is_ambiguous else 1.0)
    assert parse_date((day - D(1899, 12, 30)).days, year=None, dayfirst=None) == (day, 0.8)


@settings
@given(st.dates(D(2000, 1, 1), D(2030, 12, 31)))
def test_a_weekday_settles_a_date_without_a_year(day: dt.date) -> None:
    """``Tue 3/5`` is read month-first by default, but the weekday picks the reading it matches; when
    both readings fall on that weekday the text stays ambiguous and says so."""
    swapped = D(day.year, day.day, day.month) if day.day <= 12 else None
    is_ambiguous = swapped is not None and swapped != day and swapped.weekday() == day.weekday()
    month_first = parse_date(f"{day:%a} {day.month}/{day.day}", year=day.year, dayfirst=None)
    assert month_first == (day, 0.6 if is_ambiguous else 1.0)
    assert parse_date(f"{day:%a} {day.month}/{day.day}", year=day.year, dayfirst=False) == (day, 1.0)
    day_first = parse_date(f"{day:%A} {day.day}/{day.month}", year=day.year, dayfirst=None)
    assert day_first == ((swapped, 0.6) if is_ambiguous else (day, 1.0))


@settings
@given(st.integers(0, 167), st.integers(0, 59), st.integers(0, 59))
def test_durations_conserve_seconds(hours: int, minutes: int, seconds: int) -> None:
    total = hours * 3600 + minutes * 60 + seconds
    expected = Decimal(total) / 3600
    written = [
        f"{hours}:{minutes:02}:{seconds:02}",
        f"{hours:02}:{minutes:02}:{seconds:02}",
        f"{hours}h {minutes}m {seconds}s",
        f"PT{hours}H{minutes}M{seconds}S",
        dt.timedelta(seconds=total),
    ]
    for value in written:
        assert parse_duration(value) == (expected, 1.0), value
    assert parse_duration(total / 86_400, is_fraction_of_day=True) == (expected, 1.0)
    assert (expected * 3600).quantize(Decimal(1)) == total


@settings
@given(st.decimals(min_value=0, max_value=10**9, places=2), st.sampled_from(["us", "eu", "fr", "ch"]))
def test_money_round_trips_with_either_decimal_mark(amount: Decimal, style: str) -> None:
    us = f"{amount:,.2f}"
    text = {
        "us": f"${us}",
        "eu": us.translate(str.maketrans(",.", ".,")) + " €",
        "fr": us.replace(",", "\u00a0").replace(".", ",") + " EUR",
        "ch": "CHF " + us.replace(",", "'"),
    }[style]
    assert parse_money(text) == (amount, 1.0), text


@settings
@given(st.integers(0, 10**12))
def test_whole_amounts_are_read_with_any_grouping(amount: int) -> None:
    us = f"{amount:,}"
    parsed = parse_money(us)
    assert parsed is not None and parsed[0] == amount
    assert parsed[1] == (0.6 if us.count(",") == 1 else 0.9 if "," in us else 1.0)


@settings
@given(
    st.datetimes(DT(2020, 1, 1), DT(2030, 1, 1)).map(lambda moment: moment.replace(microsecond=0)),
    st.integers(1, 16 * 3600),
    st.integers(-4 * 3600, 20 * 3600),
    st.integers(0, 2 * 3600),
)
def test_a_shift_split_at_midnight_sums_to_the_whole(
    start: dt.datetime, length_s: int, break_offset_s: int, break_length_s: int
) -> None:
    end = start + dt.timedelta(seconds=length_s)
    midnight = dt.datetime.combine(start.date() + dt.timedelta(days=1), T(0))
    lunch = start + dt.timedelta(seconds=break_offset_s)
    breaks = [(lunch, lunch + dt.timedelta(seconds=break_length_s))]
    whole_s = worked_seconds(start, end, breaks)
    if end > midnight:
        assert worked_seconds(start, midnight, breaks) + worked_seconds(midnight, end, breaks) == whole_s
        parts = worked_hours(start, midnight, breaks) + worked_hours(midnight, end, breaks)
        assert abs(parts - worked_hours(start, end, breaks)) <= Decimal("1e-24")  # 1/3600 is not a Decimal
    assert worked_hours(start, end, breaks) == whole_s / 3600
    assert 0 <= length_s - whole_s <= min(break_length_s, length_s)


@settings
@given(st.dates(D(2020, 1, 1), D(2030, 1, 1)), st.times(), st.times())
def test_combine_puts_the_end_within_a_day_after_the_start(
    day: dt.date, start: dt.time, end: dt.time
) -> None:
    begin, finish = combine(day, start, end)
    assert begin == dt.datetime.combine(day, start)
    assert finish.time() == end
    assert dt.timedelta(0) <= finish - begin < dt.timedelta(days=1)
    assert (finish == begin) == (start == end)
    microseconds = (finish - begin) // dt.timedelta(microseconds=1)
    assert worked_hours(begin, finish) == Decimal(microseconds) / 1_000_000 / 3600


cell_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet="0123456789:.,/-apmhAPMH $€ ", max_size=16),
    st.datetimes(),
    st.dates(),
    st.times(),
    st.timedeltas(),
)


@settings
@given(
    cell_values,
    st.booleans(),
    st.one_of(st.none(), st.integers(1, 9999)),
    st.sampled_from([None, True, False]),
)
def test_any_cell_gives_a_reading_or_none_never_an_error(
    value: object, flag: bool, year: int | None, dayfirst: bool | None
) -> None:
    duration = parse_duration(value, is_fraction_of_day=flag)
    readings = [
        parse_time(value, is_time_column=flag),
        duration,
        parse_date(value, year=year, dayfirst=dayfirst),
        parse_money(value),
    ]
    for reading in readings:
        assert reading is None or 0 < reading[1] <= 1
    assert duration is None or 0 <= duration[0] <= 168
