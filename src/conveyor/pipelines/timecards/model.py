"""The nouns of timecards: one worked interval (an entry), the rules' settings, a week's pay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Entry:
    """One worked interval as the sheet gives it.

    ``start``/``end`` are naive local datetimes (``end`` on the next day for a night shift); either
    is None when the punch is missing. ``hours`` is the time worked, breaks already deducted (from
    the punches when both are there, else the sheet's own hours column). ``source`` points at the
    row (``Sheet1!A12:F12``); ``confidence`` (0-1) says how sure extraction is of this row.
    """

    employee: str
    date: dt.date
    start: dt.datetime | None
    end: dt.datetime | None
    hours: Decimal
    rate: Decimal | None
    source: str
    confidence: float = 1.0
    break_hours: Decimal = Decimal(0)


class RuleSettings(BaseModel):
    """The wage-and-hour rules' parameters: from the settings table (``timecard.rules``), overridable
    per job with params. Defaults are the federal FLSA ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workweek_start: Weekday = "sunday"
    overtime_threshold_hours: Decimal = Field(default=Decimal(40), ge=0)
    overtime_multiplier: Decimal = Field(default=Decimal("1.5"), ge=1)
    minimum_wage: Decimal = Field(default=Decimal("7.25"), ge=0)
    long_shift_hours: Decimal = Field(default=Decimal(16), gt=0)
    daily_overtime: bool = False
    daily_overtime_hours: Decimal = Field(default=Decimal(8), gt=0)
    daily_double_time_hours: Decimal = Field(default=Decimal(12), gt=0)
    double_time_multiplier: Decimal = Field(default=Decimal(2), ge=1)
    seventh_day_rule: bool = True

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> RuleSettings:
        """The rules' part of a timecard job's (validated) params."""
        return cls.model_validate({name: params[name] for name in cls.model_fields if name in params})


@dataclass(frozen=True, slots=True)
class Week:
    """One employee's workweek: hours and pay, money rounded to cents only here, at the end."""

    employee: str
    week_start: dt.date
    hours: Decimal
    regular_hours: Decimal
    overtime_hours: Decimal
    double_time_hours: Decimal
    rate: Decimal | None
    regular_pay: Decimal | None
    overtime_pay: Decimal | None
    total_pay: Decimal | None
