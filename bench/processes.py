"""Collecting what spawned benchmark processes report, without hanging on one that died."""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any


def collect(results: Any, count: int, processes: Sequence[BaseProcess], timeout_s: float) -> list[Any]:
    """``count`` items from the multiprocessing queue ``results``; fails as soon as every process
    has exited with items still missing, or when ``timeout_s`` runs out."""
    items: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(items) < count:
        try:
            items.append(results.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        if not any(process.is_alive() for process in processes):
            try:
                items.append(results.get(timeout=1.0))
                continue
            except queue.Empty:
                codes = [process.exitcode for process in processes]
                raise RuntimeError(f"benchmark processes exited (codes {codes}) without reporting") from None
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark processes did not report within {timeout_s:.0f} s")
    return items


def stop(processes: Sequence[BaseProcess], grace_s: float = 30.0) -> None:
    for process in processes:
        process.join(timeout=grace_s)
        if process.is_alive():
            process.kill()
            process.join()
