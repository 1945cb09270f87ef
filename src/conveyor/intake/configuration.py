"""Database settings (shared by every process), each change audited; and the readiness check.

A settings row stores ``{"value": <any JSON>}`` so that a setting may be a number, a string or a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from conveyor import retention
from conveyor.errors import ConveyorError, InputError, NotFound
from conveyor.intake.access import record_audit
from conveyor.pipelines import get_pipeline
from conveyor.processing import PARAMS_SETTING_PREFIX, SAMPLE_RATE_SETTING_PREFIX
from conveyor.store import migrate
from conveyor.store.blobs import BlobStore
from conveyor.store.tables import SettingRow, utcnow

# Conveyor's own secrets (the link-signing key): never shown or changed through the API.
HIDDEN_PREFIX = "secret."


def list_settings(session: Session) -> list[SettingRow]:
    rows = session.scalars(select(SettingRow).order_by(SettingRow.key))
    return [row for row in rows if not row.key.startswith(HIDDEN_PREFIX)]


def get_setting(session: Session, *, key: str) -> SettingRow:
    row = None if key.startswith(HIDDEN_PREFIX) else session.get(SettingRow, key)
    if row is None:
        raise NotFound(f"setting {key!r} not found")
    return row


def validate_setting(key: str, value: Any) -> Any:
    """Known keys are checked by their own schema; unknown keys take any JSON value.

    ``params.<pipeline>`` holds default params for every job of that pipeline (a job's own params
    win), checked by the pipeline itself: ``params.timecard`` = ``{"workweek_start": "monday"}``.
    """
    if not key or len(key) > 255:
        raise InputError("a setting key must be 1 to 255 characters")
    if key.startswith(HIDDEN_PREFIX):
        raise InputError(f"setting {key!r}: keys starting with {HIDDEN_PREFIX!r} are kept by Conveyor itself")
    if key.startswith(PARAMS_SETTING_PREFIX):
        return _pipeline_defaults(key, value)
    if key.startswith(SAMPLE_RATE_SETTING_PREFIX):
        get_pipeline(key[len(SAMPLE_RATE_SETTING_PREFIX) :])
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InputError(f"setting {key!r} must be a share from 0 to 1, not {value!r}")
    if key.startswith(retention.SETTING_PREFIX):
        if not key[len(retention.SETTING_PREFIX) :]:
            raise InputError(f"setting {key!r}: name the pipeline, as in retention.records")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"setting {key!r} must be a positive whole number of days, not {value!r}")
    return value


def _pipeline_defaults(key: str, value: Any) -> Any:
    pipeline = get_pipeline(key[len(PARAMS_SETTING_PREFIX) :])
    if not isinstance(value, dict):
        raise InputError(f"setting {key!r} must be an object of {pipeline.name} params, not {value!r}")
    try:
        pipeline.validate_params(value)
    except InputError as error:
        raise InputError(f"setting {key!r}: {error}") from None
    return value


def put_setting(session: Session, *, key: str, value: Any, actor: str) -> SettingRow:
    """Create or change a setting; every change is an audit event with its before and after."""
    value = validate_setting(key, value)
    row = session.get(SettingRow, key, with_for_update=True)
    before = None if row is None else dict(row.value)
    if row is None:
        row = SettingRow(key=key, value={"value": value})
        session.add(row)
    else:
        row.value = {"value": value}
    row.updated_by = actor[:255]
    row.updated_at = utcnow()
    session.flush()
    record_audit(session, actor=actor, action="setting.put", target=key, before=before, after=row.value)
    return row


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]

    @property
    def is_ready(self) -> bool:
        return all(value == "ok" for value in self.checks.values())


def check_readiness(*, engine: Engine, blobs: BlobStore) -> Readiness:
    """Database reachable, migrations at head, blob store reachable; each check says why not.

    The probe only reads, so on SQLite it uses a plain ``BEGIN``: a long write holding the write
    lock must not make the process look dead to its orchestrator.
    """
    checks: dict[str, str] = {}
    reader = engine.execution_options(read_only=True)
    try:
        with reader.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrate.is_current(reader) else "not at head"
    except (SQLAlchemyError, OSError) as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
        checks["migrations"] = "unknown"
    try:
        blobs.ping()
        checks["storage"] = "ok"
    except ConveyorError as error:
        checks["storage"] = f"unreachable: {error.message}"
    return Readiness(checks)
