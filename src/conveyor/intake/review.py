"""Human review: the queue of open review items and the decisions on them, each one audited.

A ``correct`` decision on a ``timecard`` job replaces fields of its entry records and recomputes
the job's week records and findings from all its entries, so a reviewer who supplies a missing
clock-out sees the week's hours and the rule findings as the pipeline would have made them. For
other pipelines a correction replaces the data of the named records as given. Everything happens
in the caller's one transaction: a bad value anywhere leaves the job as it was.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import String, cast, delete, select, update
from sqlalchemy.orm import Session

from conveyor import queue
from conveyor.errors import Conflict, InputError, NotFound
from conveyor.intake.access import record_audit
from conveyor.intake.jobs import Page
from conveyor.pipelines import get_pipeline
from conveyor.pipelines.timecards.model import Entry, RuleSettings

# The pipeline's own record shapes, so a corrected job's records match a freshly run one's.
from conveyor.pipelines.timecards.pipeline import checked_entries, entry_record, week_record
from conveyor.pipelines.timecards.weeks import clock_hours
from conveyor.processing import pipeline_defaults
from conveyor.store.results import write_findings
from conveyor.store.tables import FindingRow, Job, RecordRow, ReviewItem, utcnow

Decision = Literal["approve", "reject", "correct"]
# What the item and the job's review_status become. A correction is an approval of the data as corrected.
OUTCOMES: dict[str, tuple[str, str]] = {
    "approve": ("approved", "approved"),
    "reject": ("rejected", "rejected"),
    "correct": ("corrected", "approved"),
}
ENTRY_FIELDS = frozenset({"source", "employee", "date", "start", "end", "hours", "rate"})
HALF_CENT_HOUR = Decimal("0.005")


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    item: ReviewItem
    job: Job
    changed_records: int


def review_queue(
    session: Session,
    *,
    pipeline: str | None = None,
    reason: str | None = None,
    older_than_minutes: int | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> Page[ReviewItem]:
    """Open items, oldest first; ``cursor`` is the last id of the previous page."""
    query = select(ReviewItem).where(ReviewItem.status == "pending").order_by(ReviewItem.id)
    if pipeline is not None:
        query = query.where(ReviewItem.pipeline == pipeline)
    if reason is not None:
        # ``reasons`` is {"reasons": [...]}: matching the quoted JSON string works alike on SQLite's
        # text and PostgreSQL's jsonb rendering, without dialect-specific JSON operators.
        quoted = '"' + reason.replace("\\", "\\\\").replace('"', '\\"') + '"'
        pattern = "%" + quoted.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        query = query.where(cast(ReviewItem.reasons, String).like(pattern, escape="!"))
    if older_than_minutes is not None:
        query = query.where(ReviewItem.created_at <= utcnow() - dt.timedelta(minutes=older_than_minutes))
    if cursor is not None:
        query = query.where(ReviewItem.id > cursor)
    rows = list(session.scalars(query.limit(limit + 1)))
    if len(rows) > limit:
        return Page(rows[:limit], rows[limit - 1].id)
    return Page(rows, None)


def decide_review(
    session: Session,
    *,
    item_id: int,
    decision: Decision,
    data: Any = None,
    comment: str | None = None,
    actor: str,
) -> ReviewOutcome:
    """Close an open item (409 if it is closed already) and set its job's ``review_status``."""
    if decision not in OUTCOMES:
        raise InputError(f"decision must be approve, reject or correct, not {decision!r}")
    item_status, review_status = OUTCOMES[decision]
    # Claimed with a conditional UPDATE: of two reviewers deciding at once, exactly one wins.
    result = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.status == "pending")
        .values(
            status=item_status,
            decided_by=actor[:255],
            decided_at=utcnow(),
            decision_data={"decision": decision, "comment": comment, "data": data},
        )
        .execution_options(synchronize_session=False)
    )
    claimed = int(result.rowcount)  # type: ignore[attr-defined]
    item = session.get(ReviewItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"review item {item_id} not found")
    if not claimed:
        raise Conflict(f"review item {item_id} is already decided ({item.status} by {item.decided_by})")
    job = queue.get(session, item.job_id, for_update=True)
    before: dict[str, Any] = {"status": "pending", "review_status": job.review_status}
    after: dict[str, Any] = {"status": item_status, "review_status": review_status, "comment": comment}
    changed = 0
    if decision == "correct":
        if job.pipeline == "timecard":
            change = _correct_timecard(session, job, data)
        else:
            change = _correct_records(session, job, data)
        before |= change.before
        after |= change.after
        changed = change.count
    job.review_status = review_status
    session.flush()
    record_audit(
        session,
        actor=actor,
        action=f"review.{decision}",
        target=f"review:{item_id}",
        before=before,
        after=after,
    )
    return ReviewOutcome(item, job, changed)


@dataclass(frozen=True, slots=True)
class _Change:
    before: dict[str, Any]
    after: dict[str, Any]
    count: int


def _job_records(session: Session, job: Job, kind: str | None = None) -> list[RecordRow]:
    query = select(RecordRow).where(RecordRow.job_id == job.id, RecordRow.pipeline == job.pipeline)
    if kind is not None:
        query = query.where(RecordRow.kind == kind)
    return list(session.scalars(query.order_by(RecordRow.id)))


def _shown(row: RecordRow, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": row.kind, "key": row.key, "data": dict(row.data if data is None else data)}


def _correct_records(session: Session, job: Job, data: Any) -> _Change:
    """``{"records": [{"kind", "key", "data"}]}``: those records' data replaced, nothing recomputed."""
    corrections = _list_of(data, "records")
    rows = {(row.kind, row.key): row for row in _job_records(session, job)}
    before, after = [], []
    for index, correction in enumerate(corrections):
        where = f"data.records[{index}]"
        if not isinstance(correction, dict) or set(correction) != {"kind", "key", "data"}:
            raise InputError(f"{where}: give exactly kind, key and data")
        if not isinstance(correction["data"], dict):
            raise InputError(f"{where}.data: must be a JSON object")
        row = rows.get((correction["kind"], correction["key"]))
        if row is None:
            raise InputError(
                f"{where}: job {job.id} has no {correction['kind']!r} record with key {correction['key']!r}"
            )
        before.append(_shown(row))
        row.data = dict(correction["data"])
        row.updated_at = utcnow()
        after.append(_shown(row))
    session.flush()
    return _Change({"records": before}, {"records": after}, len(after))


def _list_of(data: Any, name: str) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get(name), list) or not data[name]:
        raise InputError(f"data: a correction is {{{name!r}: [...]}} with at least one item")
    items: list[Any] = data[name]
    return items


def _correct_timecard(session: Session, job: Job, data: Any) -> _Change:
    corrections = _list_of(data, "entries")
    entry_rows = _job_records(session, job, "entry")
    by_key = {row.key: row for row in entry_rows}
    corrected: dict[str, Entry] = {}
    for index, correction in enumerate(corrections):
        where = f"data.entries[{index}]"
        if not isinstance(correction, dict):
            raise InputError(f"{where}: must be a JSON object")
        unknown = sorted(set(correction) - ENTRY_FIELDS)
        if unknown:
            raise InputError(
                f"{where}.{unknown[0]}: not a correctable field ({', '.join(sorted(ENTRY_FIELDS))})"
            )
        source = correction.get("source")
        if not isinstance(source, str) or source not in by_key:
            raise InputError(f"{where}.source: job {job.id} has no entry record {source!r}")
        if source in corrected:
            raise InputError(f"{where}.source: entry {source!r} is corrected twice")
        corrected[source] = _corrected_entry(_stored_entry(by_key[source].data), correction, where)
    entries = [corrected.get(row.key) or _stored_entry(row.data) for row in entry_rows]
    checked = checked_entries(entries, _rule_settings(session, job))
    weeks, findings = checked.weeks, checked.findings

    before_records, after_records = [], []
    for row in entry_rows:
        if row.key in corrected:
            new = entry_record(corrected[row.key]).data
            before_records.append(_shown(row))
            after_records.append(_shown(row, new))
            row.data = new
            row.updated_at = utcnow()
    old_weeks = {row.key: _shown(row) for row in _job_records(session, job, "week")}
    new_weeks = [week_record(week) for week in weeks]
    namespace = entry_rows[0].namespace
    session.execute(delete(RecordRow).where(RecordRow.job_id == job.id, RecordRow.kind == "week"))
    session.flush()
    now = utcnow()
    for record in new_weeks:
        assert record.key is not None
        session.add(
            RecordRow(
                job_id=job.id,
                document_id=job.document_id,
                pipeline=job.pipeline,
                namespace=namespace,
                kind=record.kind,
                key=record.key,
                data=record.data,
                created_at=now,
                updated_at=now,
            )
        )
        shown = {"kind": record.kind, "key": record.key, "data": record.data}
        old = old_weeks.pop(record.key, None)
        if old != shown:
            if old is not None:
                before_records.append(old)
            after_records.append(shown)
    before_records.extend(old_weeks.values())  # weeks no entry falls in any more

    old_rules = dict(Counter(session.scalars(select(FindingRow.rule).where(FindingRow.job_id == job.id))))
    session.execute(delete(FindingRow).where(FindingRow.job_id == job.id))
    write_findings(session, job_id=job.id, findings=findings)
    new_rules = checked.summary["findings_by_rule"]
    job.summary = {**job.summary, **checked.summary, "findings": len(findings)}
    session.flush()
    return _Change(
        {"records": before_records, "findings_by_rule": old_rules},
        {"records": after_records, "findings_by_rule": new_rules},
        len(after_records),
    )


def _rule_settings(session: Session, job: Job) -> RuleSettings:
    """The job's rules as the worker builds them: the ``params.<pipeline>`` setting as it is now,
    overridden by the job's own params."""
    defaults = pipeline_defaults(session, job.pipeline)
    return RuleSettings.of(get_pipeline(job.pipeline).validate_params({**defaults, **job.params}))


def _stored_entry(data: Mapping[str, Any]) -> Entry:
    """An entry as its record keeps it. Hours are stored to 0.01; when the punches give the same
    hours to that precision, the exact punch hours are used, so weeks do not drift by a cent."""
    start = _stored_moment(data.get("start"))
    end = _stored_moment(data.get("end"))
    break_hours = _stored_decimal(data.get("break_hours")) or Decimal(0)
    hours = _stored_decimal(data.get("hours")) or Decimal(0)
    if start is not None and end is not None and end > start:
        exact = clock_hours(end - start) - break_hours
        if abs(exact - hours) < HALF_CENT_HOUR:
            hours = exact
    return Entry(
        employee=str(data.get("employee") or ""),
        date=dt.date.fromisoformat(str(data["date"])),
        start=start,
        end=end,
        hours=hours,
        rate=_stored_decimal(data.get("rate")),
        source=str(data["source"]),
        confidence=float(data.get("confidence", 1.0)),
        break_hours=break_hours,
    )


def _stored_moment(value: Any) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(str(value))


def _stored_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _corrected_entry(entry: Entry, correction: Mapping[str, Any], where: str) -> Entry:
    """The stored entry with the given fields replaced; a reviewer's values have confidence 1."""
    employee = entry.employee
    if "employee" in correction:
        employee = correction["employee"]
        if not isinstance(employee, str) or not employee.strip():
            raise InputError(f"{where}.employee: must be a non-empty name")
        employee = employee.strip()
    date = entry.date
    if "date" in correction:
        date = _date(correction["date"], f"{where}.date")
    shift = dt.timedelta(days=(date - entry.date).days)
    start = entry.start + shift if entry.start is not None else None
    end = entry.end + shift if entry.end is not None else None
    if "start" in correction:
        start = _moment(correction["start"], date, f"{where}.start")
    if "end" in correction:
        end = _moment(correction["end"], date, f"{where}.end")
        # A clock-out given as a time of day at or before the clock-in is on the next day.
        given = correction["end"]
        if end is not None and start is not None and end <= start and _is_time_of_day(given):
            end += dt.timedelta(days=1)
    if start is not None and end is not None and end <= start:
        raise InputError(f"{where}.end: {end.isoformat()} is not after the start {start.isoformat()}")
    hours = entry.hours
    if "hours" in correction:
        hours = _amount(correction["hours"], f"{where}.hours", maximum=Decimal(24 * 7))
    elif ("start" in correction or "end" in correction) and start is not None and end is not None:
        hours = clock_hours(end - start) - entry.break_hours
        if hours < 0:
            raise InputError(f"{where}: the shift is shorter than its {entry.break_hours} hours of break")
    rate = entry.rate
    if "rate" in correction:
        rate = None if correction["rate"] is None else _amount(correction["rate"], f"{where}.rate")
    return Entry(
        employee=employee,
        date=date,
        start=start,
        end=end,
        hours=hours,
        rate=rate,
        source=entry.source,
        confidence=1.0,
        break_hours=entry.break_hours,
    )


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")


def _is_time_of_day(value: str) -> bool:
    return "T" not in value and " " not in value.strip()


def _moment(value: Any, day: dt.date, where: str) -> dt.datetime | None:
    """``null`` (no punch), a time of day on the entry's date, or an ISO date-time."""
    if value is None:
        return None
    moment: dt.datetime | None = None
    if isinstance(value, str):
        text = value.strip()
        try:
            if _is_time_of_day(text):
                moment = dt.datetime.combine(day, dt.time.fromisoformat(text))
            else:
                moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        raise InputError(f"{where}: {value!r} is not a time (HH:MM) or an ISO date-time")
    if moment.tzinfo is not None:
        raise InputError(f"{where}: {value!r} has a time zone; give the local time as on the timecard")
    return moment


def _amount(value: Any, where: str, *, maximum: Decimal | None = None) -> Decimal:
    amount: Decimal | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        raise InputError(f"{where}: {value!r} is not a number")
    if amount < 0 or (maximum is not None and amount > maximum):
        limit = f" up to {maximum}" if maximum is not None else ""
        raise InputError(f"{where}: {value!r} must be a number from 0{limit}")
    return amount
