"""Batches through the real app and worker, on SQLite and PostgreSQL: a zip of generated drawings
and a target list in, exact counters, the events in order, a report whose links open the drawings;
folders only under an allowed root; unsafe names refused; a cancelled batch stops; a chunk run twice
counts its files once."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select, update

from conveyor.settings import Settings
from conveyor.store.database import create_database_engine, session_factory
from conveyor.store.tables import BatchFile, Job
from conveyor.worker import WorkerProcess
from tests.drawings import corrupt_pdf, drawing_pdf, targets_xlsx, zipped
from tests.support import AppClient, dispose_app, keyed_app, s3_client

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DRAWINGS = {
    "area-1/D-001.pdf": drawing_pdf(["HOLE-101", "HOLE-102"]),
    "area-1/D-002.pdf": drawing_pdf(["HOLE-103"], split=["HOLE-103"]),
    "area-2/D-003.pdf": drawing_pdf(["HOLE-900"]),
    "area-2/D-004.pdf": drawing_pdf([]),
    "area-2/broken.pdf": corrupt_pdf(),
}
TARGETS = ["HOLE-101", "HOLE-103", "HOLE-777"]


@dataclass
class Api:
    client: AppClient
    settings: Settings
    headers: dict[str, str]

    def start(self, files: dict[str, tuple[str, bytes, str]], **fields: str) -> httpx.Response:
        if not files:  # a folder or prefix: a JSON body
            return self.client.post("/api/batches", headers=self.headers, json=fields)
        return self.client.post("/api/batches", headers=self.headers, files=files, data=fields)

    def run(self) -> int:
        return WorkerProcess(self.settings).run(idle_exit=True)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers, **options)

    def close(self) -> None:
        dispose_app(self.client)

    def events(self, batch_id: int) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/events?batch={batch_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return [
            orjson.loads(line.removeprefix("data: "))
            for line in response.text.splitlines()
            if line.startswith("data: ")
        ]


def api_for(settings: Settings) -> Api:
    """The app on a migrated database, with an admin key."""
    client, headers = keyed_app(settings, "admin")
    return Api(client, settings, headers["admin"])


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    root = tmp_path / "drawings"
    root.mkdir()
    settings = Settings(
        database_url=database_url,
        storage_url=f"file://{tmp_path / 'blobs'}",
        data_dir=tmp_path,
        batch_roots=[root],
        batch_chunk_size=2,
        public_url="http://conveyor.test",
    )
    api = api_for(settings)
    yield api
    api.close()


def test_a_zip_batch_end_to_end(api: Api) -> None:
    response = api.start(
        {
            "file": ("drawings.zip", zipped(DRAWINGS), "application/zip"),
            "targets": ("holes.xlsx", targets_xlsx(TARGETS), XLSX),
        },
        ocr="false",
    )
    assert response.status_code == 201, response.text
    batch = response.json()
    shown = (batch["total"], batch["status"], batch["targets"], batch["source"])
    assert shown == (5, "running", 3, "zip:drawings.zip")
    assert api.get(f"/api/batches/{batch['id']}/report").status_code == 409  # not yet

    assert api.run() == 4  # three chunks of two files or fewer, then the report job
    done = api.get(f"/api/batches/{batch['id']}").json()
    assert (done["status"], done["processed"], done["failed"], done["matches"]) == ("completed", 4, 1, 2)

    events = api.events(batch["id"])
    kinds = [event["type"] for event in events]
    assert kinds[0] == "STARTED" and kinds[-1] == "COMPLETE"
    assert [event["id"] for event in events] == sorted(event["id"] for event in events)
    found = [event["data"] for event in events if event["type"] == "MATCH_FOUND"]
    matched = {(match["code"], data["file"]) for data in found for match in data["matches"]}
    assert matched == {("HOLE-101", "area-1/D-001.pdf"), ("HOLE-103", "area-1/D-002.pdf")}
    [error] = [event for event in events if event["type"] == "ERROR"]
    assert error["file"] == "area-2/broken.pdf" and "broken.pdf" in error["message"]
    assert "PROGRESS" in kinds and events[-1]["processed"] == 4 and events[-1]["failed"] == 1
    download = events[-1]["download_url"]
    assert download.startswith(f"http://conveyor.test/api/batches/{batch['id']}/report?expires=")

    # The signed link opens the report without a key; the report's links open the drawings.
    signed = urlsplit(download)
    report = api.client.get(f"{signed.path}?{signed.query}")
    assert report.status_code == 200, report.text
    book = CalamineWorkbook.from_filelike(io.BytesIO(report.content))
    assert book.sheet_names == ["Summary", "Matches", "Files", "Unmatched targets"]
    matches = book.get_sheet_by_name("Matches").to_python()
    assert matches[0][:4] == ["code", "file", "page", "link"]
    assert sorted((row[0], row[1], row[2]) for row in matches[1:]) == [
        ("HOLE-101", "area-1/D-001.pdf", 1),
        ("HOLE-103", "area-1/D-002.pdf", 1),
    ]
    assert book.get_sheet_by_name("Unmatched targets").to_python()[1:] == [["HOLE-777"]]
    files = {row[0]: row for row in book.get_sheet_by_name("Files").to_python()[1:]}
    assert files["area-2/broken.pdf"][1] == "failed" and "broken.pdf" in str(files["area-2/broken.pdf"][3])
    assert files["area-1/D-001.pdf"][1] == "2 codes" and files["area-2/D-004.pdf"][1] == "no code"
    with zipfile.ZipFile(io.BytesIO(report.content)) as archive:
        rels = archive.read("xl/worksheets/_rels/sheet2.xml.rels").decode()
    link = rels.split('Target="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    file_link = urlsplit(link)
    drawing = api.client.get(f"{file_link.path}?{file_link.query}")
    assert drawing.status_code == 200
    assert drawing.content in (DRAWINGS["area-1/D-001.pdf"], DRAWINGS["area-1/D-002.pdf"])
    tampered = api.client.get(f"{file_link.path}?{file_link.query.replace('expires=', 'expires=9')}")
    assert tampered.status_code == 403
    assert api.client.get(file_link.path).status_code == 401  # no key, no signature


def test_a_chunk_run_twice_counts_its_files_once(api: Api) -> None:
    members = {f"D-{number:03d}.pdf": drawing_pdf([f"HOLE-{number}"]) for number in range(4)}
    response = api.start({"file": ("d.zip", zipped(members), "application/zip")}, ocr="false")
    batch_id = response.json()["id"]
    engine = create_database_engine(api.settings.resolved_database_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        first_chunk = session.scalars(select(Job.id).where(Job.batch_id == batch_id).order_by(Job.id)).first()
    assert WorkerProcess(api.settings).run(idle_exit=True, max_jobs=1) == 1
    with sessions.begin() as session:  # as if its worker died after settling: the chunk runs again
        session.execute(update(Job).where(Job.id == first_chunk).values(status="queued", worker_id=None))
    api.run()
    with sessions() as session:
        statuses = session.scalars(select(BatchFile.status).where(BatchFile.batch_id == batch_id)).all()
        is_report = Job.pipeline == "batch-report"
        reports = session.scalars(select(Job.id).where(Job.batch_id == batch_id, is_report)).all()
    engine.dispose()
    done = api.get(f"/api/batches/{batch_id}").json()
    assert (done["status"], done["processed"], done["failed"], done["total"]) == ("completed", 4, 0, 4)
    assert sorted(statuses) == ["succeeded"] * 4 and len(reports) == 1
    completes = [event for event in api.events(batch_id) if event["type"] == "COMPLETE"]
    assert len(completes) == 1


def test_folders_only_under_an_allowed_root(api: Api, tmp_path: Path) -> None:
    root = api.settings.batch_roots[0]
    (root / "plant").mkdir()
    (root / "plant" / "D-1.pdf").write_bytes(drawing_pdf(["HOLE-1"]))
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(drawing_pdf(["HOLE-2"]))

    ok = api.start({}, folder=str(root / "plant"), ocr="false")
    assert ok.status_code == 201 and ok.json()["total"] == 1
    for folder, problem in [
        (str(outside), "not under an allowed root"),
        (f"{root}/plant/../../private", "'..' is not allowed"),
        ("/etc", "not under an allowed root"),
    ]:
        refused = api.start({}, folder=folder)
        assert refused.status_code == 422 and problem in refused.json()["error"]["message"], refused.text
    (root / "plant" / "escape.pdf").symlink_to(outside / "secret.pdf")
    refused = api.start({}, folder=str(root / "plant"))
    assert refused.status_code == 422 and "a symlink out of the allowed root" in refused.text
    (root / "plant" / "escape.pdf").unlink()
    (root / "plant" / "linked").symlink_to(outside)
    refused = api.start({}, folder=str(root / "plant"))
    assert refused.status_code == 422 and "a symlink out of the allowed root" in refused.text


@pytest.mark.parametrize("member", ["../../etc/passwd", "/etc/passwd", "a/../../b.pdf", "C:\\x.pdf"])
def test_unsafe_zip_members_refuse_the_batch(api: Api, member: str) -> None:
    response = api.start(
        {
            "file": (
                "evil.zip",
                zipped({"ok.pdf": drawing_pdf(["HOLE-1"]), member: b"%PDF"}),
                "application/zip",
            )
        }
    )
    message = response.json()["error"]["message"]
    assert response.status_code == 422 and f"evil.zip:{member}: " in message
    assert "absolute or climbs out of the archive" in message


def test_a_cancelled_batch_stops_and_makes_no_report(api: Api) -> None:
    members = {f"D-{number}.pdf": drawing_pdf([f"HOLE-{number}"]) for number in range(6)}
    batch_id = api.start({"file": ("d.zip", zipped(members), "application/zip")}, ocr="false").json()["id"]
    WorkerProcess(api.settings).run(idle_exit=True, max_jobs=1)
    cancelled = api.client.post(f"/api/batches/{batch_id}/cancel", headers=api.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    api.run()
    done = api.get(f"/api/batches/{batch_id}").json()
    assert (done["status"], done["processed"]) == ("cancelled", 2)
    assert api.get(f"/api/batches/{batch_id}/report").status_code == 409
    assert api.events(batch_id)[-1]["code"] == "cancelled"
    assert api.client.post(f"/api/batches/{batch_id}/cancel", headers=api.headers).status_code == 409


def test_bad_requests_name_the_problem(api: Api) -> None:
    both = api.start({"file": ("d.zip", zipped({"a.pdf": b"x"}), "application/zip")}, folder="/x")
    assert both.status_code == 422 and "exactly one of" in both.text
    pattern = api.start({"file": ("d.zip", zipped({"a.pdf": b"x"}), "application/zip")}, pattern="(")
    assert pattern.status_code == 422 and "pattern" in pattern.text
    empty = api.start({"file": ("d.zip", zipped({}), "application/zip")})
    assert empty.status_code == 422 and "no files" in empty.text
    assert api.get("/api/batches/999999").status_code == 404


def test_without_targets_every_code_found_is_reported(api: Api) -> None:
    members = {
        "a.pdf": drawing_pdf(["HOLE-1", "HOLE-2"]),
        "b.pdf": drawing_pdf([]),
        "c.pdf": drawing_pdf(["HOLE-3"]),
    }
    batch_id = api.start({"file": ("d.zip", zipped(members), "application/zip")}, ocr="false").json()["id"]
    api.run()
    done = api.get(f"/api/batches/{batch_id}").json()
    assert (done["status"], done["processed"], done["matches"], done["targets"]) == ("completed", 3, 3, 0)
    found = [event["data"] for event in api.events(batch_id) if event["type"] == "MATCH_FOUND"]
    assert sorted(
        (data["file"], match["code"], match["kind"]) for data in found for match in data["matches"]
    ) == [
        ("a.pdf", "HOLE-1", "found"),
        ("a.pdf", "HOLE-2", "found"),
        ("c.pdf", "HOLE-3", "found"),
    ]
    report = api.get(f"/api/batches/{batch_id}/report", params={"format": "json"}).json()
    assert sorted(match["code"] for match in report["matches"]) == ["HOLE-1", "HOLE-2", "HOLE-3"]
    assert report["unmatched_targets"] == []


def test_a_chunk_cancelled_on_its_own_fails_its_files_and_the_batch_completes(api: Api) -> None:
    members = {f"D-{number}.pdf": drawing_pdf([f"HOLE-{number}"]) for number in range(4)}
    batch_id = api.start({"file": ("d.zip", zipped(members), "application/zip")}, ocr="false").json()["id"]
    jobs = api.get("/api/jobs", params={"limit": 100}).json()["items"]
    [second, _first] = [job["id"] for job in jobs if job["batch_id"] == batch_id]
    assert api.client.post(f"/api/jobs/{second}/cancel", headers=api.headers).status_code == 200
    api.run()  # the worker's sweep settles the cancelled chunk's files; the other chunk runs
    done = api.get(f"/api/batches/{batch_id}").json()
    assert (done["status"], done["processed"], done["failed"]) == ("completed", 2, 2)
    events = api.events(batch_id)
    assert events[-1]["type"] == "COMPLETE" and not any(event.get("code") == "cancelled" for event in events)
    failed = [event for event in events if event["type"] == "ERROR"]
    assert len(failed) == 2 and all(
        "its job ended without scanning it" in event["message"] for event in failed
    )


def test_a_prefix_batch_reads_the_bucket(
    database_url: str, tmp_path: Path, moto_server: str, s3_bucket: str, s3_env: str
) -> None:
    """``s3://bucket/prefix`` on a real (moto) S3 server: every object under the prefix is stored
    and scanned; another bucket is refused."""
    client = s3_client(moto_server)
    for number in range(3):
        client.put_object(
            Bucket=s3_bucket, Key=f"drawings/D-{number}.pdf", Body=drawing_pdf([f"HOLE-{number}"])
        )
    client.put_object(Bucket=s3_bucket, Key="elsewhere/X.pdf", Body=drawing_pdf(["HOLE-9"]))
    settings = Settings(
        database_url=database_url,
        storage_url=f"s3://{s3_bucket}/store",
        s3_endpoint_url=moto_server,
        data_dir=tmp_path,
    )
    api = api_for(settings)
    response = api.start({}, prefix=f"s3://{s3_bucket}/drawings/", ocr="false")
    assert response.status_code == 201, response.text
    assert response.json()["total"] == 3
    api.run()
    done = api.get(f"/api/batches/{response.json()['id']}").json()
    assert (done["status"], done["processed"], done["matches"]) == ("completed", 3, 3)
    refused = api.start({}, prefix="s3://someone-elses-bucket/x/")
    assert refused.status_code == 422 and "CONVEYOR_S3_REFERENCE_BUCKETS" in refused.text
    api.close()
