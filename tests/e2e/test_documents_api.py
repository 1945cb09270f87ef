"""The ``document`` pipeline through a real server: upload a scan and a text PDF, submit a PDF that
is already in the object store by reference, read text and codes from ``/api/documents/{id}``;
hostile files fail with their reason while the server and its worker carry on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.documents import PANGRAM, PARAGRAPH, png_bytes, scanned_pdf, text_image, text_pdf
from tests.e2e.test_api import Server, running_server, wait_for_job
from tests.support import S3_TEST_ENV, s3_client


@pytest.fixture(scope="module")
def bucket(moto_server: str) -> str:
    name = "conveyor-documents"
    s3_client(moto_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def server(moto_server: str, bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        **S3_TEST_ENV,
        "CONVEYOR_STORAGE_URL": f"s3://{bucket}/blobs",
        "CONVEYOR_S3_ENDPOINT_URL": moto_server,
        "CONVEYOR_POLL_SECONDS": "0.2",
        "CONVEYOR_LIMIT_SECONDS_PER_FILE": "60",
        "CONVEYOR_PARSE_WORKERS": "2",
    }
    with running_server(env, tmp_path_factory.mktemp("conveyor-data")) as started:
        yield started


def upload(client: httpx.Client, content: bytes, filename: str) -> dict[str, object]:
    response = client.post(
        "/api/upload",
        files=[("file", (filename, content, "application/octet-stream"))],
        data={"pipeline": "document"},
    )
    assert response.status_code == 201, response.text
    job: dict[str, object] = response.json()["jobs"][0]
    return job


def test_a_scan_and_a_text_pdf_give_their_text_and_codes(server: Server) -> None:
    scan = scanned_pdf([text_image(), text_image([PANGRAM])])
    typed = text_pdf([["Order 1 of 2"], ["Order 2 of 2"]], qr_on_page={2: "ORDER-2"})
    with server.client(server.admin) as client:
        scan_job = upload(client, scan, "scan.pdf")
        typed_job = upload(client, typed, "typed.pdf")
        assert wait_for_job(client, scan_job["id"], 120)["status"] == "succeeded"  # type: ignore[arg-type]
        assert wait_for_job(client, typed_job["id"], 120)["status"] == "succeeded"  # type: ignore[arg-type]
        scanned = client.get(f"/api/documents/{scan_job['document_id']}").json()
        typed_view = client.get(f"/api/documents/{typed_job['document_id']}").json()

    assert scanned["status"] == "succeeded"
    assert scanned["document"]["media_type"] == "application/pdf"
    assert [page["source"] for page in scanned["pages"]] == ["ocr", "ocr"]
    first, second = scanned["text"].split("\f")
    assert first.split() == " ".join(PARAGRAPH).split()
    assert second.split() == PANGRAM.split()
    assert scanned["summary"]["by_source"]["ocr"] == 2
    assert scanned["codes"] == []

    assert [page["source"] for page in typed_view["pages"]] == ["text-layer", "text-layer"]
    assert [code["text"] for code in typed_view["codes"]] == ["ORDER-2"]
    assert typed_view["codes"][0]["page"] == 2
    assert typed_view["codes"][0]["position"]["unit"] == "pt"


def test_a_pdf_in_the_object_store_is_processed_by_reference(
    server: Server, moto_server: str, bucket: str
) -> None:
    s3_client(moto_server).put_object(
        Bucket=bucket,
        Key="incoming/ref.pdf",
        Body=text_pdf([["submitted by reference"]], qr_on_page={1: "REF-1"}),
    )
    with server.client(server.admin) as client:
        response = client.post(
            "/api/jobs", json={"pipeline": "document", "ref": f"s3://{bucket}/incoming/ref.pdf"}
        )
        assert response.status_code == 201, response.text
        job = response.json()
        assert wait_for_job(client, job["id"], 120)["status"] == "succeeded"
        view = client.get(f"/api/documents/{job['document_id']}").json()
    assert view["document"]["filename"] == "ref.pdf"
    assert view["text"].strip() == "submitted by reference"
    assert [code["text"] for code in view["codes"]] == ["REF-1"]


@pytest.mark.parametrize(
    ("content", "filename", "reason"),
    [
        (b"%PDF-1.7\n" + b"garbage " * 500, "broken.pdf", "not a readable PDF"),
        (png_bytes(text_image([PANGRAM]))[:2000], "cut.png", "cut.png"),
        (b"", "empty.pdf", "document pipeline reads PDFs and images"),
    ],
)
def test_hostile_files_fail_with_their_reason_and_the_service_carries_on(
    server: Server, content: bytes, filename: str, reason: str
) -> None:
    with server.client(server.admin) as client:
        job = upload(client, content, filename)
        done = wait_for_job(client, job["id"], 120)  # type: ignore[arg-type]
        assert done["status"] == "failed", done
        assert reason in done["error"]
        assert done["attempts"] == 1, "bad input is never retried"
        assert client.get("/health").status_code == 200
        after = upload(client, text_pdf([[f"still up after {filename}"]]), "after.pdf")
        assert wait_for_job(client, after["id"], 120)["status"] == "succeeded"  # type: ignore[arg-type]


def test_extract_cli_reads_a_scan(tmp_path: Path) -> None:
    import subprocess
    import sys

    import orjson

    path = tmp_path / "scan.png"
    path.write_bytes(png_bytes(text_image([PANGRAM])))
    conveyor = Path(sys.executable).parent / "conveyor"
    done = subprocess.run(
        [conveyor, "extract", str(path), "--pipeline", "document", "--json"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = orjson.loads(done.stdout)
    assert output["pipeline"] == "document"
    assert output["document"]["media_type"] == "image/png"
    [page] = [record["data"] for record in output["records"] if record["kind"] == "page"]
    assert page["text"].split() == PANGRAM.split() and page["source"] == "ocr"
