"""``/api/keys``: API keys (admin). A new key is shown once, in the response that creates it."""

from __future__ import annotations

from fastapi import APIRouter

from conveyor import intake
from conveyor.web.dependencies import AdminDep, ReadSessionDep, SessionDep
from conveyor.web.schemas import ApiKeyCreatedOut, ApiKeyIn, ApiKeyListOut, ApiKeyOut

router = APIRouter(prefix="/api/keys", tags=["keys"])


@router.post("", status_code=201)
def create_key(body: ApiKeyIn, principal: AdminDep, session: SessionDep) -> ApiKeyCreatedOut:
    key, plaintext = intake.create_api_key(session, role=body.role, name=body.name, actor=principal.actor)
    return ApiKeyCreatedOut.model_validate({**ApiKeyOut.model_validate(key).model_dump(), "key": plaintext})


@router.get("")
def list_keys(_principal: AdminDep, session: ReadSessionDep) -> ApiKeyListOut:
    return ApiKeyListOut(items=[ApiKeyOut.model_validate(key) for key in intake.list_api_keys(session)])


@router.delete("/{key_id}")
def revoke_key(key_id: int, principal: AdminDep, session: SessionDep) -> ApiKeyOut:
    """Revoke a key: it stops working at once."""
    return ApiKeyOut.model_validate(intake.revoke_api_key(session, key_id=key_id, actor=principal.actor))
