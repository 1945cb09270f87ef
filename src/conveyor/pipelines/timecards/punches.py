"""One worked interval's cells read: punches, durations and breaks, each reading adding its
confidence to the row's list (the row is as sure as its least sure cell). Shared by the table
layouts (``extraction``) and the weekly grids (``grid``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from conveyor.pipelines.timecards import values
from conveyor.pipelines.timecards.layout import Role

UNREADABLE_TIME: Final = 0.2
UNREADABLE_DURATION: Final = 0.4
Breaks = list[tuple[dt.datetime, dt.datetime]] | Decimal


def read_time(value: object, confidences: list[float]) -> dt.time | dt.datetime | None:
    if value is None:
        return None
    parsed = values.parse_time(value, is_time_column=True)
    if parsed is None:
        confidences.append(UNREADABLE_TIME)
        return None
    confidences.append(parsed[1])
    return parsed[0]


def read_duration(value: object, confidences: list[float]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, dt.time):  # an hours cell formatted as a time of day: 08:30 is 8.5 hours
        value = dt.timedelta(hours=value.hour, minutes=value.minute, seconds=value.second)
    parsed = values.parse_duration(value, is_fraction_of_day=False)
    if parsed is None:
        confidences.append(UNREADABLE_DURATION)
        return None
    confidences.append(parsed[1])
    return parsed[0]


def at(date: dt.date, moment: dt.time | dt.datetime | None) -> dt.datetime | None:
    if moment is None or isinstance(moment, dt.datetime):
        return moment
    return dt.datetime.combine(date, moment)


def read_punches(
    cells: Mapping[Role, object], date: dt.date, confidences: list[float]
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Clock-in and clock-out on ``date``; an end at or before the start is the next day's."""
    start = read_time(cells.get("start"), confidences)
    end = read_time(cells.get("end"), confidences)
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return start, end
    if start is None or end is None:
        return at(date, start), at(date, end)
    return values.combine(date, start, end)


def read_breaks(cells: Mapping[Role, object], start: dt.datetime | None, confidences: list[float]) -> Breaks:
    """Break out/in punches as an interval, else a break duration, else none."""
    out = read_time(cells.get("break_start"), confidences)
    back = read_time(cells.get("break_end"), confidences)
    if out is not None and back is not None and start is not None:
        out_time = out.time() if isinstance(out, dt.datetime) else out
        back_time = back.time() if isinstance(back, dt.datetime) else back
        # A break belongs to the shift: after midnight if the shift crossed it and the break is early.
        day = start.date() if out_time >= start.time() else start.date() + dt.timedelta(days=1)
        return [values.combine(day, out_time, back_time)]
    duration = read_duration(cells.get("break"), confidences)
    return duration if duration is not None else Decimal(0)
