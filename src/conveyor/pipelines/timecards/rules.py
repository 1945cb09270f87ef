"""The wage-and-hour rules: each a small named function from entries and weeks to findings whose
message shows the numbers behind it and cites the regulation it rests on, so a reviewer can check it.

Findings about one row point at that row's ``source``; findings about a week point at
``week:<employee>:<week_start>``; findings about a day point at the day's first row.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from decimal import Decimal

from conveyor.content import Finding
from conveyor.pipelines.timecards.model import Entry, RuleSettings, Week
from conveyor.pipelines.timecards.weeks import (
    ZERO,
    Day,
    WeekWork,
    clock_hours,
    money,
    week_workings,
)

Rule = Callable[[Sequence[Entry], Sequence[Week], RuleSettings], list[Finding]]

OVERTIME = "29 CFR 778.107"
REGULAR_RATE = "29 CFR 778.115"
NO_PYRAMIDING = "29 CFR 778.202"
MINIMUM_WAGE = "29 U.S.C. 206; 29 CFR 778.5"
RECORDS = "hours worked each workday, 29 CFR 516.2(a)(7)"
STATE_DAILY = "California Labor Code 510, a state rule applied because the daily_overtime setting is on"
HOURS_IN_A_DAY = Decimal(24)

# The workings of the entries ``check`` is running the rules on, so that each rule called from it
# need not split and add up the same rows again (a context variable, as checks may run in threads).
_shared: ContextVar[tuple[Sequence[Entry], RuleSettings, dict[tuple[str, dt.date], WeekWork]] | None] = (
    ContextVar("timecard_workings", default=None)
)


def _hours(value: Decimal) -> str:
    return str(money(value))


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _dollars(value: Decimal) -> str:
    return f"${money(value):,}"


def _rate(value: Decimal) -> str:
    """A rate in cents when it is whole cents, else to four places (a weighted average need not be)."""
    if value == money(value):
        return _dollars(value)
    return f"${value.quantize(Decimal('0.0001')).normalize():f}"


def _week_ref(week: Week) -> str:
    return f"week:{week.employee}:{week.week_start.isoformat()}"


def _week_label(week: Week) -> str:
    return f"{week.employee}, week of {week.week_start.isoformat()}"


def _interval(entry: Entry) -> str:
    if entry.start is None or entry.end is None:
        return f"{entry.date.isoformat()} {_hours(entry.hours)} hours"
    if entry.end.date() == entry.start.date():
        return f"{entry.start:%Y-%m-%d %H:%M}-{entry.end:%H:%M}"
    return f"{entry.start:%Y-%m-%d %H:%M} to {entry.end:%Y-%m-%d %H:%M}"


def _workings(entries: Sequence[Entry], settings: RuleSettings) -> dict[tuple[str, dt.date], WeekWork]:
    """The weeks' workings: those ``check`` computed once for all its rules, else computed here."""
    shared = _shared.get()
    if shared is not None and shared[0] is entries and shared[1] == settings:
        return shared[2]
    return {(work.week.employee, work.week.week_start): work for work in week_workings(entries, settings)}


def _blend(work: WeekWork | None) -> str:
    if work is None or not work.is_blended or work.straight_time_pay is None or work.week.rate is None:
        return ""
    rates = " and ".join(_dollars(rate) for rate in work.rates)
    return (
        f"; {_rate(work.week.rate)} is the regular rate, the weighted average of {rates}: "
        f"{_dollars(work.straight_time_pay)} straight-time pay / {_hours(work.rated_hours)} hours "
        f"({REGULAR_RATE})"
    )


def _premium_text(week: Week, settings: RuleSettings, over: str) -> str:
    """``5.00 over 40 at 1.5 x $12.00 = $90.00 overtime``, with double time when there is some."""
    rate = "the regular rate" if week.rate is None else _rate(week.rate)
    parts = []
    if week.overtime_hours > 0:
        parts.append(
            f"{_hours(week.overtime_hours)}{over} at {_plain(settings.overtime_multiplier)} x {rate}"
        )
    if week.double_time_hours > 0:
        multiplier = _plain(settings.double_time_multiplier)
        parts.append(f"{_hours(week.double_time_hours)} at {multiplier} x {rate}")
    text = " + ".join(parts)
    if week.overtime_pay is None:
        return f"{text}; no rate on the sheet, so no pay computed"
    return f"{text} = {_dollars(week.overtime_pay)} overtime"


def overtime(entries: Sequence[Entry], weeks: Sequence[Week], settings: RuleSettings) -> list[Finding]:
    workings = _workings(entries, settings)
    threshold = _plain(settings.overtime_threshold_hours)
    findings = []
    for week in weeks:
        if week.overtime_hours <= 0 and week.double_time_hours <= 0:
            continue
        work = workings.get((week.employee, week.week_start))
        head = f"{_week_label(week)}: {_hours(week.hours)} hours"
        if not settings.daily_overtime:
            premium = _premium_text(week, settings, f" over {threshold}")
            message = f"{head}, {premium} ({OVERTIME}){_blend(work)}"
        else:
            weekly = ZERO if work is None else work.weekly_overtime_hours
            daily = week.overtime_hours + week.double_time_hours - weekly
            message = (
                f"{head}, {_premium_text(week, settings, '')}: {_hours(daily)} hours of daily and "
                f"seventh-day premium ({STATE_DAILY}), then {_hours(weekly)} over {threshold} of the "
                f"{_hours(week.hours - daily)} hours not paid a daily premium "
                f"({OVERTIME}; no hour paid overtime twice, {NO_PYRAMIDING}){_blend(work)}"
            )
        findings.append(Finding("overtime", "info", message, _week_ref(week)))
    return findings


def minimum_wage(entries: Sequence[Entry], weeks: Sequence[Week], settings: RuleSettings) -> list[Finding]:
    workings = _workings(entries, settings)
    floor = settings.minimum_wage
    findings = []
    for week in weeks:
        if week.rate is None or week.total_pay is None or week.hours <= 0:
            continue
        work = workings.get((week.employee, week.week_start))
        if week.rate < floor or week.total_pay / week.hours < floor:
            at_floor = money(week.regular_hours * floor) + money(
                (
                    week.overtime_hours * settings.overtime_multiplier
                    + week.double_time_hours * settings.double_time_multiplier
                )
                * floor
            )
            message = (
                f"{_week_label(week)}: {_hours(week.hours)} hours at a regular rate of "
                f"{_rate(week.rate)}, total pay {_dollars(week.total_pay)}, is below the minimum wage of "
                f"{_dollars(floor)} an hour ({MINIMUM_WAGE}): at {_dollars(floor)} the week pays "
                f"{_dollars(at_floor)}, "
                f"{_dollars(at_floor - week.total_pay)} more{_blend(work)}"
            )
            findings.append(Finding("minimum_wage", "error", message, _week_ref(week)))
            continue
        if work is None:
            continue
        low = [rate for rate in work.rates if rate < floor]
        if low:
            rows = dict.fromkeys(
                entry.source for day in work.days for entry in day.entries if entry.rate in low
            )
            message = (
                f"{_week_label(week)}: {' and '.join(_dollars(rate) for rate in low)} an hour on "
                f"{', '.join(rows)} is below the minimum wage of {_dollars(floor)} ({MINIMUM_WAGE}), "
                f"although the week as a whole pays {_dollars(week.total_pay)} for {_hours(week.hours)} hours"
                f"{_blend(work)}; the FLSA measures the minimum wage over the workweek (29 CFR 776.4),"
                " so check the rate rather than the pay"
            )
            findings.append(Finding("minimum_wage", "warning", message, _week_ref(week)))
    return findings


def missing_punch(entries: Sequence[Entry], _weeks: Sequence[Week], _settings: RuleSettings) -> list[Finding]:
    findings = []
    for entry in entries:
        if (entry.start is not None and entry.end is not None) or entry.hours != 0:
            continue
        clock_in = "no clock-in" if entry.start is None else f"clock-in {entry.start:%H:%M}"
        clock_out = "no clock-out" if entry.end is None else f"clock-out {entry.end:%H:%M}"
        message = (
            f"{entry.employee}, {entry.date.isoformat()}: {clock_in}, {clock_out} and no hours, "
            f"so the time worked is unknown; the employer must record the {RECORDS}"
        )
        findings.append(Finding("missing_punch", "error", message, entry.source))
    return findings


def overlap(entries: Sequence[Entry], _weeks: Sequence[Week], _settings: RuleSettings) -> list[Finding]:
    by_employee: dict[str, list[tuple[dt.datetime, dt.datetime, Entry]]] = defaultdict(list)
    for entry in entries:
        if entry.start is not None and entry.end is not None and entry.end > entry.start:
            by_employee[entry.employee].append((entry.start, entry.end, entry))
    findings = []
    for employee, timed in by_employee.items():
        timed.sort(key=lambda interval: (interval[0], interval[1]))
        reach_start, reach_end, reach = timed[0]
        for start, end, entry in timed[1:]:
            # Exact repeats are the duplicate_entry rule's to report.
            if start < reach_end and (start, end) != (reach_start, reach_end):
                shared = clock_hours(min(end, reach_end) - start)
                message = (
                    f"{employee}: {_interval(entry)} ({entry.source}) overlaps {_interval(reach)} "
                    f"({reach.source}) by {_hours(shared)} hours; the same time cannot be worked twice, "
                    f"so one record is wrong ({RECORDS})"
                )
                findings.append(Finding("overlap", "error", message, entry.source))
            if end > reach_end:
                reach_start, reach_end, reach = start, end, entry
    return findings


def long_shift(entries: Sequence[Entry], _weeks: Sequence[Week], settings: RuleSettings) -> list[Finding]:
    limit = settings.long_shift_hours
    return [
        Finding(
            "long_shift",
            "warning",
            f"{entry.employee}, {entry.date.isoformat()}: a shift of {_hours(entry.hours)} hours "
            f"({_interval(entry)}), over the {_plain(limit)} hours set by long_shift_hours; "
            f"check the punches ({RECORDS})",
            entry.source,
        )
        for entry in entries
        if entry.hours > limit
    ]


def day_over_24h(entries: Sequence[Entry], _weeks: Sequence[Week], settings: RuleSettings) -> list[Finding]:
    findings = []
    for work in _workings(entries, settings).values():
        for day in work.days:
            if day.hours > HOURS_IN_A_DAY:
                rows = [entry.source for entry in day.entries]
                message = (
                    f"{work.week.employee}, {day.day.isoformat()}: {_hours(day.hours)} hours recorded on "
                    f"one calendar day, which has 24 ({', '.join(rows)}); at least one record is wrong "
                    f"({RECORDS})"
                )
                findings.append(Finding("day_over_24h", "error", message, rows[0]))
    return findings


def duplicate_entry(
    entries: Sequence[Entry], _weeks: Sequence[Week], _settings: RuleSettings
) -> list[Finding]:
    """Rows without both punches are told apart by their hours too: two hours-only rows on one day
    (4 hours on one job, 4 on another) are not a duplicate."""
    first: dict[tuple[object, ...], Entry] = {}
    findings = []
    for entry in entries:
        key: tuple[object, ...] = (entry.employee, entry.date, entry.start, entry.end)
        if entry.start is None or entry.end is None:
            key = (*key, entry.hours)
        original = first.setdefault(key, entry)
        if original is entry:
            continue
        message = (
            f"{entry.employee}, {entry.date.isoformat()}: {_interval(entry)} ({entry.source}) repeats "
            f"{original.source} (same employee, date, start and end), so {_hours(entry.hours)} hours "
            f"may be counted twice ({RECORDS})"
        )
        findings.append(Finding("duplicate_entry", "warning", message, entry.source))
    return findings


def _day_premium_text(day: Day, rate: str, settings: RuleSettings) -> str:
    """``4.00 over 8 at 1.5 x $12.00 and 1.00 over 12 at 2 x $12.00``; on a seventh day, ``the first
    8.00 at 1.5 x ...`` and the hours beyond 8 at double time."""
    overtime_hours = _hours(day.overtime_hours)
    daily_hours = _plain(settings.daily_overtime_hours)
    parts = []
    if day.overtime_hours > 0:
        first = (
            f"the first {overtime_hours}" if day.is_seventh_day else f"{overtime_hours} over {daily_hours}"
        )
        parts.append(f"{first} at {_plain(settings.overtime_multiplier)} x {rate}")
    if day.double_time_hours > 0:
        beyond = daily_hours if day.is_seventh_day else _plain(settings.daily_double_time_hours)
        multiplier = _plain(settings.double_time_multiplier)
        parts.append(f"{_hours(day.double_time_hours)} over {beyond} at {multiplier} x {rate}")
    return " and ".join(parts)


def daily_overtime(entries: Sequence[Entry], _weeks: Sequence[Week], settings: RuleSettings) -> list[Finding]:
    if not settings.daily_overtime:
        return []
    findings = []
    for work in _workings(entries, settings).values():
        rate = "the regular rate" if work.week.rate is None else _rate(work.week.rate)
        for day in work.days:
            if day.overtime_hours <= 0 and day.double_time_hours <= 0:
                continue
            label = f"{work.week.employee}, {day.day.isoformat()}"
            if day.is_seventh_day:
                label += f", the seventh consecutive day worked in the week of {work.week.week_start}"
            premium = _day_premium_text(day, rate, settings)
            message = f"{label}: {_hours(day.hours)} hours, {premium} ({STATE_DAILY})"
            findings.append(Finding("daily_overtime", "info", message, day.entries[0].source))
    return findings


RULES: tuple[Rule, ...] = (
    overtime,
    minimum_wage,
    missing_punch,
    overlap,
    long_shift,
    day_over_24h,
    duplicate_entry,
    daily_overtime,
)


def check(
    entries: Sequence[Entry],
    weeks: Sequence[Week],
    settings: RuleSettings,
    *,
    workings: Sequence[WeekWork] | None = None,
) -> list[Finding]:
    """Every rule's findings, in the order of ``RULES``. ``workings`` are the entries'
    ``week_workings`` when the caller has them already (``weeks`` are then their ``week``)."""
    if workings is None:
        workings = week_workings(entries, settings)
    by_week = {(work.week.employee, work.week.week_start): work for work in workings}
    token = _shared.set((entries, settings, by_week))
    try:
        return [finding for rule in RULES for finding in rule(entries, weeks, settings)]
    finally:
        _shared.reset(token)
