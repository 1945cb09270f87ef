"""The `conveyor` command as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.support import free_port, running_process, start_process, stop_process, wait_for_http

CONVEYOR = Path(sys.executable).parent / "conveyor"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONVEYOR), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_extract_json_prints_one_object_per_file_in_order(tmp_path: Path) -> None:
    good = tmp_path / "orders.json"
    good.write_bytes(b'[{"order": {"id": 7}, "x": 1}, {"order": {"id": 8}}]')
    bad = tmp_path / "broken.ndjson"
    bad.write_bytes(b'{"id": 1}\n{"id": 2,,}\n')
    nested = tmp_path / "nested.json"
    nested.write_bytes(b'{"data": {"items": [{"order": {"id": 9}}]}}')

    result = run(
        "extract",
        str(good),
        str(bad),
        str(nested),
        "--pipeline",
        "records",
        "--param",
        "key=order.id",
        "--json",
    )

    assert result.returncode == 2
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["document"]["filename"] for line in lines] == ["orders.json", "broken.ndjson", "nested.json"]
    assert [r["key"] for r in lines[0]["records"]] == ["7", "8"]
    assert lines[0]["document"]["media_type"] == "application/json"
    assert lines[0]["review"] == {"required": False, "reasons": []}
    assert lines[1]["error"]["code"] == "input_error"
    assert "broken.ndjson" in lines[1]["error"]["message"] and "line 2" in lines[1]["error"]["message"]
    assert lines[1]["document"]["size"] == bad.stat().st_size
    assert lines[2]["summary"]["format"] == "object" and len(lines[2]["records"]) == 1
    assert len(lines[2]["records"][0]["key"]) == 64, "no natural key: a content hash"
    assert "broken.ndjson: invalid JSON at line 2" in result.stderr


def test_extract_single_file_success_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_bytes(b'{"id": 1}')
    result = run("extract", str(path), "--pipeline", "records", "--json")
    assert result.returncode == 0, result.stderr
    output = orjson.loads(result.stdout)
    assert output["pipeline"] == "records"
    assert output["records"][0]["data"] == {"id": 1}


def test_extract_refuses_unknown_pipeline_and_missing_file(tmp_path: Path) -> None:
    assert run("extract", str(tmp_path / "nope.json"), "--pipeline", "records").returncode == 2
    path = tmp_path / "one.json"
    path.write_bytes(b"{}")
    unknown = run("extract", str(path), "--pipeline", "no-such")
    assert unknown.returncode == 2 and "unknown pipeline" in unknown.stderr


def test_keys_db_and_cleanup_commands(tmp_path: Path) -> None:
    env = {"CONVEYOR_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert run("db", "upgrade", env=env).returncode == 0
    created = run("keys", "create", "--role", "viewer", "--name", "dashboards", env=env)
    assert created.returncode == 0
    assert created.stdout.strip().splitlines()[-1].startswith("cvk_")
    assert run("keys", "create", "--role", "emperor", env=env).returncode == 2
    cleanup = run("cleanup", "--older-than", "30d", env=env)
    assert cleanup.returncode == 0, cleanup.stderr
    assert orjson.loads(cleanup.stdout.strip().splitlines()[-1])["jobs"] == 0
    assert run("cleanup", "--older-than", "soon", env=env).returncode == 2


def test_submit_waits_for_the_result(tmp_path: Path) -> None:
    env = {
        "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
        "CONVEYOR_POLL_SECONDS": "0.2",
        "PATH": "/usr/bin:/bin",
    }
    key = run("keys", "create", "--role", "submitter", env=env).stdout.strip().splitlines()[-1]
    port = free_port()
    path = tmp_path / "rows.json"
    path.write_bytes(b'[{"id": 1}, {"id": 2}, {"id": 3}]')
    with running_process(
        [CONVEYOR, "serve", "--port", str(port), "--workers", "1"], env, tmp_path / "serve.log"
    ):
        wait_for_http(f"http://127.0.0.1:{port}/health", 60)
        submitted = run(
            "submit",
            str(path),
            "--pipeline",
            "records",
            "--param",
            "key=id",
            "--server",
            f"http://127.0.0.1:{port}",
            "--wait",
            env={**env, "CONVEYOR_API_KEY": key},
        )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "succeeded" in submitted.stdout and "'records': 3" in submitted.stdout


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_serve_leaves_no_worker_behind(tmp_path: Path, signum: signal.Signals) -> None:
    """SIGTERM stops the embedded workers with the server; after a SIGKILL of the server they
    notice their supervisor is gone and leave by themselves."""
    env = {"CONVEYOR_DATA_DIR": str(tmp_path), "CONVEYOR_POLL_SECONDS": "0.2"}
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_process([CONVEYOR, "serve", "--port", str(port), "--workers", "2"], env, log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", 60)
        time.sleep(3)  # let the worker processes start
        server.send_signal(signum)  # the leader only, as a process manager would
        server.wait(60)
        assert _gone_within(server.pid, 30), log.read_text()[-2000:]
        text = log.read_text()
        if signum == signal.SIGTERM:
            assert "worker 0 stopped" in text and "supervisor gone" not in text, "stopped by the pool"
        else:
            assert "supervisor gone" in text, "the orphans noticed and left"
    finally:
        stop_process(server)
