"""What routes ask for: typed aliases for the app's state, sessions and the caller's identity.

``SessionDep`` is one write transaction per request, committed when the route returns and before
the response is sent (so a client that reads right after a 201 sees what it created), rolled back
if it raises. ``ReadSessionDep`` never takes SQLite's write lock. Authentication uses a read session
of its own, so that an upload does not hold a write transaction while its body streams in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from conveyor import intake, signing
from conveyor.batching.links import Links
from conveyor.intake import Role
from conveyor.settings import Settings
from conveyor.store.blobs import BlobStore
from conveyor.web.metrics import Metrics


@dataclass(frozen=True)
class AppState:
    """Everything the app holds for its requests; kept on ``app.state.conveyor``."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    blobs: BlobStore
    metrics: Metrics
    links: Callable[[], Links]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its API key says (a plain value: no ORM row outlives the auth session)."""

    key_id: int
    name: str
    role: Role
    prefix: str

    @property
    def actor(self) -> str:
        """How audit events name the caller."""
        return f"{self.name} ({self.prefix}…)"


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in the
# thread pool, and a hop there per dependency per request was a measurable share of an upload.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.conveyor
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_blobs(state: StateDep) -> BlobStore:
    return state.blobs


async def get_engine(state: StateDep) -> Engine:
    return state.engine


def get_session(state: StateDep) -> Iterator[Session]:
    with state.sessions.begin() as session:
        yield session


def get_read_session(state: StateDep) -> Iterator[Session]:
    with state.read_sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]

bearer = HTTPBearer(auto_error=False, description="An API key: Authorization: Bearer cvk_...")


def get_principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    with state.read_sessions() as session:
        key = intake.authenticate(session, token)
        return Principal(key.id, key.name, Role(key.role), key.prefix)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(needed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, if its role allows ``needed`` (403 otherwise)."""

    async def check(principal: PrincipalDep) -> Principal:
        intake.authorize(role=principal.role, needed=needed)
        return principal

    return check


ViewerDep = Annotated[Principal, Depends(require(Role.VIEWER))]
SubmitterDep = Annotated[Principal, Depends(require(Role.SUBMITTER))]
ReviewerDep = Annotated[Principal, Depends(require(Role.REVIEWER))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def signed_or_viewer(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """A download that a signed link opens without a key (reports opened in Excel, forwarded mail)
    or a viewer key opens as usual; returns who it was, for the logs."""
    query = request.query_params
    if "signature" in query or "expires" in query:
        signing.verify(
            request.url.path,
            expires=query.get("expires"),
            signature=query.get("signature"),
            secret=state.links().secret,
            now=time.time(),
        )
        return "signed link"
    principal = get_principal(state, credentials)
    intake.authorize(role=principal.role, needed=Role.VIEWER)
    return principal.actor


SignedOrViewerDep = Annotated[str, Depends(signed_or_viewer)]
