"""Weekly hours and pay and the wage-and-hour rules, on examples worked by hand in the style of the U.S.
Department of Labor's overtime fact sheets, and on the issue's properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, localcontext

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.content import Finding
from conveyor.pipelines.timecards.model import WEEKDAYS, Entry, RuleSettings, Week, Weekday
from conveyor.pipelines.timecards.rules import RULES, check
from conveyor.pipelines.timecards.weeks import EXACT, split_by_day, week_start_of, week_workings, workweeks

SUNDAY = dt.date(2024, 3, 3)
FEDERAL = RuleSettings()
CALIFORNIA = RuleSettings(daily_overtime=True)
ADA = "Ada Lovelace"


def day(offset: int) -> dt.date:
    """A day of the week of Sunday 2024-03-03 (0 = Sunday, 6 = Saturday, 7 = the next Sunday)."""
    return SUNDAY + dt.timedelta(days=offset)


def shift(
    on: int,
    start: str,
    end: str,
    rate: str | None = "12.00",
    *,
    source: str = "",
    employee: str = ADA,
    break_hours: str = "0",
) -> Entry:
    """An entry from punches; an end at or before the start is on the next day (a night shift)."""
    date = day(on)
    begin = dt.datetime.combine(date, dt.time.fromisoformat(start))
    finish = dt.datetime.combine(date, dt.time.fromisoformat(end))
    if finish <= begin:
        finish += dt.timedelta(days=1)
    hours = Decimal((finish - begin) // dt.timedelta(minutes=1)) / 60 - Decimal(break_hours)
    return Entry(
        employee,
        date,
        begin,
        finish,
        hours,
        None if rate is None else Decimal(rate),
        source or f"Sheet1!A{on + 2}",
        break_hours=Decimal(break_hours),
    )


def hours_only(
    on: int, hours: str, rate: str | None = "12.00", *, source: str = "", employee: str = ADA
) -> Entry:
    return Entry(
        employee,
        day(on),
        None,
        None,
        Decimal(hours),
        None if rate is None else Decimal(rate),
        source or "S!A1",
    )


def exactly(*values: int | str) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


def one_week(entries: list[Entry], settings: RuleSettings = FEDERAL) -> Week:
    (week,) = workweeks(entries, settings)
    return week


def of_rule(rule: str, entries: list[Entry], settings: RuleSettings = FEDERAL) -> list[Finding]:
    return [
        finding for finding in check(entries, workweeks(entries, settings), settings) if finding.rule == rule
    ]


# --- weekly overtime under the FLSA ----------------------------------------------------------------


def test_45_hours_at_12_dollars_is_40_regular_and_5_overtime() -> None:
    entries = [shift(on, "08:00", "17:00") for on in range(1, 6)]
    assert one_week(entries) == Week(
        employee=ADA,
        week_start=SUNDAY,
        hours=Decimal(45),
        regular_hours=Decimal(40),
        overtime_hours=Decimal(5),
        double_time_hours=Decimal(0),
        rate=Decimal("12.00"),
        regular_pay=Decimal("480.00"),
        overtime_pay=Decimal("90.00"),
        total_pay=Decimal("570.00"),
    )
    assert of_rule("overtime", entries) == [
        Finding(
            "overtime",
            "info",
            "Ada Lovelace, week of 2024-03-03: 45.00 hours, 5.00 over 40 at 1.5 x $12.00 = $90.00 overtime "
            "(29 CFR 778.107)",
            "week:Ada Lovelace:2024-03-03",
        )
    ]


def test_40_hours_have_no_overtime_and_no_finding() -> None:
    entries = [shift(on, "08:00", "16:00") for on in range(1, 6)]
    week = one_week(entries)
    assert (week.overtime_hours, week.total_pay) == exactly(0, "480.00")
    assert check(entries, [week], FEDERAL) == []


def test_two_rates_make_the_weighted_average_regular_rate_of_778_115() -> None:
    # 35 hours at $10.00 and 15 at $15.00: $575.00 straight time over 50 hours, a regular rate of $11.50;
    # the 10 overtime hours are owed another half of it: $575.00 + 10 x $5.75 = $632.50.
    entries = [shift(on, "08:00", "15:00", "10.00") for on in range(1, 6)]
    entries += [shift(on, "15:00", "18:00", "15.00", source=f"Sheet1!B{on}") for on in range(1, 6)]
    week = one_week(entries)
    assert (week.hours, week.regular_hours, week.overtime_hours) == exactly(50, 40, 10)
    assert week.rate == Decimal("11.50")
    assert (week.regular_pay, week.overtime_pay, week.total_pay) == (
        Decimal("460.00"),
        Decimal("172.50"),
        Decimal("632.50"),
    )
    assert week.total_pay == Decimal("575.00") + 10 * Decimal("11.50") / 2
    (finding,) = of_rule("overtime", entries)
    assert finding.message == (
        "Ada Lovelace, week of 2024-03-03: 50.00 hours, 10.00 over 40 at 1.5 x $11.50 = $172.50 overtime "
        "(29 CFR 778.107); $11.50 is the regular rate, the weighted average of $10.00 and $15.00: "
        "$575.00 straight-time pay / 50.00 hours (29 CFR 778.115)"
    )


def test_a_regular_rate_that_does_not_end_is_rounded_only_in_the_pay() -> None:
    # 30 h at $10.00 + 15 h at $12.50 = $487.50 / 45 h = $10.8333...: 40 h x rate = $433.333... -> $433.33,
    # 5 h x 1.5 x rate = $81.25 exactly (multiplied before dividing, so no stray digit rounds it away).
    entries = [shift(on, "08:00", "14:00", "10.00") for on in range(1, 6)]
    entries += [shift(on, "14:00", "17:00", "12.50", source=f"B{on}") for on in range(1, 6)]
    week = one_week(entries)
    assert week.rate is not None and week.rate.quantize(Decimal("0.0001")) == Decimal("10.8333")
    assert (week.regular_pay, week.overtime_pay, week.total_pay) == (
        Decimal("433.33"),
        Decimal("81.25"),
        Decimal("514.58"),
    )


def test_rows_without_a_rate_are_paid_at_the_rate_of_the_others() -> None:
    entries = [shift(1, "08:00", "17:00")] + [shift(on, "08:00", "17:00", None) for on in range(2, 6)]
    assert one_week(entries).total_pay == Decimal("570.00")


def test_a_week_without_any_rate_has_hours_but_no_pay() -> None:
    entries = [shift(on, "08:00", "17:00", None) for on in range(1, 6)]
    week = one_week(entries)
    assert (week.hours, week.overtime_hours) == exactly(45, 5)
    assert (week.rate, week.regular_pay, week.overtime_pay, week.total_pay) == (None, None, None, None)
    (finding,) = of_rule("overtime", entries)
    assert finding.message == (
        "Ada Lovelace, week of 2024-03-03: 45.00 hours, 5.00 over 40 at 1.5 x the regular rate; "
        "no rate on the sheet, so no pay computed (29 CFR 778.107)"
    )
    assert of_rule("minimum_wage", entries) == []


def test_pay_is_rounded_half_up_to_cents_once_per_figure() -> None:
    # 40.25 h at $12.35: 40 x 12.35 = $494.00 and 0.25 x 1.5 x 12.35 = $4.63125 -> $4.63.
    week = one_week([hours_only(1, "40.25", "12.35")])
    assert (week.regular_pay, week.overtime_pay, week.total_pay) == (
        Decimal("494.00"),
        Decimal("4.63"),
        Decimal("498.63"),
    )
    tie = one_week([hours_only(1, "0.5", "0.25")])  # $0.125: half up gives $0.13 (half even, $0.12)
    assert tie.regular_pay == Decimal("0.13")


def test_weeks_are_per_employee_and_sorted() -> None:
    entries = [
        hours_only(8, "10", employee="Zed"),
        hours_only(1, "10", employee="Zed"),
        hours_only(1, "50", employee="Bea"),
    ]
    weeks = workweeks(entries, FEDERAL)
    assert [(week.employee, week.week_start, week.hours) for week in weeks] == [
        ("Bea", SUNDAY, Decimal(50)),
        ("Zed", SUNDAY, Decimal(10)),
        ("Zed", day(7), Decimal(10)),
    ]


# --- the workweek ----------------------------------------------------------------------------------


@pytest.mark.parametrize("weekday", WEEKDAYS)
def test_a_workweek_starts_on_its_configured_day(weekday: Weekday) -> None:
    for offset in range(14):
        start = week_start_of(day(offset), weekday)
        assert WEEKDAYS[start.weekday()] == weekday
        assert dt.timedelta(0) <= day(offset) - start < dt.timedelta(days=7)


def test_a_workweek_starting_wednesday_splits_monday_to_friday_and_owes_no_overtime() -> None:
    entries = [shift(on, "08:00", "17:00") for on in range(1, 6)]
    weeks = workweeks(entries, RuleSettings(workweek_start="wednesday"))
    assert [(week.week_start, week.hours, week.overtime_hours) for week in weeks] == [
        (dt.date(2024, 2, 28), Decimal(18), Decimal(0)),
        (dt.date(2024, 3, 6), Decimal(27), Decimal(0)),
    ]


def test_a_night_shift_across_the_workweek_boundary_is_split_at_midnight() -> None:
    # Saturday 22:00 to Sunday 06:00 with the week starting Sunday: the FLSA counts hours in the
    # workweek in which they are worked (29 CFR 778.104), so 2 hours fall in one week and 6 in the next.
    # The 30-minute break is taken from the earlier part, as the sheet does not say when it was.
    entries = [shift(on, "08:00", "16:00") for on in range(1, 6)]
    entries.append(shift(6, "22:00", "06:00", break_hours="0.5"))
    weeks = workweeks(entries, FEDERAL)
    assert [(week.week_start, week.hours, week.overtime_hours, week.total_pay) for week in weeks] == [
        (SUNDAY, Decimal("41.5"), Decimal("1.5"), Decimal("507.00")),
        (day(7), Decimal(6), Decimal(0), Decimal("72.00")),
    ]
    monday = one_week(entries, RuleSettings(workweek_start="monday"))
    assert (monday.week_start, monday.hours, monday.overtime_hours) == (
        day(1),
        Decimal("47.5"),
        Decimal("7.5"),
    )


def test_a_shift_split_at_midnight_gives_the_same_weeks() -> None:
    whole = [shift(6, "20:00", "04:00")]
    halves = [shift(6, "20:00", "00:00"), shift(7, "00:00", "04:00")]
    for settings in (FEDERAL, CALIFORNIA, RuleSettings(workweek_start="monday")):
        assert workweeks(whole, settings) == workweeks(halves, settings)


def test_a_span_that_is_not_a_shift_stays_whole_on_its_date() -> None:
    backwards = Entry(
        ADA, day(2), dt.datetime(2024, 3, 5, 9), dt.datetime(2024, 3, 5, 8), Decimal(3), None, "A"
    )
    assert [(piece.day, piece.hours) for piece in split_by_day(backwards)] == [(day(2), Decimal(3))]


# --- minimum wage ----------------------------------------------------------------------------------


def test_a_week_at_7_dollars_is_below_the_federal_minimum_wage() -> None:
    entries = [shift(on, "09:00", "17:00", "7.00") for on in range(1, 6)]
    assert of_rule("minimum_wage", entries) == [
        Finding(
            "minimum_wage",
            "error",
            "Ada Lovelace, week of 2024-03-03: 40.00 hours at a regular rate of $7.00, total pay $280.00, "
            "is below the minimum wage of $7.25 an hour (29 U.S.C. 206; 29 CFR 778.5): "
            "at $7.25 the week pays $290.00, $10.00 more",
            "week:Ada Lovelace:2024-03-03",
        )
    ]


def test_overtime_premium_does_not_hide_a_rate_below_the_minimum() -> None:
    # 45 h at $7.00 pays $280.00 + $52.50 = $332.50, $7.39 an hour, yet the regular rate is below $7.25.
    entries = [shift(on, "08:00", "17:00", "7.00") for on in range(1, 6)]
    assert one_week(entries).total_pay == Decimal("332.50")
    (finding,) = of_rule("minimum_wage", entries)
    assert "at $7.25 the week pays $344.38, $11.88 more" in finding.message  # 290.00 + 5 x 10.875


def test_one_row_below_the_minimum_is_a_warning_when_the_week_averages_above_it() -> None:
    entries = [shift(1, "08:00", "12:00", "6.00", source="S!A2"), shift(1, "12:00", "16:00", "10.00")]
    (finding,) = of_rule("minimum_wage", entries)
    assert finding.severity == "warning", "the minimum wage is measured over the workweek (29 CFR 776.4)"
    assert finding.message.startswith(
        "Ada Lovelace, week of 2024-03-03: $6.00 an hour on S!A2 is below the minimum wage of $7.25 "
        "(29 U.S.C. 206; 29 CFR 778.5), although the week as a whole pays $64.00 for 8.00 hours; "
        "$8.00 is the regular rate"
    )


def test_the_minimum_wage_is_a_setting() -> None:
    entries = [shift(1, "09:00", "17:00", "15.00")]
    assert of_rule("minimum_wage", entries) == []
    assert len(of_rule("minimum_wage", entries, RuleSettings(minimum_wage=Decimal("16.50")))) == 1


# --- the daily rule pack (California) --------------------------------------------------------------


def test_a_10_hour_day_has_2_hours_of_daily_overtime() -> None:
    entries = [shift(2, "08:00", "18:00")]
    week = one_week(entries, CALIFORNIA)
    assert (week.regular_hours, week.overtime_hours, week.double_time_hours) == exactly(8, 2, 0)
    assert (week.regular_pay, week.overtime_pay, week.total_pay) == (
        Decimal("96.00"),
        Decimal("36.00"),
        Decimal("132.00"),
    )
    assert of_rule("daily_overtime", entries, CALIFORNIA) == [
        Finding(
            "daily_overtime",
            "info",
            "Ada Lovelace, 2024-03-05: 10.00 hours, 2.00 over 8 at 1.5 x $12.00 (California Labor Code 510, "
            "a state rule applied because the daily_overtime setting is on)",
            "Sheet1!A4",
        )
    ]
    assert one_week(entries, FEDERAL).overtime_hours == 0
    assert of_rule("daily_overtime", entries, FEDERAL) == []


def test_a_13_hour_day_has_4_hours_at_time_and_a_half_and_1_at_double_time() -> None:
    entries = [shift(2, "07:00", "20:00")]
    week = one_week(entries, CALIFORNIA)
    assert (week.regular_hours, week.overtime_hours, week.double_time_hours) == exactly(8, 4, 1)
    assert (week.regular_pay, week.overtime_pay, week.total_pay) == (
        Decimal("96.00"),
        Decimal("96.00"),  # 4 x $18.00 + 1 x $24.00
        Decimal("192.00"),
    )
    (finding,) = of_rule("daily_overtime", entries, CALIFORNIA)
    assert finding.message.startswith(
        "Ada Lovelace, 2024-03-05: 13.00 hours, 4.00 over 8 at 1.5 x $12.00 and 1.00 over 12 at 2 x $12.00"
    )


def test_the_seventh_consecutive_day_is_time_and_a_half_then_double_time() -> None:
    # Sunday to Friday 8 h, Saturday 10 h at $10.00: 48 straight hours, 8 of them over 40;
    # the seventh day's first 8 at 1.5x and 2 at 2x. 40 x 10 + 16 x 15 + 2 x 20 = $680.00.
    entries = [shift(on, "08:00", "16:00", "10.00") for on in range(6)] + [
        shift(6, "08:00", "18:00", "10.00")
    ]
    week = one_week(entries, CALIFORNIA)
    assert (week.hours, week.regular_hours, week.overtime_hours, week.double_time_hours) == exactly(
        58, 40, 16, 2
    )
    assert week.total_pay == Decimal("680.00")
    (finding,) = of_rule("daily_overtime", entries, CALIFORNIA)
    assert finding.message.startswith(
        "Ada Lovelace, 2024-03-09, the seventh consecutive day worked in the week of 2024-03-03: "
        "10.00 hours, the first 8.00 at 1.5 x $10.00 and 2.00 over 8 at 2 x $10.00 (California Labor Code 510"
    )
    without = one_week(entries, RuleSettings(daily_overtime=True, seventh_day_rule=False))
    assert (without.regular_hours, without.overtime_hours, without.double_time_hours) == exactly(40, 18, 0)


def test_six_days_of_work_have_no_seventh_day() -> None:
    entries = [shift(on, "08:00", "16:00") for on in range(1, 7)]
    week = one_week(entries, CALIFORNIA)
    assert (week.regular_hours, week.overtime_hours, week.double_time_hours) == exactly(40, 8, 0)
    assert of_rule("daily_overtime", entries, CALIFORNIA) == []


def test_no_pyramiding_daily_overtime_hours_do_not_count_again_toward_40() -> None:
    ten_hour_days = [shift(on, "08:00", "18:00") for on in range(1, 6)]  # 50 h: 10 daily, 40 straight
    week = one_week(ten_hour_days, CALIFORNIA)
    assert (week.hours, week.regular_hours, week.overtime_hours) == exactly(50, 40, 10)
    assert week.total_pay == Decimal("660.00")  # 40 x 12 + 10 x 18, not 20 overtime hours
    nine_hour_days = [shift(on, "08:00", "17:00") for on in range(1, 7)]  # 54 h: 6 daily, 48 straight
    week = one_week(nine_hour_days, CALIFORNIA)
    assert (week.regular_hours, week.overtime_hours) == exactly(40, 14)
    (finding,) = of_rule("overtime", nine_hour_days, CALIFORNIA)
    assert finding.message == (
        "Ada Lovelace, week of 2024-03-03: 54.00 hours, 14.00 at 1.5 x $12.00 = $252.00 overtime: "
        "6.00 hours of daily and seventh-day premium (California Labor Code 510, a state rule applied "
        "because the daily_overtime setting is on), then 8.00 over 40 of the 48.00 hours not paid a daily "
        "premium (29 CFR 778.107; no hour paid overtime twice, 29 CFR 778.202)"
    )


# --- records and plausibility ----------------------------------------------------------------------


def test_a_missing_punch_without_hours_is_an_error() -> None:
    open_entry = Entry(ADA, day(1), dt.datetime(2024, 3, 4, 8), None, Decimal(0), None, "Sheet1!A7")
    with_hours = Entry(ADA, day(2), dt.datetime(2024, 3, 5, 8), None, Decimal(8), None, "Sheet1!A8")
    assert of_rule("missing_punch", [open_entry, with_hours]) == [
        Finding(
            "missing_punch",
            "error",
            "Ada Lovelace, 2024-03-04: clock-in 08:00, no clock-out and no hours, so the time worked is "
            "unknown; the employer must record the hours worked each workday, 29 CFR 516.2(a)(7)",
            "Sheet1!A7",
        )
    ]


def test_overlapping_intervals_of_one_employee_are_an_error() -> None:
    entries = [
        shift(1, "08:00", "16:00", source="S!A2"),
        shift(1, "15:00", "20:00", source="S!A3"),
        shift(1, "20:00", "22:00", source="S!A4"),  # touches, does not overlap
        shift(1, "09:00", "17:00", source="S!A5", employee="Bob"),
    ]
    assert of_rule("overlap", entries) == [
        Finding(
            "overlap",
            "error",
            "Ada Lovelace: 2024-03-04 15:00-20:00 (S!A3) overlaps 2024-03-04 08:00-16:00 (S!A2) "
            "by 1.00 hours; the same time cannot be worked twice, so one record is wrong "
            "(hours worked each workday, 29 CFR 516.2(a)(7))",
            "S!A3",
        )
    ]


def test_a_shift_inside_a_long_one_overlaps_it() -> None:
    entries = [shift(1, "22:00", "10:00", source="S!A2"), shift(2, "01:00", "02:30", source="S!A3")]
    (finding,) = of_rule("overlap", entries)
    assert "(S!A3) overlaps 2024-03-04 22:00 to 2024-03-05 10:00 (S!A2) by 1.50 hours" in finding.message


def test_a_long_shift_is_a_warning_over_the_configured_hours() -> None:
    entries = [shift(1, "08:00", "01:00", source="S!A2"), shift(3, "08:00", "00:00", source="S!A3")]
    assert of_rule("long_shift", entries) == [
        Finding(
            "long_shift",
            "warning",
            "Ada Lovelace, 2024-03-04: a shift of 17.00 hours (2024-03-04 08:00 to 2024-03-05 01:00), "
            "over the 16 hours set by long_shift_hours; check the punches "
            "(hours worked each workday, 29 CFR 516.2(a)(7))",
            "S!A2",
        )
    ]
    assert len(of_rule("long_shift", entries, RuleSettings(long_shift_hours=Decimal(12)))) == 2


def test_more_than_24_hours_on_one_calendar_day_is_an_error() -> None:
    entries = [hours_only(1, "13", source="S!A2"), hours_only(1, "13", source="S!A3")]
    assert of_rule("day_over_24h", entries) == [
        Finding(
            "day_over_24h",
            "error",
            "Ada Lovelace, 2024-03-04: 26.00 hours recorded on one calendar day, which has 24 (S!A2, S!A3); "
            "at least one record is wrong (hours worked each workday, 29 CFR 516.2(a)(7))",
            "S!A2",
        )
    ]


def test_back_to_back_night_shifts_do_not_add_up_to_one_long_day() -> None:
    # 20 hours from 08:00 to 04:00 and another 20 from 08:00 the next day: each calendar day has
    # 16 + 4 hours at most, so nothing is over 24 even though both rows are dated a day apart.
    entries = [shift(1, "08:00", "04:00"), shift(2, "08:00", "04:00")]
    assert of_rule("day_over_24h", entries) == []


def test_a_row_given_twice_is_a_duplicate_not_an_overlap() -> None:
    entries = [
        shift(1, "08:00", "16:00", source="S!A2"),
        shift(1, "08:00", "16:00", source="S!A3"),
        hours_only(2, "4", source="S!A4"),
        hours_only(2, "3", source="S!A5"),  # two jobs on one day, not a repeat
    ]
    findings = check(entries, workweeks(entries, FEDERAL), FEDERAL)
    assert findings == [
        Finding(
            "duplicate_entry",
            "warning",
            "Ada Lovelace, 2024-03-04: 2024-03-04 08:00-16:00 (S!A3) repeats S!A2 "
            "(same employee, date, start and end), so 8.00 hours may be counted twice "
            "(hours worked each workday, 29 CFR 516.2(a)(7))",
            "S!A3",
        )
    ]


def test_every_rule_is_registered_once_and_run_by_check() -> None:
    assert [rule.__name__ for rule in RULES] == [
        "overtime",
        "minimum_wage",
        "missing_punch",
        "overlap",
        "long_shift",
        "day_over_24h",
        "duplicate_entry",
        "daily_overtime",
    ]
    entries = [
        shift(1, "07:00", "20:00", "7.00", source="S!A2"),
        shift(1, "07:00", "20:00", "7.00", source="S!A3"),
        shift(2, "19:00", "01:00", "7.00", source="S!A4"),
        shift(3, "00:00", "23:00", "7.00", source="S!A5"),
        hours_only(3, "2", "7.00", source="S!A6"),
        Entry(ADA, day(4), None, dt.datetime(2024, 3, 7, 17), Decimal(0), None, "S!A7"),
    ]
    severities = {
        finding.rule: finding.severity
        for finding in check(entries, workweeks(entries, CALIFORNIA), CALIFORNIA)
    }
    assert severities == {
        "overtime": "info",
        "minimum_wage": "error",
        "missing_punch": "error",
        "overlap": "error",
        "long_shift": "warning",
        "day_over_24h": "error",
        "duplicate_entry": "warning",
        "daily_overtime": "info",
    }


def test_check_gives_the_same_findings_with_the_workings_given_or_computed_by_each_rule() -> None:
    entries = [shift(on, "07:00", "20:00", "7.00") for on in range(7)]
    entries += [shift(2, "19:00", "02:00", "9.00", source="S!B4"), hours_only(3, "2", source="S!B5")]
    workings = week_workings(entries, CALIFORNIA)
    weeks = [work.week for work in workings]
    findings = check(entries, weeks, CALIFORNIA, workings=workings)
    assert {finding.rule for finding in findings} >= {"overtime", "minimum_wage", "overlap", "daily_overtime"}
    assert findings == check(entries, weeks, CALIFORNIA)
    assert findings == [finding for rule in RULES for finding in rule(entries, weeks, CALIFORNIA)]


# --- properties ------------------------------------------------------------------------------------

EMPLOYEES = st.sampled_from(["Ada", "Bob", "Cy"])
RATES = st.one_of(st.none(), st.sampled_from([Decimal("7.25"), Decimal("12.00"), Decimal("15.50")]))


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    """An entry with punches (maybe crossing midnight or a week boundary, maybe with a break) or
    with hours only, or with a punch missing."""
    employee, rate = draw(EMPLOYEES), draw(RATES)
    date = day(draw(st.integers(0, 20)))
    kind = draw(st.sampled_from(["punches", "hours", "missing"]))
    if kind == "hours":
        return Entry(employee, date, None, None, draw(st.decimals(0, 16, places=2)), rate, "S!A1")
    start = dt.datetime.combine(date, dt.time()) + dt.timedelta(minutes=draw(st.integers(0, 1439)))
    if kind == "missing":
        return Entry(employee, date, start, None, Decimal(0), rate, "S!A1")
    end = start + dt.timedelta(minutes=draw(st.integers(1, 20 * 60)))
    clock = Decimal((end - start) // dt.timedelta(minutes=1)) / 60
    break_hours = min(draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)])), clock)
    return Entry(employee, date, start, end, clock - break_hours, rate, "S!A1", break_hours=break_hours)


@st.composite
def night_shifts(draw: st.DrawFn) -> tuple[Entry, list[Entry]]:
    """A shift across midnight, and the same work typed as one row per calendar day. Minutes in steps
    of three keep every hours figure exact (k x 0.05), so the rows add up to the whole exactly."""
    date = day(draw(st.integers(0, 13)))
    midnight = dt.datetime.combine(date + dt.timedelta(days=1), dt.time())
    start = midnight - dt.timedelta(minutes=3 * draw(st.integers(1, 8 * 20)))
    end = midnight + dt.timedelta(minutes=3 * draw(st.integers(1, 8 * 20)))
    before = Decimal((midnight - start) // dt.timedelta(minutes=1)) / 60
    after = Decimal((end - midnight) // dt.timedelta(minutes=1)) / 60
    break_hours = min(draw(st.sampled_from([Decimal(0), Decimal("0.25"), Decimal("0.5")])), before)
    rate = draw(RATES)
    whole = Entry(ADA, date, start, end, before + after - break_hours, rate, "A", break_hours=break_hours)
    rows = [
        Entry(ADA, date, start, midnight, before - break_hours, rate, "A", break_hours=break_hours),
        Entry(ADA, midnight.date(), midnight, end, after, rate, "B"),
    ]
    return whole, rows


SETTINGS = st.builds(
    RuleSettings,
    workweek_start=st.sampled_from(WEEKDAYS),
    overtime_threshold_hours=st.sampled_from([Decimal(0), Decimal(35), Decimal(40), Decimal("37.5")]),
    daily_overtime=st.booleans(),
)


@hypothesis.settings(max_examples=150, deadline=None)
@given(st.lists(entries(), max_size=25), SETTINGS)
def test_hours_are_conserved_between_entries_and_weeks(timecard: list[Entry], settings: RuleSettings) -> None:
    weeks = workweeks(timecard, settings)
    # Hours from minutes (4:49 is 4.8166...) are rounded in their last digit: the sums here are taken
    # as exactly as weeks takes them, or their own rounding would differ in the 28th digit.
    with localcontext(EXACT):
        for employee in {entry.employee for entry in timecard}:
            given_hours = sum((entry.hours for entry in timecard if entry.employee == employee), Decimal(0))
            assert sum((week.hours for week in weeks if week.employee == employee), Decimal(0)) == given_hours
        for week in weeks:
            assert week.regular_hours + week.overtime_hours + week.double_time_hours == week.hours
            assert min(week.regular_hours, week.overtime_hours, week.double_time_hours) >= 0
            if week.regular_pay is not None and week.overtime_pay is not None:
                assert week.total_pay == week.regular_pay + week.overtime_pay
    check(timecard, weeks, settings)  # every rule runs on anything extraction can produce


@hypothesis.settings(max_examples=150, deadline=None)
@given(st.lists(entries(), max_size=25), SETTINGS)
def test_overtime_is_the_hours_over_the_threshold_without_the_daily_pack(
    timecard: list[Entry], settings: RuleSettings
) -> None:
    settings = settings.model_copy(update={"daily_overtime": False})
    for week in workweeks(timecard, settings):
        with localcontext(EXACT):
            assert week.overtime_hours == max(Decimal(0), week.hours - settings.overtime_threshold_hours)
        assert week.double_time_hours == 0


@hypothesis.settings(max_examples=150, deadline=None)
@given(entries())
def test_the_pieces_of_an_entry_sum_to_its_hours(entry: Entry) -> None:
    pieces = split_by_day(entry)
    with localcontext(EXACT):
        assert sum((piece.hours for piece in pieces), Decimal(0)) == entry.hours
    assert all(piece.hours >= 0 for piece in pieces)
    assert len({piece.day for piece in pieces}) == len(pieces)


@hypothesis.settings(max_examples=150, deadline=None)
@given(night_shifts(), SETTINGS)
def test_a_shift_split_at_midnight_sums_to_the_same_hours(
    shifts: tuple[Entry, list[Entry]], settings: RuleSettings
) -> None:
    whole, rows = shifts
    assert sum((row.hours for row in rows), Decimal(0)) == whole.hours
    assert workweeks([whole], settings) == workweeks(rows, settings)
