"""Calendar days read from timecard cells: Excel serials, numeric and named-month forms, weekday hints."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re

from conveyor.pipelines.timecards.reading import (
    AMBIGUOUS,
    CACHED_CELLS,
    CERTAIN,
    EXCEL_EPOCH,
    FIRST_REAL_DAY,
    GUESS,
    LIKELY,
    PLAUSIBLE,
    SERIAL_RANGE,
    normalise_text,
    small_serial,
)

_TRAILING_TIME = re.compile(r"(?:t|\s+)\d{1,2}:\d{2}.*$")
_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})(?:\2(\d{4}|\d{2}))?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SERIAL_TEXT = re.compile(r"\d{5}(?:\.\d+)?")
_DAY_TOKEN = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_MONTH_FULL = "january february march april may june july august september october november december"
_MONTHS = {name: index + 1 for index, full in enumerate(_MONTH_FULL.split()) for name in (full, full[:3])}
_MONTHS["sept"] = 9
_WEEKDAY_FULL = "monday tuesday wednesday thursday friday saturday sunday"
# Weekday names and their usual abbreviations, Monday 0 (as ``date.weekday()``).
WEEKDAY_NUMBERS = {
    name: index for index, full in enumerate(_WEEKDAY_FULL.split()) for name in (full, full[:3])
}
WEEKDAY_NUMBERS |= {"tues": 1, "weds": 2, "thur": 3, "thurs": 3}


@functools.lru_cache(maxsize=CACHED_CELLS, typed=True)
def parse_date(value: object, *, year: int | None, dayfirst: bool | None) -> tuple[dt.date, float] | None:
    """A calendar day; None for weekday names alone and for day-and-month without ``year``.

    With ``dayfirst=None`` a date both ways valid is read month-first (US) at lower confidence, except
    with dots (``05.03.2024``), which nearly only day-first locales write; a first field over 12 forces
    day-first, a second over 12 month-first, whatever ``dayfirst`` says. A weekday written beside the
    date picks the reading it matches, and lowers the confidence when it matches none.
    """
    if value is None or isinstance(value, bool | dt.time | dt.timedelta):
        return None
    if isinstance(value, dt.datetime):
        return None if small_serial(value) is not None else (value.date(), CERTAIN)
    if isinstance(value, dt.date):
        return None if value < FIRST_REAL_DAY.date() else (value, CERTAIN)
    if isinstance(value, int | float):
        return _date_from_serial(value, PLAUSIBLE)
    if not isinstance(value, str) or not (text := normalise_text(value)):
        return None
    weekday, text = _split_weekday(text)
    readings = _date_readings(_TRAILING_TIME.sub("", text), year=year, dayfirst=dayfirst) if text else None
    if not readings:
        return None
    days, confidence = readings
    if weekday is None:
        return days[0], confidence
    matching = [day for day in days if day.weekday() == weekday]
    if not matching:
        return days[0], GUESS
    return matching[0], CERTAIN if len(days) > len(matching) else confidence


def _date_from_serial(number: float, confidence: float) -> tuple[dt.date, float] | None:
    if not (math.isfinite(number) and SERIAL_RANGE[0] <= number < SERIAL_RANGE[1]):
        return None
    return EXCEL_EPOCH.date() + dt.timedelta(days=math.floor(number)), confidence


def _split_weekday(text: str) -> tuple[int | None, str]:
    """A weekday name before or after the date (``Tue 3/5``, ``3/5 (Tue)``) and the rest of the text."""
    words = text.replace(",", " ").split()
    for index in (0, -1):
        if words and (name := words[index].strip("().")) in WEEKDAY_NUMBERS:
            del words[index]
            return WEEKDAY_NUMBERS[name], " ".join(words)
    return None, text


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _full_year(digits: str | None, year: int | None) -> int | None:
    """A written year, or ``year`` when none is; two digits pivot like POSIX ``%y`` (69 is 1969)."""
    if digits is None:
        return year
    number = int(digits)
    if len(digits) == 2:
        return number + (2000 if number < 69 else 1900)
    return number


def _date_readings(
    text: str, *, year: int | None, dayfirst: bool | None
) -> tuple[list[dt.date], float] | None:
    """Every valid reading of the text, the preferred first, with the confidence of taking that one."""
    if match := _ISO_DATE.fullmatch(text):
        day = _day(int(match[1]), int(match[2]), int(match[3]))
        return ([day], CERTAIN) if day else None
    if match := _COMPACT_DATE.fullmatch(text):
        day = _day(int(match[1]), int(match[2]), int(match[3]))
        return ([day], PLAUSIBLE) if day and 1900 <= day.year < 2200 else None
    if _SERIAL_TEXT.fullmatch(text):
        reading = _date_from_serial(float(text), GUESS)
        return ([reading[0]], reading[1]) if reading else None
    if match := _NUMERIC_DATE.fullmatch(text):
        return _numeric_readings(match, year=year, dayfirst=dayfirst)
    return _named_month_reading(text, year=year)


def _numeric_readings(
    match: re.Match[str], *, year: int | None, dayfirst: bool | None
) -> tuple[list[dt.date], float] | None:
    full_year = _full_year(match[4], year)
    if full_year is None:
        return None
    first, second = int(match[1]), int(match[3])
    prefers_day = dayfirst if dayfirst is not None else match[2] == "."
    month_first, day_first = _day(full_year, first, second), _day(full_year, second, first)
    ordered = (day_first, month_first) if prefers_day else (month_first, day_first)
    days = list(dict.fromkeys(day for day in ordered if day is not None))
    if not days:
        return None
    if len(days) == 2:
        return days, CERTAIN if dayfirst is not None else (LIKELY if prefers_day else AMBIGUOUS)
    took_preferred = days[0] == ordered[0]
    return days, CERTAIN if took_preferred or dayfirst is None else PLAUSIBLE


def _named_month_reading(text: str, *, year: int | None) -> tuple[list[dt.date], float] | None:
    """``Mar 5, 2024``, ``5 March 2024``, ``5-Mar-24`` (Excel's d-mmm-yy), ``2024 Mar 5``."""
    tokens = [token for token in re.split(r"[\s,./-]+", text) if token]
    positions = [index for index, token in enumerate(tokens) if token in _MONTHS]
    if len(positions) != 1 or not 2 <= len(tokens) <= 3 or positions[0] == 2:
        return None
    month = _MONTHS[tokens[positions[0]]]
    others = [token for index, token in enumerate(tokens) if index != positions[0]]
    if positions[0] == 1 and len(others) == 2 and len(others[0]) == 4:
        others.reverse()  # 2024 Mar 5
    day_match = _DAY_TOKEN.fullmatch(others[0])
    year_digits = others[1] if len(others) == 2 else None
    if day_match is None or (year_digits is not None and not re.fullmatch(r"\d{4}|\d{2}", year_digits)):
        return None
    full_year = _full_year(year_digits, year)
    day = None if full_year is None else _day(full_year, month, int(day_match[1]))
    return ([day], CERTAIN) if day else None
