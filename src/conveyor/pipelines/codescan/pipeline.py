"""The ``codescan`` pipeline: the codes a PDF drawing carries, matched against a target list.

    text layer of every page + the codes in it + which pages need OCR   (one parser call per
                                                                         25 pages: one for a drawing)
    -> pages without text drawn at ``dpi`` and OCR'd, on every parser process
    -> codes matched: exact on normal forms; fuzzy for OCR readings only
    -> one ``code`` record per code and page, the file's status ("no code", "1 code", "3 codes")

``run`` reads one file, as every pipeline does; ``run_many`` yields the same results for several
files with their first parser calls shared (scans.py), for a batch's chunk of drawings. Records are
built eagerly (bounded by the page limit): the caller writes them in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, Final

from conveyor.content import DocumentInput, Finding, PipelineContext, PipelineResult
from conveyor.errors import Cancelled, InputError
from conveyor.extractors.isolation import sandbox_for
from conveyor.extractors.pdf import EncryptedPdf
from conveyor.extractors.sniff import describe_media_type, extension_mismatch
from conveyor.extractors.spooling import local_file
from conveyor.pipelines.codescan.params import CodescanParams
from conveyor.pipelines.codescan.results import file_result
from conveyor.pipelines.codescan.scans import FileScan, first_text_layers
from conveyor.pipelines.codescan.targets import TargetSet, target_set
from conveyor.pipelines.page_reading import FileTask
from conveyor.pipelines.params import checked_languages, checked_params

PDF: Final = "application/pdf"


class CodescanPipeline:
    """PDF drawings in; ``code`` records (what was found where, and the target it matches) out."""

    name = "codescan"
    shared_keys = False

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        checked = checked_params(CodescanParams, params)
        if checked.ocr:
            checked_languages(checked.languages)
        return checked.model_dump()

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult:
        options, targets = _options(params)
        _check_pdf(document)
        if context.is_cancelled():
            raise Cancelled
        limits = context.limits
        with local_file(document, limits) as path:
            file = FileTask(path, document.filename, limits)
            scan = FileScan(
                sandbox_for(limits),
                file,
                options,
                is_cancelled=context.is_cancelled,
                progress=context.progress,
            )
            try:
                pages = scan.pages()
            except EncryptedPdf as error:
                raise _as_reported(error, document) from None
        return file_result(pages, targets, options)

    def run_many(
        self, documents: Sequence[DocumentInput], params: Mapping[str, Any], context: PipelineContext
    ) -> Iterator[PipelineResult | InputError]:
        """``run_pipeline(self, document, ...)`` for each document of a chunk (tens of files), yielded
        in order as each is done, a file's InputError (not a PDF, corrupt, encrypted, over a limit)
        in its place; other errors (Cancelled, TransientError) are raised.

        The text layers of up to 16 files are read in one parser call before the first file is
        yielded: a chunk of one-page drawings costs about 40% less CPU than a ``run`` per file.
        Scans are then read file by file, so a file's result comes as soon as its OCR is done.
        ``context.progress`` is not called: the caller counts files.
        """
        options, targets = _options(params)
        limits = context.limits
        sandbox = sandbox_for(limits)
        with ExitStack() as stack:
            files: dict[int, FileTask] = {}
            refused: dict[int, InputError] = {}
            for index, document in enumerate(documents):
                try:
                    _check_pdf(document)
                    path = stack.enter_context(local_file(document, limits))
                except InputError as error:
                    refused[index] = error
                    continue
                files[index] = FileTask(path, document.filename, limits)
            firsts = dict(
                zip(
                    files,
                    first_text_layers(
                        sandbox, list(files.values()), options.pattern, is_cancelled=context.is_cancelled
                    ),
                    strict=True,
                )
            )
            for index, document in enumerate(documents):
                if context.is_cancelled():
                    raise Cancelled
                if index in refused:
                    yield _as_reported(refused[index], document)
                    continue
                first = firsts[index]
                if isinstance(first, InputError):
                    yield _as_reported(first, document)
                    continue
                scan = FileScan(sandbox, files[index], options, is_cancelled=context.is_cancelled)
                try:
                    pages = scan.pages(first)
                except InputError as error:
                    yield _as_reported(error, document)
                    continue
                yield _with_name_check(file_result(pages, targets, options), document)


def _options(params: Mapping[str, Any]) -> tuple[CodescanParams, TargetSet | None]:
    """The params, checked. The targets, the same thousands for every file of a batch, are checked
    once and cached (``target_set``); the rest is checked again for each file, as cheap as it is."""
    options = checked_params(
        CodescanParams, {key: value for key, value in params.items() if key != "targets"}
    )
    value = params.get("targets")
    if value is None:
        return options, None
    if not isinstance(value, list | tuple):
        raise InputError("param 'targets': a list of codes is expected")
    try:
        return options, target_set(tuple(value))
    except (TypeError, AttributeError):  # an item that is no string, or not hashable
        raise InputError("param 'targets': a list of codes is expected") from None
    except InputError as error:
        raise InputError(f"param 'targets': {error}") from None


def _check_pdf(document: DocumentInput) -> None:
    if document.media_type != PDF:
        raise InputError(
            f"{document.filename}: the codescan pipeline reads PDFs; this file's content is"
            f" {describe_media_type(document.media_type)}"
        )


def _as_reported(error: InputError, document: DocumentInput) -> InputError:
    """The PDF extractor's message for an encrypted file asks for a password param, which codescan
    does not take."""
    if isinstance(error, EncryptedPdf):
        return EncryptedPdf(
            f"{document.filename}: the PDF is encrypted; codescan reads only PDFs without a password"
        )
    return error


def _with_name_check(result: PipelineResult, document: DocumentInput) -> PipelineResult:
    """What ``run_pipeline`` adds to every result: the finding for a name that contradicts the
    content."""
    mismatch = extension_mismatch(document.filename, document.media_type)
    if mismatch is not None:
        result.findings.insert(0, Finding("extension_mismatch", "warning", mismatch, "document"))
    return result
