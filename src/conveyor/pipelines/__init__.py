"""The pipeline registry: built-ins by name, plus third-party pipelines from the entry-point group
``conveyor.pipelines`` (a built-in name always wins, so a plugin cannot shadow one silently)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from conveyor.content import DocumentInput, Finding, PipelineContext, PipelineResult
from conveyor.errors import InputError
from conveyor.extractors.sniff import extension_mismatch

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "conveyor.pipelines"


@runtime_checkable
class Pipeline(Protocol):
    """Turns one document into records, findings and a summary. Pure: no database, no HTTP."""

    name: str
    # True when records are upserted by natural key across files (a shared collection); False when
    # each job owns its records (pages of one document, entries of one timecard).
    shared_keys: bool

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def run(
        self, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
    ) -> PipelineResult: ...


def _builtins() -> dict[str, type[Pipeline]]:
    from conveyor.pipelines.codescan import CodescanPipeline
    from conveyor.pipelines.document import DocumentPipeline
    from conveyor.pipelines.records import RecordsPipeline
    from conveyor.pipelines.timecards.pipeline import TimecardPipeline

    return {
        "records": RecordsPipeline,
        "document": DocumentPipeline,
        "timecard": TimecardPipeline,
        "codescan": CodescanPipeline,
    }


@functools.cache
def registry() -> dict[str, type[Pipeline]]:
    found: dict[str, type[Pipeline]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception:
            logger.exception("pipeline plugin %s failed to load; skipped", entry.name)
    return found | _builtins()


def get_pipeline(name: str) -> Pipeline:
    try:
        return registry()[name]()
    except KeyError:
        known = ", ".join(sorted(registry()))
        raise InputError(f"unknown pipeline {name!r}; known pipelines: {known}") from None


def secret_params(name: str) -> frozenset[str]:
    """Params of pipeline ``name`` that the API must never show (a PDF's password)."""
    pipeline = registry().get(name)
    hidden: frozenset[str] = getattr(pipeline, "secret_params", frozenset())
    return hidden


def names() -> list[str]:
    return sorted(registry())


def run_pipeline(
    pipeline: Pipeline, document: DocumentInput, params: Mapping[str, Any], context: PipelineContext
) -> PipelineResult:
    """``pipeline.run`` plus what every pipeline reports the same way: a file whose name says one
    format while its content is another gets a finding (the content wins; nothing is guessed)."""
    result = pipeline.run(document, params, context)
    mismatch = extension_mismatch(document.filename, document.media_type)
    if mismatch is not None:
        result.findings.insert(0, Finding("extension_mismatch", "warning", mismatch, "document"))
    return result
