"""The parser sandbox: hangs are killed at the deadline, crashes and memory blow-ups are reported
as input errors, and the pool goes on serving the next file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from conveyor.errors import Cancelled, InputError, LimitExceeded
from conveyor.extractors.isolation import Deadline, ParserCrashed, ParserFailed, Sandbox
from tests import hostile

MEMORY = 512 * 1024 * 1024


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    pool = Sandbox(workers=2, memory_bytes=MEMORY)
    yield pool
    pool.close()


def run(sandbox: Sandbox, function: object, *args: object, seconds: float = 30) -> object:
    return sandbox.run(function, *args, deadline=Deadline.start(seconds), subject="x.pdf")  # type: ignore[arg-type]


def test_results_come_back(sandbox: Sandbox) -> None:
    assert run(sandbox, hostile.square, 7) == 49


def test_a_hang_is_killed_at_the_deadline_and_named(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"x\.pdf: seconds_per_file") as caught:
        run(sandbox, hostile.spin, seconds=1.0)
    assert caught.value.limit == "seconds_per_file"
    assert time.monotonic() - started < 10
    assert run(sandbox, hostile.square, 3) == 9


def test_a_crash_is_an_input_error_and_the_pool_carries_on(sandbox: Sandbox) -> None:
    with pytest.raises(ParserCrashed, match=r"x\.pdf: the parser was killed by signal 11"):
        run(sandbox, hostile.segfault)
    with pytest.raises(ParserCrashed, match="signal 6"):
        run(sandbox, hostile.abort)
    assert isinstance(ParserCrashed("x"), InputError)
    assert run(sandbox, hostile.square, 4) == 16


def test_memory_over_the_limit_is_refused_and_the_pool_carries_on(sandbox: Sandbox) -> None:
    with pytest.raises(LimitExceeded, match="memory_bytes") as caught:
        run(sandbox, hostile.allocate, 2048)
    assert "512 MiB" in str(caught.value)
    assert run(sandbox, hostile.allocate, 64) == 64 * 1024 * 1024


def test_input_errors_pass_through_unchanged(sandbox: Sandbox) -> None:
    with pytest.raises(InputError, match=r"bad\.pdf: not a readable PDF"):
        run(sandbox, hostile.refuse)


def test_map_keeps_input_order_and_uses_every_process(sandbox: Sandbox) -> None:
    values = list(range(40))
    results = list(sandbox.map(hostile.slow_square, values, deadline=Deadline.start(60), subject="x"))
    assert results == [value * value for value in values]
    pids = set(sandbox.map(hostile.process_id, range(4), deadline=Deadline.start(60), subject="x"))
    assert len(pids) == 2


def test_map_stops_on_cancel_and_kills_what_runs(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(Cancelled):
        list(
            sandbox.map(
                hostile.hang, range(10), deadline=Deadline.start(60), subject="x", is_cancelled=lambda: True
            )
        )
    assert time.monotonic() - started < 10
    assert run(sandbox, hostile.square, 5) == 25


def test_one_deadline_covers_all_the_pages_of_a_file(sandbox: Sandbox) -> None:
    """Six hanging pages on two processes: the file's budget ends the lot, not each page's own."""
    deadline = Deadline.start(1.5)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"seconds_per_file is 1\.\d s, over the limit of 1\.5 s"):
        list(sandbox.map(hostile.hang, range(6), deadline=deadline, subject="x"))
    assert deadline.remaining() == 0
    assert time.monotonic() - started < 3.0


def test_an_unexpected_parser_error_is_an_input_error_naming_the_file(sandbox: Sandbox) -> None:
    with pytest.raises(ParserFailed, match=r"x\.pdf: the parser failed on this file \(TypeError: Missing"):
        run(sandbox, hostile.type_error)
    assert isinstance(ParserFailed("x"), InputError)


def test_run_honours_cancellation(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(Cancelled):
        sandbox.run(hostile.hang, deadline=Deadline.start(60), subject="x", is_cancelled=lambda: True)
    assert time.monotonic() - started < 5
    assert run(sandbox, hostile.square, 2) == 4


def test_a_pool_whose_processes_all_died_while_idle_is_replaced() -> None:
    pool = Sandbox(workers=2, memory_bytes=MEMORY)
    try:
        pids = set(pool.map(hostile.process_id, range(4), deadline=Deadline.start(60), subject="x"))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        assert run(pool, hostile.square, 9) == 81
    finally:
        pool.close()


def test_a_process_that_used_the_shared_sandbox_exits_promptly() -> None:
    """pebble's processes are not daemons: without closing them first, a child process would wait
    for them forever at exit (its worker pool would then have to kill it)."""
    child = multiprocessing.get_context("spawn").Process(target=hostile.use_shared_sandbox_then_exit)
    child.start()
    child.join(timeout=30)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
