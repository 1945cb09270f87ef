"""``/api/settings``: database settings shared by every process; each change is audited."""

from __future__ import annotations

from fastapi import APIRouter

from conveyor import intake
from conveyor.web.dependencies import AdminDep, ReadSessionDep, SessionDep
from conveyor.web.schemas import SettingIn, SettingListOut, SettingOut, SettingValueIn

router = APIRouter(prefix="/api/settings", tags=["settings"])


@router.get("")
def list_settings(_principal: AdminDep, session: ReadSessionDep) -> SettingListOut:
    return SettingListOut(items=[SettingOut.from_row(row) for row in intake.list_settings(session)])


@router.post("")
def post_setting(body: SettingIn, principal: AdminDep, session: SessionDep) -> SettingOut:
    """Create or change one setting (``retention.<pipeline>``: a positive number of days)."""
    row = intake.put_setting(session, key=body.key, value=body.value, actor=principal.actor)
    return SettingOut.from_row(row)


@router.get("/{key}")
def get_setting(key: str, _principal: AdminDep, session: ReadSessionDep) -> SettingOut:
    return SettingOut.from_row(intake.get_setting(session, key=key))


@router.put("/{key}")
def put_setting(key: str, body: SettingValueIn, principal: AdminDep, session: SessionDep) -> SettingOut:
    row = intake.put_setting(session, key=key, value=body.value, actor=principal.actor)
    return SettingOut.from_row(row)
