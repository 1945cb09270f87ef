"""Parsers that misbehave on purpose, for the isolation tests (run in parser processes)."""

from __future__ import annotations

import ctypes
import os
import signal
import time

from conveyor.errors import InputError


def square(value: int) -> int:
    return value * value


def slow_square(value: int) -> int:
    time.sleep(0.05 * (value % 3))
    return value * value


def hang(_: object = None) -> None:
    while True:
        time.sleep(1)


def spin(_: object = None) -> None:
    while True:
        pass


def segfault(_: object = None) -> None:
    ctypes.string_at(0)


def abort(_: object = None) -> None:
    os.kill(os.getpid(), signal.SIGABRT)


def allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def refuse(_: object = None) -> None:
    raise InputError("bad.pdf: not a readable PDF")


def process_id(_: object = None) -> int:
    time.sleep(0.2)
    return os.getpid()


def type_error(_: object = None) -> None:
    raise TypeError("Missing dimensions")


def use_shared_sandbox_then_exit() -> None:
    """Run in a spawned child: a process that used the shared sandbox must still exit promptly."""
    from conveyor.content import Limits
    from conveyor.extractors.isolation import Deadline, sandbox_for

    assert sandbox_for(Limits(parse_workers=1)).run(square, 6, deadline=Deadline.start(30), subject="x") == 36
