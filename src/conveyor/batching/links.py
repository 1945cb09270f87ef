"""Signed, expiring download links for a batch's report and files, so a report opened in Excel (or
forwarded by mail) can fetch a drawing without an API key, for a while only.

The secret is ``CONVEYOR_LINK_SECRET`` when set; otherwise one random secret is made on first use
and kept in the settings table under ``secret.links`` (hidden from the settings API), so every
process of a deployment signs and checks with the same one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from conveyor import signing
from conveyor.settings import Settings
from conveyor.store.tables import SettingRow, utcnow

SECRET_SETTING: Final = "secret.links"


def link_secret(session: Session, configured: str | None) -> bytes:
    """The configured secret, else the stored one, made now if there is none yet."""
    if configured:
        return configured.encode()
    row = session.get(SettingRow, SECRET_SETTING)
    if row is None:
        # Two processes may make one at once: the first insert wins, both read the winner's.
        insert = postgres_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        value = {"value": signing.new_secret().hex()}
        session.execute(
            insert(SettingRow)
            .values(key=SECRET_SETTING, value=value, updated_by="conveyor", updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = session.get(SettingRow, SECRET_SETTING, populate_existing=True)
        assert row is not None
    return bytes.fromhex(str(row.value["value"]))


@dataclass(frozen=True, slots=True)
class Links:
    """Makes links valid for ``seconds`` from now, rooted at ``base_url`` (the API as users reach it)."""

    secret: bytes
    seconds: int
    base_url: str

    def file(self, batch_id: int, file_id: int) -> str:
        return self._signed(f"/api/batches/{batch_id}/files/{file_id}")

    def report(self, batch_id: int, format: str = "xlsx") -> str:
        signed = self._signed(f"/api/batches/{batch_id}/report")
        return f"{signed}&format={format}"

    def _signed(self, path: str) -> str:
        expires_at = int(time.time()) + self.seconds
        return self.base_url.rstrip("/") + signing.sign(path, secret=self.secret, expires_at=expires_at)


def batch_links(sessions: sessionmaker[Session], settings: Settings) -> Links:
    """The signer of batch download links (its secret read, or made, once per process)."""
    configured = settings.link_secret.get_secret_value() if settings.link_secret else None
    with sessions.begin() as session:
        secret = link_secret(session, configured)
    return Links(secret=secret, seconds=settings.link_seconds, base_url=settings.public_url)
