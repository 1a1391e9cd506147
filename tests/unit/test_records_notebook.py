"""Issue 24, item 5: records and `run_job` results read well in a notebook: short reprs with no
default noise, `JobRun` as a count per outcome and an HTML table (never the elements), and
`to_dict()` giving pandas real columns (datetime64, timedelta64, strings for enums)."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pandas as pd

from unstructured_jobs import _models
from unstructured_jobs._converter import structure
from unstructured_jobs._models import (
    JobDetails,
    JobFileStatus,
    JobInformation,
    Record,
    Workflow,
)
from unstructured_jobs._run_job import FileOutput, JobRun

JOB = {
    "id": "j1",
    "workflow_id": "w1",
    "workflow_name": "template t",
    "status": "COMPLETED",
    "created_at": "2026-04-29T10:00:00Z",
    "runtime": "PT2M30S",
    "input_file_ids": ["a.pdf"],
}


def test_every_record_has_the_short_repr_and_to_dict() -> None:
    records = [
        cls
        for _, cls in inspect.getmembers(_models, inspect.isclass)
        if attrs.has(cls) and cls.__module__ == _models.__name__
    ]
    assert len(records) >= 19
    for cls in records:
        assert issubclass(cls, Record), cls
        assert cls.__repr__ is Record.__repr__, f"{cls.__name__}: @attrs.frozen(repr=False)"


def test_a_record_prints_what_it_holds_and_no_defaults() -> None:
    job = structure({**JOB, "job_type": "ephemeral"}, JobInformation)
    assert repr(job) == (
        "JobInformation(id='j1', workflow_id='w1', workflow_name='template t', "
        "status=JobStatus.COMPLETED, created_at=2026-04-29T10:00:00Z, runtime=0:02:30, "
        "input_file_ids=('a.pdf',))"
    )
    odd = structure(
        {**JOB, "status": "PAUSED", "runtime": "0:02", "job_type": None}, JobInformation
    )
    text = repr(odd)
    assert "status=JobStatus('PAUSED')" in text and "job_type=None" in text  # not the default
    assert "unparsed={'runtime': '0:02'}" in text and "runtime=" not in text.split("unparsed")[0]
    details = structure(
        {"id": "j1", "processing_status": "SUCCESS",
         "node_stats": [{"ready": 0, "in_progress": 0, "success": 2, "failure": 0}]},
        JobDetails,
    )  # fmt: skip
    assert repr(details) == (
        "JobDetails(id='j1', processing_status=JobProcessingStatus.SUCCESS, node_stats=("
        "JobNodeDetails(ready=0, in_progress=0, success=2, failure=0),))"
    )
    assert "unparsed" not in repr(details) and "None" not in repr(details)


def test_to_dict_gives_plain_values_and_pandas_real_columns() -> None:
    jobs = [
        structure({**JOB, "id": f"j{i}", "status": s}, JobInformation)
        for i, s in enumerate(["COMPLETED", "FAILED", "PAUSED"])
    ]
    row = jobs[0].to_dict()
    assert row == {
        "id": "j0",
        "workflow_id": "w1",
        "workflow_name": "template t",
        "status": "COMPLETED",
        "created_at": datetime(2026, 4, 29, 10, tzinfo=UTC),
        "runtime": timedelta(minutes=2, seconds=30),
        "input_file_ids": ["a.pdf"],
        "output_node_files": None,
        "job_type": "ephemeral",
    }
    assert type(row["status"]) is str and type(row["job_type"]) is str  # values, not members
    assert json.loads(json.dumps(row, default=str))["created_at"] == "2026-04-29 10:00:00+00:00"
    frame = pd.DataFrame([j.to_dict() for j in jobs])
    assert list(frame.columns) == list(row)
    assert str(frame["created_at"].dtype).startswith("datetime64") and "UTC" in str(
        frame["created_at"].dtype
    )
    assert str(frame["runtime"].dtype).startswith("timedelta64")
    assert list(frame["status"]) == ["COMPLETED", "FAILED", "PAUSED"]
    assert (frame["status"] == "FAILED").sum() == 1


def test_to_dict_of_nested_records_and_an_odd_value() -> None:
    odd = structure({**JOB, "runtime": "soon"}, JobInformation)
    assert odd.to_dict()["runtime"] is None and odd.unparsed == {"runtime": "soon"}
    files = structure(
        {"id": "j1", "generated_at": "2026-04-29T10:00:05Z",
         "files": [{"record_id": "r", "document": "a.pdf", "status": "FAILURE", "error": "x",
                    "current_node": {"id": "n", "status": "FAILURE", "tries": 2}}]},
        JobFileStatus,
    )  # fmt: skip
    data = files.to_dict()
    assert data["generated_at"] == datetime(2026, 4, 29, 10, 0, 5, tzinfo=UTC)
    assert data["files"][0]["status"] == "FAILURE"
    assert data["files"][0]["current_node"] == {
        "id": "n", "status": "FAILURE", "tries": 2, "time_elapsed": None,
    }  # fmt: skip
    assert "unparsed" not in json.dumps(data, default=str)
    flow = structure(
        {"id": "w", "name": "n", "sources": [], "destinations": [], "status": "active",
         "created_at": "2026-04-29T10:00:00Z", "workflow_nodes": []},
        Workflow,
    )  # fmt: skip
    assert flow.to_dict()["status"] == "active" and flow.to_dict()["workflow_nodes"] == []


def _run(tmp_path: Path) -> JobRun:
    job = structure(JOB, JobInformation)
    spilled = tmp_path / "big.json"
    spilled.write_text("[]")
    return JobRun(
        job=job,
        files=(
            FileOutput("a.pdf", elements=[{"type": "Title", "text": "x" * 500}] * 10),
            FileOutput("<b>.pdf", error="<script>alert(1)</script>"),
            FileOutput("c.pdf", path=tmp_path / "c.pdf.json"),
            FileOutput("d.pdf", spilled=spilled),
            FileOutput("e.pdf", elements={"not": "a list"}),
        ),
    )


def test_a_run_prints_its_job_and_a_count_per_outcome_never_the_elements(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path)
    text = repr(run)
    assert text == (
        "JobRun(job='j1', status=COMPLETED, files=5: 2 in memory, 1 failed, 1 saved, 1 spilled)"
    )
    assert run.outcomes() == {"in memory": 2, "failed": 1, "saved": 1, "spilled": 1}
    shown = [repr(f) for f in run.files]
    assert shown == [
        "FileOutput('a.pdf', elements=10)",
        "FileOutput('<b>.pdf', error='<script>alert(1)</script>')",
        f"FileOutput('c.pdf', path={str(tmp_path / 'c.pdf.json')!r})",
        f"FileOutput('d.pdf', spilled={str(tmp_path / 'big.json')!r})",
        "FileOutput('e.pdf', elements=<dict>)",
    ]
    assert "xxxx" not in text + "".join(shown)
    assert run.files[3].elements == [] and repr(run.files[3]) == "FileOutput('d.pdf', elements=0)"


def test_a_run_renders_as_an_escaped_html_table(tmp_path: Path) -> None:
    page = _run(tmp_path)._repr_html_()
    assert page.startswith("<table>") and page.endswith("</table>")
    assert page.count("<tr>") == 1 + 5  # the header and one row per file
    assert "<td>a.pdf</td><td>in memory</td><td>10 elements</td>" in page
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;.pdf" in page
    assert "xxxx" not in page
