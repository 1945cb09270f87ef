"""The confidence scale, cell text as compared, and Excel serial days: what every cell reading shares."""

from __future__ import annotations

import datetime as dt

CERTAIN = 1.0
LIKELY = 0.9  # one reading, in a form that is sometimes something else (0800, 8h30, 24:00)
PLAUSIBLE = 0.8  # a number or object that only the column makes a time or date (Excel serials)
AMBIGUOUS = 0.6  # two valid readings; the usual one was taken (03/05 month-first, 1,234 thousands)
GUESS = 0.5  # a form more often meaning something else (8.30 as 8:30), or a self-contradicting cell

# Excel's day 0 is 1899-12-30 because Lotus 1-2-3 counted a 29 February 1900 that never was: serial 60
# is that phantom day, so from serial 61 (1900-03-01) on, days counted from 1899-12-30 are right. We
# only read serials between 20000 (1954) and 80000 (2119), all well past the bug.
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
SERIAL_RANGE = (20_000, 80_000)
# calamine gives small serials (a time-formatted duration of more than a day, a "date" that is really
# a count) as dates before 1900-03-01, day 1 being 1900-01-01: never a timecard's calendar day.
CALAMINE_DAY_ONE = dt.datetime(1899, 12, 31)
FIRST_REAL_DAY = dt.datetime(1900, 3, 1)
# Cell readings are cached per distinct value: a timecard repeats its names, days, clock times and
# rates on thousands of rows, and a reading depends on nothing but the value and the flags given.
CACHED_CELLS = 65_536
_MAX_TEXT = 64  # longer cells are notes, not values; also keeps the regular expressions cheap


def normalise_text(text: str) -> str | None:
    """Lower case, single ASCII spaces (clock systems write U+00A0 and U+202F before AM/PM)."""
    return " ".join(text.split()).lower() if len(text) <= _MAX_TEXT else None


def small_serial(value: dt.datetime) -> dt.timedelta | None:
    """The span a datetime before 1900-03-01 stands for: Excel's count of days, not a calendar day."""
    if value.year > 1900:  # nearly every cell: skip the comparisons
        return None
    value = value.replace(tzinfo=None)
    if not EXCEL_EPOCH <= value < FIRST_REAL_DAY:
        return None
    return value - (EXCEL_EPOCH if value < CALAMINE_DAY_ONE else CALAMINE_DAY_ONE)
