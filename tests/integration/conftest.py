"""Fixtures for tests against a migrated database (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store import migrate
from conveyor.store.blobs import LocalBlobStore
from conveyor.store.database import create_database_engine, session_factory


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database, migrated to head."""
    engine = create_database_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@dataclass
class Store:
    """A migrated database and a local blob folder: what the use cases need."""

    sessions: sessionmaker[Session]
    blobs: LocalBlobStore


@pytest.fixture
def store(sessions: sessionmaker[Session], tmp_path: Path) -> Store:
    return Store(sessions, LocalBlobStore(tmp_path / "blobs"))
