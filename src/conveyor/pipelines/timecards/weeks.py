"""Weekly hours and pay: entries grouped into each employee's workweeks, overtime under the FLSA and,
when switched on, the California-style daily rule pack.

Where hours belong. The FLSA takes each workweek alone and counts hours in the workweek in which they
are worked (29 CFR 778.103-778.105), so an entry whose punches cross midnight is split at each midnight
into pieces, one per calendar day; the piece after the midnight that starts a new workweek counts in
that week. The daily pack uses the same calendar days (a workday from midnight to midnight, the usual
default under California Labor Code 500). The sheet's hours are the time worked, breaks already
deducted, but the sheet does not say when the break was taken: the deduction is taken from the earliest
piece first, so the later pieces get their full clock time and the pieces always sum exactly to the
entry's hours. An entry without both punches (or with an impossible span) stays whole on its ``date``.
Hours are added in a context wide enough to be exact, so a week holds exactly its entries' hours.

The rate. One rate for the week is the employee's rate; several different rates make the week's
regular rate the weighted average of 29 CFR 778.115 (straight-time pay over the hours it was paid for),
which ``WeekWork.is_blended`` reports so findings can say so. Hours without a rate are paid at the rate
of those with one (a sheet usually gives the rate on some rows only); a week without any rate has no
pay. Pay is computed exactly and rounded to cents, half up, once per figure; ``total_pay`` is the sum of
the two rounded figures so the record adds up as a pay stub does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import NamedTuple

from conveyor.pipelines.timecards.model import WEEKDAYS, Entry, RuleSettings, Week, Weekday

CENT = Decimal("0.01")
HOURS_QUANTUM = Decimal("1e-24")
ZERO = Decimal(0)
ONE_DAY = dt.timedelta(days=1)
_MICROSECOND = dt.timedelta(microseconds=1)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
# Wide enough that sums and differences of hours as extraction gives them (28 significant digits, such
# as 4.816666... for 4:49) are exact whatever their order, so a week holds exactly its entries' hours.
EXACT = Context(prec=60)
# Spans longer than this are bad data (the long_shift rule says so), not shifts to split day by day.
MAX_SPLIT_DAYS = 7


class Piece(NamedTuple):
    """The part of one entry worked on one calendar day (a tuple: there is one per entry, or more)."""

    entry: Entry
    day: dt.date
    hours: Decimal


class Day(NamedTuple):
    """One employee's calendar day inside a workweek, with its daily-pack premium hours (zero when
    the pack is off)."""

    day: dt.date
    hours: Decimal
    overtime_hours: Decimal
    double_time_hours: Decimal
    is_seventh_day: bool
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class WeekWork:
    """A ``Week`` with the workings behind it, for findings that must show their numbers."""

    week: Week
    days: tuple[Day, ...]
    # Hours over the weekly threshold not already paid as daily overtime (all of them without the pack).
    weekly_overtime_hours: Decimal
    rates: tuple[Decimal, ...]
    # Sum of hours x rate over the hours that carry a rate (exact); None without any rate.
    straight_time_pay: Decimal | None
    rated_hours: Decimal

    @property
    def is_blended(self) -> bool:
        return len(self.rates) > 1


def week_start_of(day: dt.date, workweek_start: Weekday) -> dt.date:
    return day - dt.timedelta(days=(day.weekday() - WEEKDAYS.index(workweek_start)) % 7)


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def clock_hours(span: dt.timedelta) -> Decimal:
    """Hours of a clock span, to 1e-24 h: a minute is 0.0166... h, and a fixed number of places
    keeps the later subtraction of such pieces from an entry's hours exact."""
    with localcontext(EXACT):
        return (Decimal(span // _MICROSECOND) / _MICROSECONDS_PER_HOUR).quantize(HOURS_QUANTUM)


def split_by_day(entry: Entry) -> tuple[Piece, ...]:
    with localcontext(EXACT):
        return _split_by_day(entry)


def _split_by_day(entry: Entry) -> tuple[Piece, ...]:
    start, end = entry.start, entry.end
    if start is None or end is None or end <= start:
        return (Piece(entry, entry.date, entry.hours),)
    first_day = start.date()
    if end.date() == first_day:
        return (Piece(entry, first_day, entry.hours),)
    if end - start > MAX_SPLIT_DAYS * ONE_DAY:
        return (Piece(entry, entry.date, entry.hours),)
    last_day = end.date()
    if last_day == first_day + ONE_DAY:  # the usual night shift, over one midnight
        midnight = dt.datetime.combine(last_day, dt.time(), tzinfo=end.tzinfo)
        after = min(clock_hours(end - midnight), max(entry.hours, ZERO))
        return (Piece(entry, first_day, entry.hours - after), Piece(entry, last_day, after))
    spans: list[tuple[dt.date, dt.timedelta]] = []
    cursor = start
    while cursor < end:
        midnight = dt.datetime.combine(cursor.date() + ONE_DAY, dt.time(), tzinfo=cursor.tzinfo)
        stop = min(midnight, end)
        spans.append((cursor.date(), stop - cursor))
        cursor = stop
    # Later pieces keep their clock time, the earliest absorbs the break deduction (see module doc).
    remaining = entry.hours
    later: list[Piece] = []
    for day, span in reversed(spans[1:]):
        hours = min(clock_hours(span), max(remaining, ZERO))
        later.append(Piece(entry, day, hours))
        remaining -= hours
    return (Piece(entry, first_day, remaining), *reversed(later))


def _daily_premiums(hours: Decimal, is_seventh: bool, settings: RuleSettings) -> tuple[Decimal, Decimal]:
    """Overtime and double-time hours of one day under the daily pack (California Labor Code 510)."""
    if is_seventh:
        overtime = min(hours, settings.daily_overtime_hours)
        return overtime, max(hours - overtime, ZERO)
    double = max(hours - settings.daily_double_time_hours, ZERO)
    overtime = max(min(hours, settings.daily_double_time_hours) - settings.daily_overtime_hours, ZERO)
    return overtime, double


def _days(pieces: Iterable[Piece], week_start: dt.date, settings: RuleSettings) -> tuple[Day, ...]:
    hours: dict[dt.date, Decimal] = {}
    entries: dict[dt.date, list[Entry]] = {}
    for entry, day, piece_hours in pieces:
        if day in hours:
            hours[day] += piece_hours
            entries[day].append(entry)
        else:
            hours[day] = piece_hours
            entries[day] = [entry]
    seventh = None
    # The seventh-day premium is due only when all seven days of the workweek were worked
    # (Mendoza v. Nordstrom, 2 Cal.5th 1074 (2017)).
    if settings.daily_overtime and settings.seventh_day_rule and sum(h > 0 for h in hours.values()) == 7:
        seventh = week_start + 6 * ONE_DAY
    days = []
    for day in sorted(hours):
        overtime, double = ZERO, ZERO
        if settings.daily_overtime:
            overtime, double = _daily_premiums(hours[day], day == seventh, settings)
        days.append(Day(day, hours[day], overtime, double, day == seventh, tuple(entries[day])))
    return tuple(days)


def _rates(pieces: Sequence[Piece], hours: Decimal) -> tuple[tuple[Decimal, ...], Decimal | None, Decimal]:
    """The week's distinct rates, its straight-time pay and the hours that carry a rate."""
    rates = {piece.entry.rate for piece in pieces}
    if None in rates:
        rates.discard(None)
        hours = sum((piece.hours for piece in pieces if piece.entry.rate is not None), ZERO)
    if not rates:
        return (), None, ZERO
    if len(rates) == 1:
        (rate,) = rates
        assert rate is not None
        return (rate,), hours * rate, hours
    straight_time_pay = ZERO
    for entry, _, piece_hours in pieces:
        if entry.rate is not None:
            straight_time_pay += piece_hours * entry.rate
    return tuple(sorted(rate for rate in rates if rate is not None)), straight_time_pay, hours


def _week_work(
    employee: str, week_start: dt.date, pieces: Sequence[Piece], settings: RuleSettings
) -> WeekWork:
    days = _days(pieces, week_start, settings)
    hours = sum((day.hours for day in days), ZERO)
    daily_overtime = sum((day.overtime_hours for day in days), ZERO)
    double_time = sum((day.double_time_hours for day in days), ZERO)
    # No pyramiding: only hours not already paid a daily premium count toward the weekly threshold.
    straight = hours - daily_overtime - double_time
    weekly_overtime = max(straight - settings.overtime_threshold_hours, ZERO)
    regular_hours = straight - weekly_overtime
    overtime_hours = daily_overtime + weekly_overtime

    rates, straight_time_pay, rated_hours = _rates(pieces, hours)
    rate: Decimal | None = None
    regular_pay = overtime_pay = total_pay = None
    if straight_time_pay is not None:
        premium_hours = (
            overtime_hours * settings.overtime_multiplier + double_time * settings.double_time_multiplier
        )
        if len(rates) == 1 or rated_hours == 0:
            # Several rates on rows of no hours at all weigh nothing: their plain mean is as good as any.
            rate = rates[0] if len(rates) == 1 else sum(rates, ZERO) / len(rates)
            regular_pay, overtime_pay = money(regular_hours * rate), money(premium_hours * rate)
        else:
            # Multiply before the one division, so a figure that is exact in cents stays exact.
            rate = straight_time_pay / rated_hours
            regular_pay = money(regular_hours * straight_time_pay / rated_hours)
            overtime_pay = money(premium_hours * straight_time_pay / rated_hours)
        total_pay = regular_pay + overtime_pay
    week = Week(
        employee=employee,
        week_start=week_start,
        hours=hours,
        regular_hours=regular_hours,
        overtime_hours=overtime_hours,
        double_time_hours=double_time,
        rate=rate,
        regular_pay=regular_pay,
        overtime_pay=overtime_pay,
        total_pay=total_pay,
    )
    return WeekWork(week, days, weekly_overtime, rates, straight_time_pay, rated_hours)


def week_workings(entries: Iterable[Entry], settings: RuleSettings) -> list[WeekWork]:
    """Every employee's workweeks with their workings, sorted by employee then week."""
    grouped: dict[tuple[str, dt.date], list[Piece]] = defaultdict(list)
    week_starts: dict[dt.date, dt.date] = {}
    workweek_start = settings.workweek_start
    with localcontext(EXACT):
        for entry in entries:
            start, end = entry.start, entry.end
            # The common case inline (one calendar day): this loop runs once per row of the sheet.
            if start is None or end is None or end <= start:
                pieces: tuple[Piece, ...] = (Piece(entry, entry.date, entry.hours),)
            elif end.date() == start.date():
                pieces = (Piece(entry, start.date(), entry.hours),)
            else:
                pieces = _split_by_day(entry)
            for piece in pieces:
                week_start = week_starts.get(piece.day)
                if week_start is None:
                    week_start = week_starts[piece.day] = week_start_of(piece.day, workweek_start)
                grouped[entry.employee, week_start].append(piece)
        return [
            _week_work(employee, start, grouped[employee, start], settings)
            for employee, start in sorted(grouped)
        ]


def workweeks(entries: list[Entry], settings: RuleSettings) -> list[Week]:
    return [work.week for work in week_workings(entries, settings)]
