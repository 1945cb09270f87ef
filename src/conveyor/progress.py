"""Job and batch events: written in the caller's transaction, read back in id order.

Ids grow monotonically, so a client that reconnects asks for everything after the last id it saw.
On PostgreSQL every write also NOTIFYs ``conveyor_events``, so streaming edges need not poll.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from conveyor.store.tables import Event, utcnow

EVENT_TYPES = ("STARTED", "PROGRESS", "MATCH_FOUND", "REVIEW_REQUIRED", "COMPLETE", "ERROR")
NOTIFY_CHANNEL = "conveyor_events"


def record_event(
    session: Session,
    *,
    type: str,
    job_id: int | None = None,
    batch_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    event = Event(type=type, job_id=job_id, batch_id=batch_id, data=data or {}, at=utcnow())
    session.add(event)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return event


def record_error(
    session: Session,
    *,
    job_id: int,
    batch_id: int | None = None,
    message: str,
    code: str,
    **extra: Any,
) -> Event:
    """The ERROR event that tells watchers a job ended (or will retry) without a result."""
    return record_event(
        session,
        type="ERROR",
        job_id=job_id,
        batch_id=batch_id,
        data={"message": message, "code": code, **extra},
    )


def events_since(
    session: Session,
    *,
    job_id: int | None = None,
    batch_id: int | None = None,
    since: int = 0,
    limit: int = 1000,
) -> list[Event]:
    query = select(Event).where(Event.id > since).order_by(Event.id).limit(limit)
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    if batch_id is not None:
        query = query.where(Event.batch_id == batch_id)
    return list(session.scalars(query))


def as_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "job_id": event.job_id,
        "batch_id": event.batch_id,
        "at": event.at.isoformat(),
        **event.data,
    }
