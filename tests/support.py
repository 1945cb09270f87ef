"""Helpers for tests that run real processes: free ports, waiting for HTTP, process groups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

# Credentials and region for boto3 against moto_server (any non-empty values do).
S3_TEST_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the test server at ``endpoint``, with the test credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_TEST_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    )


# Loopback only: never through a proxy that the environment may name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(
    url: str,
    timeout_s: float = 30.0,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``url`` until it answers with a status below 500.

    Connection errors and 5xx answers mean "not yet". When ``process`` is given and exits first,
    fail at once instead of waiting out the timeout; ``log_path``'s tail goes into the message.
    """
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before {url} answered" + _log_tail(log_path)
            )
        try:
            with _opener.open(url, timeout=2.0) as response:
                if response.status < 500:
                    return
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
            last_error = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last_error = str(error)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s: {last_error}" + _log_tail(log_path))


def start_process(
    args: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    *,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new session (so its own process group), stdout and stderr to ``log_path``.

    ``env`` is added to (not instead of) this process's environment. Stop it with
    ``stop_process``, or use ``running_process``, which does so on exit.
    """
    full_env = {**os.environ, **(env or {})}
    if log_path is None:
        return subprocess.Popen(args, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int | None:
    """SIGTERM the process group, wait up to ``timeout_s``, then SIGKILL whatever is left of it.

    Returns the leader's exit code (None if it had to be killed and still did not report).
    """
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    # Children (worker processes) may outlive the leader: the group goes in any case.
    _signal_group(process.pid, signal.SIGKILL)
    try:
        return process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        return None


@contextlib.contextmanager
def running_process(
    args: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    *,
    cwd: Path | None = None,
    stop_timeout_s: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``start_process`` as a context manager: the whole process group is stopped on exit."""
    process = start_process(args, env, log_path, cwd=cwd)
    try:
        yield process
    finally:
        stop_process(process, stop_timeout_s)


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _log_tail(log_path: Path | None, lines: int = 40) -> str:
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_path} ---\n" + "\n".join(tail)


class AppClient:
    """Requests to an ASGI app in this process (httpx's ASGI transport is async only)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://conveyor") as client:
                return await client.request(method, path, **options)

        return asyncio.run(send())

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)


def keyed_app(settings: Any, *roles: str) -> tuple[AppClient, dict[str, dict[str, str]]]:
    """The app on a migrated database (what its start-up does; the in-process transport skips it)
    and, per role, the Authorization header of a new key of that role."""
    from conveyor import intake
    from conveyor.store import migrate
    from conveyor.store.database import create_database_engine, session_factory
    from conveyor.web.app import create_app

    engine = create_database_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
        with session_factory(engine).begin() as session:
            keys = {role: intake.create_api_key(session, role=role, name=f"{role} key")[1] for role in roles}
    finally:
        engine.dispose()
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    return AppClient(create_app(settings)), headers


def dispose_app(client: AppClient) -> None:
    client.app.state.conveyor.engine.dispose()
