"""Writing records: upsert by natural key within a namespace, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conveyor.content import Record
from conveyor.errors import InputError
from conveyor.store.results import write_records
from conveyor.store.tables import RecordRow


def _write(
    sessions: sessionmaker[Session], job_id: int, records: list[Record], namespace: str = "orders"
) -> int:
    with sessions.begin() as session:
        return write_records(
            session,
            records=iter(records),
            job_id=job_id,
            document_id=None,
            pipeline="records",
            namespace=namespace,
        )


def _rows(sessions: sessionmaker[Session]) -> dict[tuple[str, str], tuple[int, object]]:
    with sessions() as session:
        rows = session.execute(select(RecordRow.namespace, RecordRow.key, RecordRow.job_id, RecordRow.data))
        return {(ns, key): (job, data) for ns, key, job, data in rows}


def test_a_later_file_replaces_the_earlier_version_of_a_key(sessions: sessionmaker[Session]) -> None:
    _write(sessions, 1, [Record("record", {"id": 1, "v": "old"}, "1"), Record("record", {"id": 2}, "2")])
    _write(sessions, 2, [Record("record", {"id": 1, "v": "new"}, "1")])
    _write(sessions, 3, [Record("record", {"id": 1, "v": "other"}, "1")], namespace="invoices")
    rows = _rows(sessions)
    assert rows[("orders", "1")] == (2, {"id": 1, "v": "new"})
    assert rows[("orders", "2")] == (1, {"id": 2})
    assert rows[("invoices", "1")] == (3, {"id": 1, "v": "other"})
    assert len(rows) == 3


def test_within_one_file_the_last_version_of_a_key_wins(sessions: sessionmaker[Session]) -> None:
    _write(
        sessions, 1, [Record("record", {"v": n}, "k") for n in range(5)] + [Record("record", {"v": "x"}, "y")]
    )
    rows = _rows(sessions)
    assert rows[("orders", "k")] == (1, {"v": 4})
    assert len(rows) == 2


def test_many_records_stream_through_in_batches(sessions: sessionmaker[Session]) -> None:
    count = 12_345  # more than one batch
    written = _write(
        sessions, 1, [Record("record", {"n": n, "nested": {"a": [n]}}, str(n)) for n in range(count)]
    )
    assert written == count
    assert len(_rows(sessions)) == count


def test_nul_characters_are_refused_but_the_escaped_text_is_not(sessions: sessionmaker[Session]) -> None:
    _write(sessions, 1, [Record("record", {"path": "C:\\u0000dir"}, "text")])
    assert _rows(sessions)[("orders", "text")][1] == {"path": "C:\\u0000dir"}
    with pytest.raises(InputError, match="NUL"):
        _write(sessions, 2, [Record("record", {"name": "a\x00b"}, "nul")])
    with pytest.raises(InputError, match="NUL"):
        _write(sessions, 3, [Record("record", {"name": "\\\x00"}, "nul")])
