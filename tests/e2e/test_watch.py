"""`conveyor serve --watch DIR=records` as a real process: files dropped are processed once, and a
restart of the server does not process them again."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, running_process, wait_for_http

CONVEYOR = Path(sys.executable).parent / "conveyor"


def _serve(data_dir: Path, inbox: Path, port: int):  # type: ignore[no-untyped-def]
    env = {
        "CONVEYOR_DATA_DIR": str(data_dir),
        "CONVEYOR_POLL_SECONDS": "0.2",
        "CONVEYOR_WATCH_POLL_SECONDS": "0.3",
    }
    args: list[str | os.PathLike[str]] = [
        CONVEYOR,
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "--watch",
        f"{inbox}=records",
    ]
    return running_process(args, env, data_dir / "serve.log")


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_dropped_files_are_processed_once_and_not_again_after_restart(tmp_path: Path) -> None:
    data_dir, inbox = tmp_path / "data", tmp_path / "inbox"
    inbox.mkdir()
    key = _admin_key(data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}

    def jobs() -> list[dict[str, object]]:
        response = httpx.get(f"{url}/api/jobs", headers=headers, trust_env=False)
        response.raise_for_status()
        items: list[dict[str, object]] = response.json()["items"]
        return items

    with _serve(data_dir, inbox, port):
        wait_for_http(f"{url}/health", 60)
        (inbox / "orders-1.json").write_bytes(b'[{"id": 1}, {"id": 2}]')
        (inbox / "orders-2.ndjson").write_bytes(b'{"id": 3}\n{"id": 4}\n')
        assert _until(lambda: [j["status"] for j in jobs()] == ["succeeded"] * 2, 60), jobs()
        records = httpx.get(
            f"{url}/api/jobs/{jobs()[0]['id']}/records", headers=headers, trust_env=False
        ).json()
        assert len(records["items"]) == 2

    with _serve(data_dir, inbox, port):
        wait_for_http(f"{url}/health", 60)
        time.sleep(2)  # several scans
        assert len(jobs()) == 2, "a restart must not process the same files again"
        (inbox / "orders-3.json").write_bytes(b'[{"id": 5}]')
        assert _until(lambda: len(jobs()) == 3 and jobs()[0]["status"] == "succeeded", 60)


def _admin_key(data_dir: Path) -> str:
    import subprocess

    output = subprocess.run(
        [CONVEYOR, "keys", "create", "--role", "admin"],
        env={"CONVEYOR_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return output.stdout.strip().splitlines()[-1]
