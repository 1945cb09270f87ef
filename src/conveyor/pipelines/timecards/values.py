"""Timecard cell values read as times of day, durations, dates and amounts, each with a confidence.

Every ``parse_*`` function takes a cell as calamine or the csv reader gives it (a ``CellValue`` of
``conveyor.extractors.cells``) and returns ``(value, confidence)`` with a confidence between 0 and 1,
or None when the cell is not of that kind. None is an answer, not an error: layout detection tries
every reading on every cell and keeps the one that fits the column, so nothing here raises for text
it cannot read. ``parse_date`` lives in
``dates`` and is re-exported here; the confidence scale is in ``cells``.

Hours are never rounded here: a duration is counted in exact seconds and divided by 3600 once, so
``01:00:01`` is ``Decimal(3601) / 3600`` whatever form it was written in. That quotient has no finite
decimal form, so sums of hours are exact only to the context's 28 digits; ``worked_seconds`` is the
exact quantity for adding parts of a shift.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal

from conveyor.pipelines.timecards.dates import parse_date as parse_date
from conveyor.pipelines.timecards.reading import (
    AMBIGUOUS,
    CACHED_CELLS,
    CALAMINE_DAY_ONE,
    CERTAIN,
    EXCEL_EPOCH,
    GUESS,
    LIKELY,
    PLAUSIBLE,
    SERIAL_RANGE,
    normalise_text,
    small_serial,
)

TimeReading = tuple[dt.time | dt.datetime, float] | None

MAX_DURATION_HOURS = Decimal(168)  # a week: longer is a total or a misread, not a worked interval
SECONDS_PER_HOUR = Decimal(3600)
_MS_PER_DAY = 86_400_000
_ZERO = Decimal(0)
_ONE_DAY = dt.timedelta(days=1)

_NAMED_TIMES = {"noon": dt.time(12), "12 noon": dt.time(12), "midday": dt.time(12)}
_NAMED_TIMES |= {"midnight": dt.time(0), "12 midnight": dt.time(0)}
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[t ]\d{1,2}:\d{2}")
_TWELVE_HOUR = re.compile(r"(\d{1,2})(?:[:.](\d{2})(?::(\d{2}))?)?\s*([ap])\.?\s*(?:m\.?)?")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?")
_H_NOTATION = re.compile(r"(\d{1,2})\s*h\s*(\d{2})?")
_DOTTED = re.compile(r"(\d{1,2})\.(\d{2})")
_MILITARY = re.compile(r"\d{3,4}")
_DATE_AND_TIME = re.compile(r"(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}),?\s+(\d{1,2}\D.*)")

_DECIMAL_HOURS = re.compile(r"(\d*)(?:([.,])(\d+))?")
_CLOCK_DURATION = re.compile(r"(\d{1,3}):([0-5]\d)(?::([0-5]\d)(?:[.,](\d{1,6}))?)?(?:\s*(?:hours?|hrs?|h))?")
_NUMBER = r"\d+(?:[.,]\d+)?"
_UNIT_DURATION = re.compile(
    rf"(?:(?P<h>{_NUMBER})\s*(?:hours?|hrs?|h)\.?)?\s*"
    rf"(?:(?P<m>{_NUMBER})\s*(?P<mu>minutes?|mins?|m)?\.?)?\s*"
    rf"(?:(?P<s>{_NUMBER})\s*(?:seconds?|secs?|s)\.?)?"
)

_CURRENCY = re.compile(
    r"(?:us|ca|au|nz|a|c)?\$|[€£¥₹]|(?<![a-z])(?:usd|eur|gbp|cad|aud|nzd|chf|jpy|inr|mxn)(?![a-z])"
)
_PER_HOUR = re.compile(r"\s*(?:/|per)\s*(?:hours?|hrs?|h)\.?$")
_AMOUNT = re.compile(r"\d[\d.,' ]*|[.,]\d+")
_GROUPING = re.compile(r"[.,' ]")


@functools.lru_cache(maxsize=CACHED_CELLS, typed=True)
def parse_time(value: object, *, is_time_column: bool = False) -> TimeReading:
    """A time of day, or a datetime when the cell carries its own date (an ISO timestamp, a serial).

    A zoned timestamp is read as the wall clock in its own offset (``08:00-05:00`` is 08:00): a timecard
    records when the person clocked in where they were. ``24:00`` is midnight, which ``combine`` puts
    at the end of the day. A float fraction of a day is a time only with ``is_time_column``: elsewhere
    0.5 is more likely half an hour.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=None)
        if small_serial(value) is None:
            return value, CERTAIN
        # 1899-12-30 and -31 are "no date"; later small serials are durations over a day shown as clocks
        return value.time(), CERTAIN if value < CALAMINE_DAY_ONE + dt.timedelta(days=1) else PLAUSIBLE
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None), CERTAIN
    if isinstance(value, dt.timedelta):
        is_clock = dt.timedelta(0) <= value < dt.timedelta(days=1)
        return ((dt.datetime.min + value).time(), PLAUSIBLE) if is_clock else None
    if isinstance(value, int | float):
        return _time_from_number(value, is_time_column=is_time_column)
    if isinstance(value, str) and (text := normalise_text(value)):
        for reader in _TIME_READERS:
            if (reading := reader(text)) is not None:
                return reading
    return None


@functools.lru_cache(maxsize=CACHED_CELLS, typed=True)
def parse_duration(value: object, *, is_fraction_of_day: bool = False) -> tuple[Decimal, float] | None:
    """Hours worked, as an exact Decimal; None when negative, over a week (168 h), or not a duration.

    A number is hours unless ``is_fraction_of_day`` (an Excel cell formatted as a time holds days:
    0.3125 is 7.5 hours), read to the millisecond, Excel's own resolution. A comma followed by exactly
    three digits could be a thousands separator, but no worked interval reaches a thousand hours, so
    ``1,500`` is 1.5 hours, with lower confidence.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        small = small_serial(value)
        return None if small is None else _bounded(_seconds(small) / SECONDS_PER_HOUR, PLAUSIBLE)
    if isinstance(value, dt.time):  # a duration under a day formatted as a clock time
        clock = dt.datetime.combine(dt.date.min, value.replace(tzinfo=None)) - dt.datetime.min
        return _bounded(_seconds(clock) / SECONDS_PER_HOUR, LIKELY)
    if isinstance(value, dt.timedelta):
        return _bounded(_seconds(value) / SECONDS_PER_HOUR, CERTAIN)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        if not is_fraction_of_day:
            return _bounded(_decimal(value), CERTAIN)
        milliseconds = (_decimal(value) * _MS_PER_DAY).to_integral_value()
        return _bounded(milliseconds / 1000 / SECONDS_PER_HOUR, CERTAIN)
    if isinstance(value, str) and (text := normalise_text(value)):
        text = text.removeprefix("pt")  # ISO 8601 durations, as trackers' APIs write them: PT7H30M
        for reader in (_decimal_hours, _clock_duration, _unit_duration):
            if (reading := reader(text)) is not None:
                return _bounded(*reading)
    return None


@functools.lru_cache(maxsize=CACHED_CELLS, typed=True)
def parse_money(value: object) -> tuple[Decimal, float] | None:
    """An amount in any currency (the symbol is dropped), ``/hr`` allowed after it; may be negative.

    With both ``.`` and ``,`` the last one is the decimal mark. A lone mark followed by exactly three
    digits is read the US way (``1,234`` is 1234, ``1.234`` is 1.234) at lower confidence.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (_decimal(value), CERTAIN) if math.isfinite(value) else None
    if not isinstance(value, str) or not (text := normalise_text(value)):
        return None
    is_negative = text.startswith("(") and text.endswith(")")  # accountants' negative
    text = _PER_HOUR.sub("", text[1:-1] if is_negative else text)
    text, markers = _CURRENCY.subn("", text)
    text = text.strip()
    if markers > 2 or not text:
        return None
    if text[0] in "-\u2212":
        is_negative, text = True, text[1:].strip()
    elif text.endswith("-"):  # some ledgers put the sign last: 12.50-
        is_negative, text = True, text[:-1].strip()
    text = text.removeprefix("+").strip()
    reading = _amount(text) if _AMOUNT.fullmatch(text) else None
    if reading is None:
        return None
    return (-reading[0] if is_negative else reading[0]), reading[1]


def combine(
    date: dt.date, start: dt.time | dt.datetime, end: dt.time | dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """A shift's start and end as naive datetimes on ``date``; an end before the start is on the next day.

    An end equal to the start stays a zero-length shift rather than 24 hours: on a timecard that is a
    punch typed twice, which the rules should see, not a day's pay. A datetime keeps its own date.
    """
    if type(start) is dt.time and type(end) is dt.time and start.tzinfo is None is end.tzinfo:
        # Nearly every row: two naive clock times (the general path below, without its copies).
        begin, finish = dt.datetime.combine(date, start), dt.datetime.combine(date, end)
        return begin, (finish + _ONE_DAY if finish < begin else finish)
    begin = start if isinstance(start, dt.datetime) else dt.datetime.combine(date, start)
    begin = begin.replace(tzinfo=None)
    if isinstance(end, dt.datetime):
        return begin, end.replace(tzinfo=None)
    finish = dt.datetime.combine(begin.date(), end.replace(tzinfo=None))
    return begin, (finish + _ONE_DAY if finish < begin else finish)


def worked_seconds(
    start: dt.datetime, end: dt.datetime, breaks: Sequence[tuple[dt.datetime, dt.datetime]] | Decimal = _ZERO
) -> Decimal:
    """Seconds from start to end less breaks: exact, so parts of a shift add up to the whole.

    Break intervals are clipped to the shift and overlapping ones counted once; a break given as hours
    is subtracted as is. Never below zero (an end before the start, a break longer than the shift):
    the rules judge those from the punches, not from a negative total.
    """
    if end <= start:
        return _ZERO
    total = _seconds(end - start)
    if isinstance(breaks, Decimal):
        return max(total - breaks * SECONDS_PER_HOUR, _ZERO)
    covered, cursor = _ZERO, start
    for break_start, break_end in sorted((max(b_start, start), min(b_end, end)) for b_start, b_end in breaks):
        if break_end > max(break_start, cursor):
            covered += _seconds(break_end - max(break_start, cursor))
            cursor = break_end
    return total - covered


def worked_hours(
    start: dt.datetime, end: dt.datetime, breaks: Sequence[tuple[dt.datetime, dt.datetime]] | Decimal = _ZERO
) -> Decimal:
    """``worked_seconds`` in hours (one division by 3600, not rounded)."""
    if isinstance(breaks, Decimal):
        return _span_hours(end - start, breaks)
    return worked_seconds(start, end, breaks) / SECONDS_PER_HOUR


@functools.lru_cache(maxsize=CACHED_CELLS)
def _span_hours(span: dt.timedelta, breaks: Decimal) -> Decimal:
    """Cached: shifts of the same length with the same break recur on every sheet."""
    if span <= dt.timedelta(0):
        return _ZERO
    return max(_seconds(span) - breaks * SECONDS_PER_HOUR, _ZERO) / SECONDS_PER_HOUR


def _decimal(number: int | float) -> Decimal:
    """The number as written: 7.1 is Decimal('7.1'), not the binary float's 7.0999999999999996447..."""
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def _seconds(delta: dt.timedelta) -> Decimal:
    whole = Decimal(delta.days * 86_400 + delta.seconds)
    return whole + Decimal(delta.microseconds).scaleb(-6) if delta.microseconds else whole


def _bounded(hours: Decimal, confidence: float) -> tuple[Decimal, float] | None:
    return (hours, confidence) if _ZERO <= hours <= MAX_DURATION_HOURS else None


def _clock_time(hour: int, minute: int, second: int = 0, microsecond: int = 0) -> dt.time | None:
    if hour == 24 and minute == second == microsecond == 0:
        return dt.time(0)
    return dt.time(hour, minute, second, microsecond) if hour < 24 and minute < 60 and second < 60 else None


def _microseconds(fraction: str | None) -> int:
    return int(fraction.ljust(6, "0")) if fraction else 0


def _time_from_number(number: int | float, *, is_time_column: bool) -> TimeReading:
    if not math.isfinite(number):
        return None
    if is_time_column and 0 <= number < 1:
        return (dt.datetime.min + dt.timedelta(milliseconds=round(number * _MS_PER_DAY))).time(), CERTAIN
    if is_time_column and SERIAL_RANGE[0] <= number < SERIAL_RANGE[1]:
        return EXCEL_EPOCH + dt.timedelta(milliseconds=round(number * _MS_PER_DAY)), PLAUSIBLE
    if number == int(number) and 100 <= number <= 2359:  # a clock system's 1730 stored as a number
        moment = _clock_time(*divmod(int(number), 100))
        return None if moment is None else (moment, AMBIGUOUS)
    return None


def _named_time(text: str) -> TimeReading:
    moment = _NAMED_TIMES.get(text)
    return None if moment is None else (moment, CERTAIN)


def _iso_timestamp(text: str) -> TimeReading:
    if not _ISO_TIMESTAMP.match(text):
        return None
    try:
        stamp = dt.datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return stamp.replace(tzinfo=None), CERTAIN


def _twelve_hour(text: str) -> TimeReading:
    match = _TWELVE_HOUR.fullmatch(text)
    if match is None or not 1 <= int(match[1]) <= 12:
        return None
    hour = int(match[1]) % 12 + (12 if match[4] == "p" else 0)
    moment = _clock_time(hour, int(match[2] or 0), int(match[3] or 0))
    return None if moment is None else (moment, CERTAIN if match[2] or "m" in text else LIKELY)


def _clock(text: str) -> TimeReading:
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hour = int(match[1])
    moment = _clock_time(hour, int(match[2]), int(match[3] or 0), _microseconds(match[4]))
    return None if moment is None else (moment, LIKELY if hour == 24 else CERTAIN)


def _h_notation(text: str) -> TimeReading:
    match = _H_NOTATION.fullmatch(text)
    moment = None if match is None else _clock_time(int(match[1]), int(match[2] or 0))
    if match is None or moment is None or int(match[1]) == 24:
        return None
    return moment, LIKELY if match[2] else PLAUSIBLE


def _dotted(text: str) -> TimeReading:
    match = _DOTTED.fullmatch(text)
    moment = None if match is None else _clock_time(int(match[1]), int(match[2]))
    return None if moment is None or match is None or int(match[1]) == 24 else (moment, GUESS)


def _military(text: str) -> TimeReading:
    if not _MILITARY.fullmatch(text):
        return None
    hour, minute = divmod(int(text), 100)
    moment = _clock_time(hour, minute) if hour < 24 else None
    if moment is None:
        return None
    return moment, LIKELY if text.startswith("0") else (PLAUSIBLE if len(text) == 4 else AMBIGUOUS)


def _date_and_time(text: str) -> TimeReading:
    """``03/05/2024 08:00 AM``, as scheduling apps export a punch: the date read as ``parse_date`` would."""
    match = _DATE_AND_TIME.fullmatch(text)
    day = None if match is None else parse_date(match[1], year=None, dayfirst=None)
    moment = None if match is None else _clock(match[2]) or _twelve_hour(match[2])
    if day is None or moment is None or not isinstance(moment[0], dt.time):
        return None
    return dt.datetime.combine(day[0], moment[0]), min(day[1], moment[1])


_TIME_READERS: tuple[Callable[[str], TimeReading], ...] = (
    _named_time,
    _iso_timestamp,
    _twelve_hour,
    _clock,
    _h_notation,
    _dotted,
    _military,
    _date_and_time,
)


def _decimal_hours(text: str) -> tuple[Decimal, float] | None:
    match = _DECIMAL_HOURS.fullmatch(text)
    if match is None or not (match[1] or match[3]):
        return None
    hours = Decimal(f"{match[1] or 0}.{match[3]}" if match[3] else match[1])
    return hours, GUESS if match[2] == "," and len(match[3]) == 3 else CERTAIN


def _clock_duration(text: str) -> tuple[Decimal, float] | None:
    match = _CLOCK_DURATION.fullmatch(text)
    if match is None:
        return None
    seconds = Decimal(int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3] or 0))
    if match[4]:
        seconds += Decimal(_microseconds(match[4])).scaleb(-6)
    return seconds / SECONDS_PER_HOUR, CERTAIN


def _unit_duration(text: str) -> tuple[Decimal, float] | None:
    """``7h30``, ``7 hrs``, ``7h 30m``, ``450 min``, ``1h 0m 1s``: a bare number after hours is minutes."""
    match = _UNIT_DURATION.fullmatch(text)
    if match is None or not (match["h"] or match["m"] or match["s"]):
        return None
    if match["m"] and not match["mu"] and (not match["h"] or match["s"]):
        return None  # a bare number is minutes only right after hours (7h30)
    hours, minutes, seconds = (Decimal((match[key] or "0").replace(",", ".")) for key in ("h", "m", "s"))
    if match["h"] and minutes >= 60:
        return None
    return (hours * 3600 + minutes * 60 + seconds) / SECONDS_PER_HOUR, CERTAIN


def _amount(text: str) -> tuple[Decimal, float] | None:
    """Digits with grouping and a decimal mark, the mark told from the grouping by position and count."""
    text = "0" + text if text[0] in ".," else text
    if not text[-1].isdigit():
        return None
    points, commas = text.count("."), text.count(",")
    confidence, mark = CERTAIN, None
    if points and commas:
        mark = "." if text.rfind(".") > text.rfind(",") else ","
    elif points + commas == 1:
        mark = "." if points else ","
        integer, fraction = text.rsplit(mark, 1)
        is_grouped = " " in integer or "'" in integer
        if len(fraction) == 3 and integer != "0" and not is_grouped:
            confidence, mark = AMBIGUOUS, ("." if mark == "." else None)
    elif points or commas:
        confidence = LIKELY  # 1.234.567 or 1,234,567: a repeated mark is grouping
    integer, fraction = text.rsplit(mark, 1) if mark else (text, "")
    groups = _GROUPING.split(integer)
    separators = set(_GROUPING.findall(integer))
    if len(groups) > 1 and (
        len(separators) > 1 or not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:])
    ):
        return None
    digits = "".join(groups)
    if not digits.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return Decimal(f"{digits}.{fraction}" if fraction else digits), confidence
