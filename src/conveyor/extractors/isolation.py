"""Parsing untrusted files in separate processes, each under a memory limit and a wall-clock deadline.

A malformed PDF can make a C library spin forever, allocate without bound or crash outright. None of
that may take the job worker down with it: parsers run in a small pool of processes (pebble), each
with ``RLIMIT_AS`` set, and every call has the file's remaining time as its timeout. A parse that
times out is killed, one that crashes (a signal, an abort, ``MemoryError``) is reported, and in both
cases the pool replaces the process and goes on with the next file.

The pool is process-wide and started on first use: starting processes and loading pdfium, Tesseract
and zxing-cpp costs far more than one page, so a worker keeps its parsers for every job it runs. The
children are forked from a forkserver that has those modules imported already.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import multiprocessing.util
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

import pebble

from conveyor.content import Limits
from conveyor.errors import Cancelled, ConveyorError, InputError, LimitExceeded, TransientError

logger = logging.getLogger(__name__)
# A parser process is replaced after this many calls: OCR engines per language set and pdfium's
# caches grow, and a fresh process costs about half a second.
TASKS_PER_PROCESS = 500
T = TypeVar("T")
R = TypeVar("R")

# Imported once in the forkserver so every parser process starts with them loaded.
PRELOAD = (
    "tesserocr",
    "conveyor.extractors.pdf",
    "conveyor.extractors.images",
    "conveyor.extractors.ocr",
    "conveyor.extractors.qr",
    "conveyor.extractors.spreadsheet",
    "conveyor.pipelines.page_reading",
)


class ParserCrashed(InputError):
    """The parser process died on this file (a crash in a native library or out of memory)."""

    code = "parser_crashed"


def _limit_memory(memory_bytes: int) -> None:
    """Runs first in every parser process: the address-space limit applies to native code too."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@dataclass(frozen=True, slots=True)
class Deadline:
    """The time left for one file: every parse of it shares one budget."""

    at: float
    seconds: float

    @classmethod
    def start(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def exceeded(self, subject: str) -> LimitExceeded:
        elapsed = self.seconds + time.monotonic() - self.at
        return LimitExceeded("seconds_per_file", f"{elapsed:.1f} s", f"{self.seconds:g} s", subject)


class ParserFailed(InputError):
    """The parser raised an unexpected error on this file (a library choking on malformed input)."""

    code = "parser_failed"


def _never() -> bool:
    return False


class Sandbox:
    """A pool of parser processes with one memory limit."""

    def __init__(self, workers: int, memory_bytes: int) -> None:
        self.workers = workers
        self.memory_bytes = memory_bytes
        self._pool = self._start()

    def _start(self) -> pebble.ProcessPool:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        return pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=TASKS_PER_PROCESS,
            initializer=_limit_memory,
            initargs=(self.memory_bytes,),
            context=context,
        )

    def _restart(self) -> None:
        """A new pool for the next file; the old one's processes are stopped, not left behind."""
        self._stop()
        self._pool = self._start()

    def _stop(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=5)

    def run(
        self,
        function: Callable[..., R],
        *args: object,
        deadline: Deadline,
        subject: str,
        is_cancelled: Callable[[], bool] = _never,
    ) -> R:
        """``function(*args)`` in a parser process; see ``wait`` for what its errors become."""
        return self.wait(self.submit(function, *args, deadline=deadline), deadline, subject, is_cancelled)

    def submit(
        self, function: Callable[..., R], *args: object, deadline: Deadline
    ) -> concurrent.futures.Future[R]:
        """Schedule a call; a pool that died while idle (all its processes killed, say by the kernel's
        OOM killer) is replaced first, so one bad moment does not fail every later file."""
        if not self._pool.active:
            logger.warning("parser pool is not running; starting a new one")
            self._restart()
        timeout = max(deadline.remaining(), 0.001)
        try:
            return self._pool.schedule(function, args=args, timeout=timeout)
        except RuntimeError:
            self._restart()
            return self._pool.schedule(function, args=args, timeout=timeout)

    def map(
        self,
        function: Callable[[T], R],
        items: Iterable[T],
        *,
        deadline: Deadline,
        subject: str,
        is_cancelled: Callable[[], bool] = _never,
    ) -> Iterator[R]:
        """Results in input order, computed on every parser process at once.

        At most twice as many calls as processes are in flight, so a 5,000-page document neither
        queues 5,000 pickled tasks nor holds their results. On the first error, a cancellation or
        the consumer stopping early, the calls still pending are cancelled (pebble kills a running
        one).
        """
        pending: list[concurrent.futures.Future[R]] = []
        source = iter(items)
        try:
            while True:
                while len(pending) < 2 * self.workers:
                    item = next(source, _END)
                    if item is _END:
                        break
                    pending.append(self.submit(function, item, deadline=deadline))
                if not pending:
                    return
                yield self.wait(pending.pop(0), deadline, subject, is_cancelled)
        finally:
            for future in pending:
                future.cancel()

    def wait(
        self,
        future: concurrent.futures.Future[R],
        deadline: Deadline,
        subject: str,
        is_cancelled: Callable[[], bool] = _never,
    ) -> R:
        """The call's result, or its error as a ConveyorError that names the file.

        The deadline is checked here as well as by pebble (whose timeout starts when a call starts,
        not when it is queued), so one file never runs past its budget however its pages queue.
        """
        while not _wait_one(future):
            if is_cancelled():
                future.cancel()
                raise Cancelled
            if deadline.remaining() <= 0:
                future.cancel()
                raise deadline.exceeded(subject)
        try:
            return future.result()
        except concurrent.futures.TimeoutError:
            raise deadline.exceeded(subject) from None
        except concurrent.futures.CancelledError:
            raise Cancelled from None
        except pebble.ProcessExpired as error:
            raise ParserCrashed(_crash_message(subject, error.exitcode, self.memory_bytes)) from None
        except MemoryError:
            raise LimitExceeded(
                "memory_bytes", "more", f"{self.memory_bytes // 2**20} MiB", subject
            ) from None
        except ConveyorError:
            raise
        except Exception as error:
            if not self._pool.active or isinstance(error, BrokenProcessPool):
                # The pool itself failed (a result that would not unpickle, a worker that could not
                # start): a new pool for the next file, and this one may be tried again.
                logger.error("parser pool broke on %s: %r; starting a new one", subject, error)
                self._restart()
                raise TransientError(f"{subject}: the parser pool failed ({error}); will retry") from None
            logger.warning("parser failed on %s", subject, exc_info=error)
            raise ParserFailed(
                f"{subject}: the parser failed on this file ({type(error).__name__}: {error});"
                " it is probably malformed"
            ) from None

    def close(self) -> None:
        self._stop()


_END = object()


def _wait_one(future: concurrent.futures.Future[R]) -> bool:
    done, _ = concurrent.futures.wait([future], timeout=0.2)
    return bool(done)


def _crash_message(subject: str, exitcode: int | None, memory_bytes: int) -> str:
    if exitcode is not None and exitcode < 0:
        how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    return (
        f"{subject}: the parser {how} while reading this file; it is malformed, or needs more than"
        f" the {memory_bytes // 2**20} MiB memory limit"
    )


_shared: dict[tuple[int, int], Sandbox] = {}
_shared_lock = threading.Lock()


def sandbox_for(limits: Limits) -> Sandbox:
    """The process-wide sandbox for these limits, started on first use."""
    workers = limits.parse_workers or os.cpu_count() or 1
    key = (workers, limits.memory_bytes)
    with _shared_lock:
        sandbox = _shared.get(key)
        if sandbox is None:
            sandbox = _shared[key] = Sandbox(workers, limits.memory_bytes)
        return sandbox


def close_shared() -> None:
    """Stop every shared sandbox. Runs at exit: as a multiprocessing finalizer, because a child
    process joins its non-daemon children (pebble's) before atexit handlers would run."""
    with _shared_lock:
        for sandbox in _shared.values():
            sandbox.close()
        _shared.clear()


multiprocessing.util.Finalize(None, close_shared, exitpriority=10)
