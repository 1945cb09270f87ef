"""Reading a file through the parser processes: its text layer and codes (one call for a drawing),
then its pages without text by OCR; and the first call for several files at once.

A parser call costs about half a millisecond (process switches, pickling) on top of its work, half
of what pdfium takes to read a one-page drawing. A batch's drawings therefore have their text
layers read several to a call (``first_text_layers``); a call that fails as a whole (a crash, its
time budget) is no verdict on its files, which are then read one by one as if it never happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Final, TypeAlias

from conveyor.errors import Cancelled, ConveyorError, InputError
from conveyor.extractors.isolation import Deadline, Sandbox
from conveyor.pipelines.codescan.params import CodescanParams
from conveyor.pipelines.codescan.reading import (
    OcrTask,
    PageCodes,
    TextLayerTask,
    scan_ocr_page,
    scan_text_layer,
    scan_text_layers,
)
from conveyor.pipelines.page_reading import FileTask, PageTask

# Text-layer pages per parser call: a drawing is one call; a long document still spreads over
# every process.
TEXT_CHUNK_PAGES: Final = 25
# Files per parser call in ``first_text_layers``, and the time that call may take: far more than a
# group of drawings needs, and short enough that a file that hangs costs little before the group
# is read again file by file (each file then with its own full budget).
GROUP_FILES: Final = 16
GROUP_SECONDS: Final = 60.0

TextLayer: TypeAlias = tuple[int, list[PageCodes]]


def _never() -> bool:
    return False


def _no_progress(_: float) -> None:
    return None


class FileScan:
    """One file's reading: the text layer in chunks, then the pages that need OCR."""

    def __init__(
        self,
        sandbox: Sandbox,
        file: FileTask,
        options: CodescanParams,
        *,
        is_cancelled: Callable[[], bool] = _never,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.file = file
        self.options = options
        self.is_cancelled = is_cancelled
        self.progress = progress or _no_progress
        self.deadline = Deadline.start(file.limits.seconds_per_file)

    def pages(self, first: TextLayer | None = None) -> list[PageCodes]:
        """Every page's codes, OCR readings after the text layer's; ``first`` is the first chunk of
        the text layer when it was read already (``first_text_layers``)."""
        pattern = self.options.pattern
        if first is None:
            first = self.sandbox.run(
                scan_text_layer,
                TextLayerTask(self.file, 0, TEXT_CHUNK_PAGES, pattern),
                deadline=self.deadline,
                subject=self.file.subject,
                is_cancelled=self.is_cancelled,
            )
        total, pages = first[0], list(first[1])
        chunks = [
            TextLayerTask(self.file, start, TEXT_CHUNK_PAGES, pattern)
            for start in range(TEXT_CHUNK_PAGES, total, TEXT_CHUNK_PAGES)
        ]
        for _, more in self._map(scan_text_layer, chunks):
            pages.extend(more)
        scanned = [page for page in pages if page.needs_ocr] if self.options.ocr else []
        done = total - len(scanned)
        self.progress(100.0 * done / total)
        for reading in self._map(scan_ocr_page, [self._ocr_task(page) for page in scanned]):
            pages.append(reading)
            done += 1
            self.progress(100.0 * done / total)
        return pages

    def _ocr_task(self, page: PageCodes) -> OcrTask:
        options = self.options
        task = PageTask(self.file, page.number - 1, True, False, False, options.languages, options.dpi)
        return OcrTask(task, options.pattern)

    def _map(self, function: Any, items: Sequence[Any]) -> Iterator[Any]:
        return self.sandbox.map(
            function,
            items,
            deadline=self.deadline,
            subject=self.file.subject,
            is_cancelled=self.is_cancelled,
        )


def first_text_layers(
    sandbox: Sandbox,
    files: Sequence[FileTask],
    pattern: str,
    *,
    is_cancelled: Callable[[], bool] = _never,
) -> list[TextLayer | InputError | None]:
    """The first text-layer chunk of each file, ``GROUP_FILES`` files to a parser call and the calls
    on every process at once (at most two per process in flight, as ``Sandbox.map``): a file's
    reading, its InputError, or None where its group failed as a whole (read that file alone)."""
    budget = min([GROUP_SECONDS, *(file.limits.seconds_per_file for file in files)])
    groups = (
        [TextLayerTask(file, 0, TEXT_CHUNK_PAGES, pattern) for file in files[start : start + GROUP_FILES]]
        for start in range(0, len(files), GROUP_FILES)
    )
    pending: list[tuple[int, Deadline, Future[list[TextLayer | InputError]]]] = []
    outcomes: list[TextLayer | InputError | None] = []
    try:
        while True:
            while len(pending) < 2 * sandbox.workers and (group := next(groups, None)) is not None:
                deadline = Deadline.start(budget)
                pending.append(
                    (len(group), deadline, sandbox.submit(scan_text_layers, group, deadline=deadline))
                )
            if not pending:
                return outcomes
            count, deadline, future = pending.pop(0)
            try:
                read: list[TextLayer | InputError] = sandbox.wait(
                    future, deadline, f"a group of {count} files", is_cancelled
                )
                outcomes.extend(read)
            except Cancelled:
                raise
            except ConveyorError:
                outcomes.extend([None] * count)
    finally:
        for _, _, future in pending:
            future.cancel()
