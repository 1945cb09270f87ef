"""The migrations build exactly the schema the models describe, on both databases, and go both ways."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from conveyor.store import migrate
from conveyor.store.database import create_database_engine
from conveyor.store.tables import Base


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    engine = create_database_engine(database_url)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
        connection.commit()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    engine.dispose()
