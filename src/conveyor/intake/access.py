"""API keys and roles, and the audit trail of who changed what."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.errors import Forbidden, InputError, NotFound, Unauthenticated
from conveyor.store.tables import ApiKey, AuditEvent, utcnow

KEY_PREFIX = "cvk_"


class Role(StrEnum):
    """API key roles, each allowed everything the ones before it are."""

    VIEWER = "viewer"
    SUBMITTER = "submitter"
    REVIEWER = "reviewer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    session: Session, *, role: str, name: str | None = None, actor: str = "system"
) -> tuple[ApiKey, str]:
    """A new random key; returns the row and the plaintext, which is shown once and never stored.

    Only the SHA-256 of the key is kept. Keys are 256 random bits, so a fast hash is enough: a slow
    password KDF defends low-entropy secrets against guessing, and nobody can guess 2**256 keys.
    A fast hash also allows a constant-time indexed lookup on every request.
    """
    try:
        checked = Role(role)
    except ValueError:
        roles = ", ".join(Role)
        raise InputError(f"unknown role {role!r}; roles are {roles}") from None
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=(name or f"{checked} key")[:255],
        role=checked.value,
        key_hash=_hash_key(plaintext),
        prefix=plaintext[:12],
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="api_key.create",
        target=f"api_key:{key.id}",
        after={"role": key.role, "name": key.name, "prefix": key.prefix},
    )
    return key, plaintext


def authenticate(session: Session, key: str | None) -> ApiKey:
    if not key:
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
    row = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == _hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        raise Unauthenticated("unknown or revoked API key")
    return row


def authorize(*, role: str, needed: Role) -> None:
    if not Role(role).allows(needed):
        raise Forbidden(f"this action needs the {needed} role; this key is {role}")


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, key_id: int, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record_audit(session, actor=actor, action="api_key.revoke", target=f"api_key:{key_id}")
    session.flush()
    return key


def ensure_admin_key(session: Session) -> str | None:
    """On a fresh installation (no key at all), create an admin key and return it to be shown."""
    if session.scalar(select(func.count()).select_from(ApiKey)):
        return None
    _, plaintext = create_api_key(session, role=Role.ADMIN, name="initial admin")
    return plaintext


def audit_trail(session: Session, *, target: str | None = None, limit: int = 100) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if target is not None:
        query = query.where(AuditEvent.target == target)
    return list(session.scalars(query))


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor=actor[:255],
            action=action,
            target=target[:255],
            before=before,
            after=after,
            at=utcnow(),
        )
    )
    session.flush()
