"""The ``codescan`` pipeline: codes found in PDF drawings (text layer, OCR for scans), normalised and
matched against a target list read from a spreadsheet.

    codes.py     the default pattern, the normal form, codes broken across lines, OCR skeletons
    targets.py   the target list from a spreadsheet column; the set codes are matched against
    params.py    the pipeline's params
    reading.py   the work done in parser processes (text layer + codes, one page OCR'd + codes)
    scans.py     a file's parser calls, and the first call shared by several files
    matching.py  exact and fuzzy matches of one page's codes
    results.py   a file's records, findings and summary
    pipeline.py  the pipeline: ``run`` for one file, ``run_many`` for a chunk of a batch

The pipeline and its params are imported on first use: parser processes import this package to
run ``reading``, and need neither pydantic nor the pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from conveyor.pipelines.codescan.codes import DEFAULT_PATTERN, normalise_code

if TYPE_CHECKING:
    from conveyor.pipelines.codescan.params import CodescanParams
    from conveyor.pipelines.codescan.pipeline import CodescanPipeline
    from conveyor.pipelines.codescan.targets import read_targets

__all__ = ["DEFAULT_PATTERN", "CodescanParams", "CodescanPipeline", "normalise_code", "read_targets"]

_LAZY = {
    "CodescanParams": "conveyor.pipelines.codescan.params",
    "CodescanPipeline": "conveyor.pipelines.codescan.pipeline",
    "read_targets": "conveyor.pipelines.codescan.targets",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
