"""Records and the converter: round trips, open enums, strictness, named errors."""

from __future__ import annotations

import gc
import pickle
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unstructured_jobs import (
    CancelJobResult,
    FailedFile,
    JobDetails,
    JobFailedFiles,
    JobInformation,
    JobNodeDetails,
    JobProcessingStatus,
    JobStatus,
    NodeFileMetadata,
    WorkflowJobType,
    _models,
)
from unstructured_jobs._converter import (
    ShapeError,
    format_duration,
    parse_datetime,
    parse_duration,
    structure,
    unstructure,
)

DOC_JOB = {
    "id": "b2c3d4e5-6f7a-8b9c-0d1e-2f3a4b5c6d7e",
    "workflow_id": "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c",
    "workflow_name": "My ETL Workflow",
    "status": "COMPLETED",
    "created_at": "2026-01-01T00:00:00Z",
    "runtime": "PT2M30S",
    "input_file_ids": None,
    "output_node_files": [
        {
            "node_id": "n1a2b3c4-5d6e-7f8a-9b0c-1d2e3f4a5b6c",
            "file_id": "output-001.json",
            "node_type": "destination",
            "node_subtype": "s3",
        }
    ],
    "job_type": "ephemeral",
}


def test_documented_example_parses() -> None:
    job = structure(DOC_JOB, JobInformation)
    assert job.status is JobStatus.COMPLETED and job.status.is_terminal
    assert job.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert job.runtime == timedelta(minutes=2, seconds=30)
    assert job.output_node_files == (
        NodeFileMetadata(
            "n1a2b3c4-5d6e-7f8a-9b0c-1d2e3f4a5b6c", "output-001.json", "destination", "s3"
        ),
    )
    assert job.job_type is WorkflowJobType.EPHEMERAL


def test_optional_fields_default() -> None:
    minimal = {
        k: DOC_JOB[k] for k in ("id", "workflow_id", "workflow_name", "status", "created_at")
    }
    job = structure(minimal, JobInformation)
    assert (job.runtime, job.input_file_ids, job.output_node_files) == (None, None, None)
    assert job.job_type is WorkflowJobType.EPHEMERAL


def test_unknown_enum_values_and_extra_fields_are_tolerated() -> None:
    job = structure(
        {**DOC_JOB, "status": "PAUSED", "job_type": "streaming", "new_field": {"x": 1}},
        JobInformation,
    )
    assert job.status == "PAUSED" and not job.status.is_known and not job.status.is_terminal
    assert JobStatus("PAUSED") is job.status
    assert job.job_type.value == "streaming"
    assert unstructure(job)["status"] == "PAUSED"


def test_unknown_enum_values_do_not_grow_the_process() -> None:
    """100,000 distinct unknown values (a server or a fuzzer inventing them) kept about 56 MB for
    the life of the process; now only the last `PSEUDO_MEMBERS_KEPT` are kept."""
    known = {cls: len(cls._value2member_map_) for cls in (JobStatus, WorkflowJobType)}
    gc.collect()
    outer = tracemalloc.is_tracing()  # PYTHONTRACEMALLOC=1: leave it running
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            JobStatus(f"NEW_{i}")
        WorkflowJobType("streaming")
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        if not outer:
            tracemalloc.stop()
    assert kept < 4 * 1024 * 1024, f"{kept:,} bytes kept"  # was ~56 MB
    assert {cls: len(cls._value2member_map_) for cls in known} == known
    last = JobStatus("NEW_99999")
    assert last == "NEW_99999" and not last.is_known and not last.is_terminal


def test_a_forgotten_unknown_value_comes_back_equal() -> None:
    """Past the bound a value is made again: a new object, but equal, same hash, same class,
    same properties; known members stay singletons."""
    first = JobStatus("PAUSED")
    assert JobStatus("PAUSED") is first  # recently seen values are one object
    for i in range(_models.PSEUDO_MEMBERS_KEPT + 1):
        JobStatus(f"FILLER_{i}")
    again = JobStatus("PAUSED")
    assert again == first == "PAUSED" and hash(again) == hash(first) == hash("PAUSED")
    assert {first: 1}[again] == 1 and len({first, again, "PAUSED"}) == 1
    assert type(again) is JobStatus and isinstance(again, JobStatus)
    assert (again.value, again.name, str(again), repr(again)) == (
        "PAUSED",
        "PAUSED",
        "PAUSED",
        "<JobStatus.PAUSED: 'PAUSED'>",
    )
    assert not again.is_known and not again.is_terminal and again not in list(JobStatus)
    assert pickle.loads(pickle.dumps(again)) == again
    assert JobStatus(again) is again
    assert JobStatus("COMPLETED") is JobStatus.COMPLETED and JobStatus.COMPLETED.is_known


def test_an_unknown_value_spelt_like_a_members_name_is_not_known() -> None:
    """``job_type: "EPHEMERAL"`` is not the known value ``"ephemeral"``: it must not claim to be."""
    upper = WorkflowJobType("EPHEMERAL")
    assert upper != WorkflowJobType.EPHEMERAL and upper.value == "EPHEMERAL"
    assert not upper.is_known
    assert WorkflowJobType("ephemeral").is_known


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"created_at": None}, "$.created_at"),
        ({"id": 5}, "$.id"),
        ({"status": 3}, "$.status"),
        ({"status": None, "runtime": "odd"}, "$.status"),
    ],
)
def test_ill_typed_required_fields_are_named(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ShapeError) as info:
        structure({**DOC_JOB, **patch}, JobInformation)
    assert any(message in m for m in info.value.messages), info.value.messages
    assert not any("runtime" in m for m in info.value.messages)


@pytest.mark.parametrize(
    "patch",
    [
        {"runtime": "two minutes"},
        {"runtime": "0:02:30"},
        {"runtime": ""},
        {"output_node_files": [{"node_id": "n"}]},
        {"input_file_ids": "ab"},
        {"output_node_files": {"k": 1}},
        {"job_type": 5},
    ],
)
def test_odd_optional_fields_get_their_default_and_stay_reachable(patch: dict[str, Any]) -> None:
    job = structure({**DOC_JOB, **patch}, JobInformation)
    ((name, value),) = patch.items()
    assert getattr(job, name) == attrs.fields_dict(JobInformation)[name].default
    assert dict(job.unparsed) == patch
    assert unstructure(job)[name] == value  # back to JSON as the server sent it
    assert pickle.loads(pickle.dumps(job)).unparsed == patch


def test_null_job_type_is_none_and_an_absent_one_the_default() -> None:
    assert structure({**DOC_JOB, "job_type": None}, JobInformation).job_type is None
    absent = {k: v for k, v in DOC_JOB.items() if k != "job_type"}
    assert structure(absent, JobInformation).job_type is WorkflowJobType.EPHEMERAL


def test_odd_optional_fields_of_other_records() -> None:
    node = {"ready": 1, "in_progress": 0, "success": 3, "failure": 0, "node_name": 7}
    details = structure(
        {"id": "j", "processing_status": "SUCCESS", "node_stats": [node]}, JobDetails
    )
    assert details.node_stats[0].node_name is None
    assert details.node_stats[0].unparsed == {"node_name": 7}
    with pytest.raises(ShapeError, match=r"\$\.node_stats\[0\]\.ready"):
        structure({"id": "j", "processing_status": "SUCCESS", "node_stats": [{**node, "ready": "1"}]},
                  JobDetails)  # fmt: skip


def test_missing_required_field_is_named() -> None:
    data = dict(DOC_JOB)
    del data["workflow_name"]
    with pytest.raises(ShapeError) as info:
        structure(data, JobInformation)
    assert "required field missing @ $.workflow_name" in info.value.messages


def test_primitives_are_not_coerced() -> None:
    node = {"ready": 1, "in_progress": 0, "success": "3", "failure": 0}
    with pytest.raises(ShapeError):
        structure({"id": "j", "processing_status": "SUCCESS", "node_stats": [node]}, JobDetails)
    with pytest.raises(ShapeError):
        structure({**node, "success": True}, JobNodeDetails)


def test_non_object_answer_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match="expected a JSON object"):
        structure([DOC_JOB], JobInformation)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.123Z", datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)),
        (
            "2026-01-01T00:00:00.1234567Z",
            datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        ),
        ("2026-01-01T02:00:00+02:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_are_timezone_aware(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected and parsed.tzinfo is not None


def test_tolerant_timestamp_parser_for_forms_fromisoformat_refuses() -> None:
    assert parse_datetime("2026-01-01T00:00:00.1234567z").microsecond == 123456
    assert parse_datetime("2026-01-01T00:00:00,5Z").microsecond == 500000
    assert parse_datetime("2026-01-01T00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_datetime(" 2026-01-01T00:00:00+02:00\n") == datetime(2025, 12, 31, 22, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT2M30S", 150), ("PT0.2S", 0.2), ("P1DT2H", 93600), ("P1W", 604800), ("PT0S", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["P", "PT", "P1Y", "2 minutes", "P1DT"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_cancel_result_keeps_the_raw_object() -> None:
    result = structure(
        {"id": "j", "status": "STOPPED", "message": "ok", "extra": 1}, CancelJobResult
    )
    assert (result.id, result.status, result.message) == ("j", JobStatus.STOPPED, "ok")
    assert result.raw["extra"] == 1
    assert structure({}, CancelJobResult).status is None


# ---------------------------------------------------------------- property tests

texts = st.text(min_size=1, max_size=20)
statuses = st.sampled_from(list(JobStatus)) | st.from_regex(r"[A-Z_]{3,12}", fullmatch=True).map(
    JobStatus
)
aware = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
durations = st.integers(0, 10**7).map(lambda ms: timedelta(milliseconds=ms))
nodes = st.builds(NodeFileMetadata, texts, texts, texts, texts)
jobs = st.builds(
    JobInformation,
    id=texts,
    workflow_id=texts,
    workflow_name=st.text(max_size=20),
    status=statuses,
    created_at=aware,
    runtime=st.none() | durations,
    input_file_ids=st.none() | st.lists(texts, max_size=3).map(tuple),
    output_node_files=st.none() | st.lists(nodes, max_size=3).map(tuple),
    job_type=st.none() | st.sampled_from(list(WorkflowJobType)),
)
details = st.builds(
    JobDetails,
    id=texts,
    processing_status=st.sampled_from(list(JobProcessingStatus)),
    node_stats=st.lists(
        st.builds(
            JobNodeDetails,
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 99),
            st.none() | texts,
            st.none() | texts,
            st.none() | texts,
        ),
        max_size=3,
    ).map(tuple),
    message=st.none() | texts,
)
failed = st.builds(
    JobFailedFiles, st.lists(st.builds(FailedFile, texts, texts), max_size=3).map(tuple)
)


@given(jobs)
def test_job_information_round_trips(job: JobInformation) -> None:
    assert structure(unstructure(job), JobInformation) == job


@given(details)
def test_job_details_round_trip(value: JobDetails) -> None:
    assert structure(unstructure(value), JobDetails) == value


@given(failed)
def test_failed_files_round_trip(value: JobFailedFiles) -> None:
    assert structure(unstructure(value), JobFailedFiles) == value


# ---------------------------------------------------------------- the fast path for job lists

json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5)
field_values = {
    "id": st.text(max_size=8) | json_scalars,
    "workflow_id": st.text(max_size=8) | json_scalars,
    "workflow_name": st.text(max_size=8) | json_scalars,
    "status": st.sampled_from(["COMPLETED", "NEW_ONE", ""]) | json_scalars,
    "created_at": st.sampled_from(["2026-01-01T00:00:00Z", "bad"]) | json_scalars,
    "runtime": st.sampled_from(["PT1S", "P1Y", None, 3]) | json_scalars,
    "input_file_ids": st.none() | st.lists(st.text(max_size=3) | json_scalars, max_size=2),
    "output_node_files": st.none()
    | st.lists(
        st.fixed_dictionaries(
            {k: st.text(max_size=3) for k in ("node_id", "file_id", "node_type", "node_subtype")}
        )
        | st.fixed_dictionaries({"node_id": json_scalars}),
        max_size=2,
    ),
    "job_type": st.sampled_from(["ephemeral", "new_kind"]) | json_scalars,
}
job_dicts = st.fixed_dictionaries(
    {k: v for k, v in field_values.items() if k in ("id", "status")},
    optional={k: v for k, v in field_values.items() if k not in ("id", "status")},
)


@given(job_dicts)
def test_fast_job_path_agrees_with_cattrs(data: dict[str, Any]) -> None:
    """The fast hook for JobInformation never accepts what cattrs would reject, nor differs."""
    from unstructured_jobs._converter import _detailed_job, _structure_job

    try:
        job = _detailed_job(data, JobInformation)
        expected: object = (job, dict(job.unparsed))
    except Exception as exc:
        expected = type(exc)
    try:
        job = _structure_job(data, JobInformation)
        got: object = (job, dict(job.unparsed))
    except Exception as exc:
        got = type(exc)
    assert got == expected
