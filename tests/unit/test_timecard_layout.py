"""Header rows and tables found on timecard sheets of the layouts clock systems and people write."""

from __future__ import annotations

import datetime as dt

import pytest

from conveyor.pipelines.timecards.layout import column_role, find_tables, header_roles


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("Employee", "employee"),
        ("Emp ID", "employee_id"),
        ("Worker", "employee"),
        ("Clock-In", "start"),
        ("Time In", "start"),
        ("IN", "start"),
        ("Clock Out", "end"),
        ("Time-Out", "end"),
        ("Total Hours", "hours"),
        ("Hrs", "hours"),
        ("Pay Rate", "rate"),
        ("Wage", "rate"),
        ("Lunch Start", "break_start"),
        ("Lunch End", "break_end"),
        ("Break", "break"),
        ("Date", "date"),
        ("Start date", "start_date"),
        ("Duration (decimal)", "hours"),
        ("Clock Inn", "start"),  # a typo, within the fuzzy ratio
        ("Notes", None),
        ("Project", None),
        (12.5, None),
    ],
)
def test_column_names(text: object, role: str | None) -> None:
    assert column_role(text) == role


def test_a_row_of_data_is_not_a_header() -> None:
    assert header_roles(["Ada", dt.date(2024, 3, 4), "8:00", "17:00"]) == {}
    assert header_roles(["Name", "Rate"]) == {}, "no time column: a pay table, not a timecard"


def test_one_row_per_day_with_a_title_and_a_totals_row() -> None:
    rows: list[list[object]] = [
        ["ACME Corp timesheet, March 2024"],
        [],
        ["Employee", "Date", "Time In", "Time Out", "Hours", "Notes"],
        ["Ada", dt.date(2024, 3, 4), "8:00", "17:00", 8, ""],
        ["Ada", dt.date(2024, 3, 5), "8:00", "16:30", 7.5, "dentist"],
        ["Total", None, None, None, 15.5, None],
    ]
    [table] = find_tables(rows)
    assert table.header_row == 2
    assert table.columns == {"employee": 0, "date": 1, "start": 2, "end": 3, "hours": 4}
    assert (table.first_row, table.last_row) == (3, 5)
    assert table.unmatched == ["Notes"]
    assert table.employee is None


def test_a_block_per_employee_with_the_name_above_each_header() -> None:
    rows: list[list[object]] = [
        ["Employee: Ada Lovelace"],
        ["Date", "In", "Out"],
        [dt.date(2024, 3, 4), "8a", "5p"],
        [],
        ["Name:", "Grace Hopper"],
        ["Date", "In", "Out"],
        [dt.date(2024, 3, 4), "9:00", "18:00"],
    ]
    first, second = find_tables(rows)
    assert (first.employee, first.first_row, first.last_row) == ("Ada Lovelace", 2, 4)
    assert (second.employee, second.first_row, second.last_row) == ("Grace Hopper", 6, 6)


def test_a_time_tracker_export() -> None:
    header = [
        "User",
        "Email",
        "Project",
        "Description",
        "Start date",
        "Start time",
        "End date",
        "End time",
        "Duration (h)",
        "Duration (decimal)",
    ]
    [table] = find_tables(
        [
            header,
            [
                "Ada",
                "ada@example.com",
                "X",
                "",
                "2024-03-04",
                "08:00:00",
                "2024-03-04",
                "16:30:00",
                "08:30:00",
                8.5,
            ],
        ]
    )
    assert table.columns == {
        "employee": 0,
        "start_date": 4,
        "start": 5,
        "end_date": 6,
        "end": 7,
        "hours": 8,
    }


def test_lunch_columns_and_a_weekday_column() -> None:
    [table] = find_tables([["Day", "Date", "Clock In", "Lunch Out", "Lunch In", "Clock Out", "Total"]])
    assert table.columns == {
        "day": 0,
        "date": 1,
        "start": 2,
        "break_start": 3,
        "break_end": 4,
        "end": 5,
        "hours": 6,
    }
