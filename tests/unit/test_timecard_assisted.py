"""The timecard pipeline asking a language model about the rows it read unsure.

The model here is a scripted stand-in (``ScriptedModel``): a paid LLM API is the one part of the world
these tests cannot reach, so this is a fake at that edge, not of our code. It records what it was
asked and answers what the test scripted, so the tests check what our code sends, which answers it
keeps, which it drops and why, and what the findings and review say. The real provider adapters are
checked against recorded HTTP exchanges in ``test_ai_contracts``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conveyor.ai import ModelUnavailable
from conveyor.content import OfflineContext, PipelineResult
from conveyor.extractors.spooling import local_document
from conveyor.pipelines import get_pipeline, run_pipeline
from conveyor.pipelines.timecards.assisted import SCHEMA
from tests.documents import write
from tests.sheets import xlsx_bytes

PIPELINE = get_pipeline("timecard")
HEADER = ["Employee", "Date", "Time In", "Time Out", "Rate"]
MONDAY = dt.date(2024, 3, 4)


@dataclass
class ScriptedModel:
    """Answers each call with the next scripted answer (or raises it); keeps every request."""

    answers: list[object]
    requests: list[dict[str, Any]] = field(default_factory=list)
    description: str = "scripted:test-model"

    def structured(self, *, instructions: str, content: str, schema: Mapping[str, Any], name: str) -> Any:
        self.requests.append(
            {"instructions": instructions, "content": content, "schema": schema, "name": name}
        )
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def answer(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"entries": list(entries)}


def model_entry(row: int, **values: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "sheet": "Week",
        "row": row,
        "employee": "Ada",
        "date": MONDAY.isoformat(),
        "start": "08:00",
        "end": "16:30",
        "hours": None,
        "break_hours": 0.5,
        "rate": 12.0,
    }
    return entry | values


def run(
    tmp_path: Path, rows: list[list[Any]], model: ScriptedModel | None, params: dict[str, Any] | None = None
) -> tuple[PipelineResult, list[dict[str, Any]]]:
    path = write(tmp_path / "card.xlsx", xlsx_bytes({"Week": rows}))
    context = OfflineContext(language_model=model)
    result = run_pipeline(PIPELINE, local_document(path), PIPELINE.validate_params(params or {}), context)
    return result, [record.as_json()["data"] for record in result.records if record.kind == "entry"]


SURE_ROW = ["Bob", MONDAY, dt.time(9), dt.time(17), 15]
UNSURE_ROW = ["Ada", MONDAY, "eight-ish", "half four", 12]


def test_only_the_unsure_row_is_asked_and_the_model_values_are_named(tmp_path: Path) -> None:
    model = ScriptedModel([answer(model_entry(3))])
    result, entries = run(tmp_path, [HEADER, SURE_ROW, UNSURE_ROW], model)

    [request] = model.requests
    assert request["schema"] == SCHEMA and request["name"] == "timecard_entries"
    assert "Rows to read on sheet 'Week': 3" in request["content"]
    assert "row 3: A=Ada | B=2024-03-04 | C=eight-ish | D=half four | E=12" in request["content"]
    assert "row 1: A=Employee" in request["content"]  # the header, for the columns' meaning

    bob, ada = entries
    assert bob["employee"] == "Bob" and bob["source"] == "Week!A2:E2" and bob["confidence"] == 1.0
    assert ada == {
        "employee": "Ada",
        "date": "2024-03-04",
        "start": "2024-03-04T08:00",
        "end": "2024-03-04T16:30",
        "hours": 8.0,  # 8.5 hours less the half-hour break the model read
        "break_hours": 0.5,
        "rate": 12.0,
        "source": "Week!A3:E3",
        "confidence": 0.75,
    }
    [finding] = [finding for finding in result.findings if finding.rule == "model_extracted"]
    assert finding.severity == "warning" and finding.ref == "Week!A3:E3"
    assert "start 2024-03-04T08:00, end 2024-03-04T16:30, hours 8.00, break_hours 0.50" in finding.message
    assert "scripted:test-model" in finding.message and "0.20 sure" in finding.message
    assert "employee" not in finding.message.split(":", 1)[1].split("came from")[0]  # the sheet gave Ada
    assert result.review.required and "model_extracted" in result.review.reasons
    assert "low_confidence" not in result.review.reasons
    assert result.summary["model_rows"] == 1


def test_a_sure_sheet_never_calls_the_model(tmp_path: Path) -> None:
    model = ScriptedModel([])
    result, entries = run(tmp_path, [HEADER, SURE_ROW], model)
    assert model.requests == [] and len(entries) == 1 and not result.review.required


def test_use_model_false_keeps_the_sheets_reading(tmp_path: Path) -> None:
    model = ScriptedModel([])
    result, entries = run(tmp_path, [HEADER, UNSURE_ROW], model, {"use_model": False})
    assert model.requests == []
    assert entries[0]["start"] is None  # a missing punch, as read
    assert result.review.reasons == ["rule_violation", "low_confidence"]


def test_answers_that_fail_the_checks_are_dropped_and_said(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            answer(
                model_entry(2, employee="Mallory"),  # named nowhere on the sheet
                model_entry(9),  # a row that was not asked about
                model_entry(2, start="soon"),  # not a time of day
                model_entry(2, date="2024-02-30"),  # not a date: not the asked shape
            )
        ]
    )
    result, entries = run(tmp_path, [HEADER, UNSURE_ROW], model)
    assert entries[0]["start"] is None  # nothing valid came back: the sheet's reading stands
    assert result.summary["model_rows"] == 0
    assert result.review.reasons == ["rule_violation", "low_confidence"]
    [finding] = [finding for finding in result.findings if finding.rule == "model_extracted"]
    assert "gave 4 entries that failed the checks" in finding.message
    assert "'Mallory' is named nowhere on the sheet" in finding.message
    assert "'Week' row 9, which was not asked about" in finding.message
    assert "the start 'soon' is not a time of day" in finding.message
    assert "not of the asked shape" in finding.message


def test_the_model_being_down_leaves_the_sheets_reading_with_a_finding(tmp_path: Path) -> None:
    model = ScriptedModel([ModelUnavailable("anthropic:claude: HTTP 529 overloaded")])
    result, entries = run(tmp_path, [HEADER, UNSURE_ROW], model)
    assert len(entries) == 1 and entries[0]["start"] is None
    [finding] = [finding for finding in result.findings if finding.rule == "model_unavailable"]
    assert finding.message == "anthropic:claude: HTTP 529 overloaded; the sheet's reading stands"
    assert result.review.reasons == ["rule_violation", "low_confidence"]


def test_a_sheet_without_a_table_is_read_by_the_model_and_the_rules_run_on_it(tmp_path: Path) -> None:
    """No header extraction knows: the model reads every row with values; its 45 hours at $12.00
    give the Department of Labor's overtime figures through the same rules."""
    rows: list[list[Any]] = [["Ada's hours, first week of March"]]
    answers = []
    for offset in range(5):
        day = MONDAY + dt.timedelta(days=offset)
        rows.append(["Ada", day, "from 8 o'clock", "to 17 o'clock", "12 an hour"])
        hours = {"start": "08:00", "end": "17:00", "break_hours": 0}
        answers.append(model_entry(offset + 2, date=day.isoformat(), **hours))
    model = ScriptedModel([answer(*answers)])
    result, entries = run(tmp_path, rows, model)

    assert "Rows to read on sheet 'Week': 2, 3, 4, 5, 6" in model.requests[0]["content"]
    assert [entry["source"] for entry in entries] == [f"Week!{row}:{row}" for row in range(2, 7)]
    [week] = [record.as_json()["data"] for record in result.records if record.kind == "week"]
    assert (week["hours"], week["regular_pay"], week["overtime_pay"], week["total_pay"]) == (45, 480, 90, 570)
    assert [finding.rule for finding in result.findings].count("model_extracted") == 5
    assert any(finding.rule == "overtime" for finding in result.findings)
    assert result.review.reasons == ["model_extracted"]


def test_no_table_and_no_model_answer_is_the_usual_error(tmp_path: Path) -> None:
    from conveyor.errors import InputError

    model = ScriptedModel([answer()])
    with pytest.raises(InputError, match="no timecard table found"):
        run(tmp_path, [["just a note"], ["Ada", "somewhere", "sometime"]], model)
