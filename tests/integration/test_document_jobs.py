"""``document`` jobs run by a real worker on SQLite and PostgreSQL: pages come back in page order
(PostgreSQL's merge inserts in key order, where "10" sorts before "2"), code texts with a NUL byte
land, and a PDF password is never shown by the API."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import segno
from PIL import Image

from conveyor import intake
from conveyor.settings import Settings
from conveyor.web.schemas import JobOut
from conveyor.worker import WorkerProcess
from tests.documents import png_bytes, text_pdf
from tests.integration.conftest import Store


def run_jobs(database_url: str, tmp_path: Path) -> int:
    settings = Settings(
        database_url=database_url,
        storage_url=f"file://{tmp_path / 'blobs'}",
        data_dir=tmp_path,
        parse_workers=2,
    )
    return WorkerProcess(settings).run(idle_exit=True)


def submit(store: Store, data: bytes, filename: str, params: dict[str, object] | None = None) -> int:
    with store.sessions.begin() as session:
        job = intake.submit_document(
            session,
            store.blobs,
            stream_or_blob=io.BytesIO(data),
            filename=filename,
            pipeline="document",
            params=params,
        )
        return job.id


def test_twelve_pages_come_back_in_page_order(store: Store, database_url: str, tmp_path: Path) -> None:
    pages = [[f"This is page {number}"] for number in range(1, 13)]
    job_id = submit(store, text_pdf(pages, qr_on_page={10: "TEN", 2: "TWO"}), "twelve.pdf")
    assert run_jobs(database_url, tmp_path) == 1
    with store.sessions() as session:
        job = intake.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        view = intake.get_document(session, document_id=job.document_id)  # type: ignore[arg-type]
        assert [row.data["page"] for row in view.pages] == list(range(1, 13))
        assert [row.data["text"].strip() for row in view.pages] == [line for [line] in pages]
        assert [(row.data["page"], row.data["text"]) for row in view.codes] == [(2, "TWO"), (10, "TEN")]


def test_a_code_with_a_nul_byte_lands_with_its_exact_bytes(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    payload = b"ab\x00cd"
    buffer = io.BytesIO()
    segno.make_qr(payload, error="m").save(buffer, kind="png", scale=8, border=4)
    buffer.seek(0)
    job_id = submit(store, png_bytes(Image.open(buffer).convert("L")), "nul.png", {"ocr": "never"})
    run_jobs(database_url, tmp_path)
    with store.sessions() as session:
        job = intake.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        [code] = intake.get_document(session, document_id=job.document_id).codes  # type: ignore[arg-type]
    assert code.data["text"] == "ab\ufffdcd"
    assert base64.b64decode(code.data["bytes"]) == payload


def test_the_password_param_is_kept_for_the_worker_but_never_shown(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.text(20, 20, "locked text")
    document.set_encryption(owner_password="owner", user_password="s3cret")
    job_id = submit(store, bytes(document.output()), "locked.pdf", {"password": "s3cret"})
    run_jobs(database_url, tmp_path)
    with store.sessions() as session:
        job = intake.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        shown = JobOut.model_validate(job)
        view = intake.get_document(session, document_id=job.document_id)  # type: ignore[arg-type]
    assert shown.params["password"] == "********"
    assert "s3cret" not in shown.model_dump_json()
    assert view.pages[0].data["text"].strip() == "locked text"


def test_pipeline_defaults_come_from_the_params_setting(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    """``params.timecard`` sets every timecard job's rules; a job's own params still win; a bad
    value is refused naming the setting and the param."""
    import datetime as dt

    import pytest

    from conveyor.errors import InputError
    from tests.sheets import xlsx_bytes

    with store.sessions.begin() as session:
        intake.put_setting(
            session, key="params.timecard", value={"overtime_threshold_hours": 44}, actor="ops"
        )
        with pytest.raises(InputError, match=r"setting 'params\.timecard': param 'workweek_start'"):
            intake.put_setting(
                session, key="params.timecard", value={"workweek_start": "someday"}, actor="ops"
            )
        with pytest.raises(InputError, match="unknown pipeline 'nope'"):
            intake.put_setting(session, key="params.nope", value={}, actor="ops")
    rows: list[list[object]] = [["Employee", "Date", "Time In", "Time Out", "Rate"]]
    for day in range(4, 9):  # Monday 4 March 2024 to Friday, nine hours a day
        rows.append(["Ada", dt.date(2024, 3, day), dt.time(8), dt.time(17), 12])
    card = xlsx_bytes({"Week": rows})
    with store.sessions.begin() as session:
        default_job = intake.submit_document(
            session, store.blobs, stream_or_blob=io.BytesIO(card), filename="a.xlsx", pipeline="timecard"
        ).id
        own_job = intake.submit_document(
            session,
            store.blobs,
            stream_or_blob=io.BytesIO(card),
            filename="b.xlsx",
            pipeline="timecard",
            params={"overtime_threshold_hours": 40},
        ).id
    run_jobs(database_url, tmp_path)
    with store.sessions() as session:
        weeks = {}
        for job_id in (default_job, own_job):
            job = intake.get_job(session, job_id=job_id)
            assert job.status == "succeeded", job.error
            [week] = [
                row.data for row in intake.job_records(session, job_id=job_id).items if row.kind == "week"
            ]
            weeks[job_id] = (week["regular_hours"], week["overtime_hours"])
    assert weeks == {default_job: (44.0, 1.0), own_job: (40.0, 5.0)}


def test_a_share_of_jobs_without_findings_is_sampled_into_review(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    import pytest

    from conveyor.errors import InputError

    with store.sessions.begin() as session:
        with pytest.raises(InputError, match="must be a share from 0 to 1"):
            intake.put_setting(session, key="review.sample_rate.document", value=1.5, actor="ops")
        intake.put_setting(session, key="review.sample_rate.document", value=1, actor="ops")
    sampled = submit(store, text_pdf([["checked by a person"]]), "sampled.pdf")
    run_jobs(database_url, tmp_path)
    with store.sessions.begin() as session:
        intake.put_setting(session, key="review.sample_rate.document", value=0, actor="ops")
    unsampled = submit(store, text_pdf([["not sampled"]]), "unsampled.pdf")
    run_jobs(database_url, tmp_path)
    with store.sessions() as session:
        first = intake.get_job(session, job_id=sampled)
        second = intake.get_job(session, job_id=unsampled)
        queue = intake.review_queue(session, pipeline="document").items
    assert (first.status, first.review_status) == ("succeeded", "pending")
    assert (second.status, second.review_status) == ("succeeded", "none")
    assert [(item.job_id, item.reasons["reasons"]) for item in queue] == [(sampled, ["quality_sample"])]
