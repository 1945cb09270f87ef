"""Pipelines come from the built-ins and from the `conveyor.pipelines` entry-point group."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import pipelines
from conveyor.content import DocumentInput, OfflineContext
from conveyor.errors import InputError

PLUGIN = """
from conveyor.content import PipelineResult, Record


class Shout:
    name = "shout"
    shared_keys = False

    def validate_params(self, params):
        return dict(params)

    def run(self, document, params, context):
        with document.open() as stream:
            text = stream.read().decode().upper()
        return PipelineResult(records=[Record(kind="text", data={"text": text})])


class Impostor:
    name = "records"
    shared_keys = False
"""


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    """A real installed distribution (a dist-info folder on sys.path) declaring two pipelines."""
    (tmp_path / "shout_plugin.py").write_text(PLUGIN)
    dist_info = tmp_path / "shout_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[conveyor.pipelines]\nshout = shout_plugin:Shout\nrecords = shout_plugin:Impostor\n"
        "broken = shout_plugin:DoesNotExist\n"
    )
    sys.path.insert(0, str(tmp_path))
    pipelines.registry.cache_clear()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("shout_plugin", None)
    pipelines.registry.cache_clear()


def test_a_plugin_pipeline_is_found_and_runs(plugin: None) -> None:
    assert "shout" in pipelines.names()
    pipeline = pipelines.get_pipeline("shout")
    document = DocumentInput("a.txt", "text/plain", "0" * 64, 5, open=lambda: io.BytesIO(b"hello"))
    result = pipeline.run(document, {}, OfflineContext())
    assert [r.data for r in result.records] == [{"text": "HELLO"}]


def test_a_plugin_cannot_shadow_a_builtin_and_a_broken_one_is_skipped(plugin: None) -> None:
    from conveyor.pipelines.records import RecordsPipeline

    assert isinstance(pipelines.get_pipeline("records"), RecordsPipeline)
    assert "broken" not in pipelines.names()


def test_unknown_pipeline_names_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"known pipelines: .*records"):
        pipelines.get_pipeline("nope")
