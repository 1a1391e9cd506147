"""Pure parts of issue 22: the file-status pacer's turns, reading a busy workflow's answer, and
the typed `input`/`ctx` of validation errors. No I/O."""

from __future__ import annotations

import pytest

from unstructured_jobs import UnprocessableEntityError, ValidationErrorDetail, WorkflowBusyError
from unstructured_jobs._core import error_for_status, workflow_busy_error
from unstructured_jobs._http.pacing import PRUNE_ABOVE, CallPacer
from unstructured_jobs.testing import FakeClock

WF = "f0a1b2c3-4d5e-4f7a-8b9c-0d1e2f3a4b5c"
RUN = f"https://platform.unstructuredapp.io/api/v1/workflows/{WF}/run"
BUSY_TEXT = "There is a running job in progress. No new job run."


def pacer(clock: FakeClock, calls: int = 3) -> CallPacer:
    return CallPacer(calls=calls, window=60.0, margin=0.5, clock=clock)


def test_turns_are_free_until_the_window_is_full_then_wait_for_the_oldest() -> None:
    clock = FakeClock(0.0)
    p = pacer(clock)
    assert [p.reserve("job") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert p.reserve("other") == 0.0  # keys have windows of their own
    assert p.reserve("job") == 60.5
    assert p.reserve("job") == 60.5  # the second and third of the first three
    assert p.reserve("job") == 60.5
    assert p.reserve("job") == 121.0  # then the turn at 60.5 is the oldest
    clock.advance(200)
    assert p.reserve("job") == 0.0  # time went by: free again


def test_calls_spread_over_the_window_wait_only_as_long_as_needed() -> None:
    clock = FakeClock(0.0)
    p = pacer(clock)
    for _ in range(3):
        assert p.reserve("job") == 0.0
        clock.advance(10)  # calls at 0, 10, 20; now 30
    assert p.reserve("job") == 30.5  # the call at 0 is a minute old at 60 (+ 0.5)
    clock.advance(40)  # 70: the turns are 10, 20, 60.5
    assert p.reserve("job") == pytest.approx(0.5)  # 10 + 60.5


async def test_wait_turn_sleeps_on_the_clock_and_old_keys_are_forgotten() -> None:
    clock = FakeClock(0.0)
    p = pacer(clock, calls=1)
    await p.wait_turn("a")
    await p.wait_turn("a")
    assert clock.sleeps == [60.5]
    for i in range(PRUNE_ABOVE + 1):
        p.reserve(f"job-{i}")
    clock.advance(61)
    p.reserve("new")
    assert len(p._turns) == 1  # every key whose window had passed is gone
    with pytest.raises(ValueError):
        CallPacer(calls=0, window=60, margin=0, clock=clock)


def test_the_busy_answer_is_read_only_where_it_means_it() -> None:
    def read(body: object, *, url: str = RUN, method: str = "POST") -> WorkflowBusyError | None:
        return workflow_busy_error(method=method, url=url, status=202, headers={}, body=body)

    error = read({"detail": BUSY_TEXT})
    assert error is not None and (error.workflow_id, error.running_job_id) == (WF, None)
    assert read({"detail": BUSY_TEXT}, url=RUN + "/") is not None
    assert read({"detail": "Accepted"}) is None  # says nothing of a running job
    assert read({"detail": BUSY_TEXT}, method="GET") is None
    assert read({"detail": BUSY_TEXT}, url=RUN.replace("/run", "")) is None
    assert read([BUSY_TEXT]) is None and read({"detail": ["no new job"]}) is None
    assert read({"detail": BUSY_TEXT, "id": "x", "status": "SCHEDULED"}) is None  # a job
    running = "7d1c9a2e-3b4f-4a5b-9c6d-7e8f9a0b1c2d"
    named = read({"detail": BUSY_TEXT, "running_job_id": running})
    assert named is not None and named.running_job_id == running


def test_a_409_for_a_busy_workflow_is_the_same_error() -> None:
    body = b'{"detail": "There is a running job in progress. No new job run."}'
    error = error_for_status(method="POST", url=RUN, status=409, headers={}, body=body)
    assert type(error) is WorkflowBusyError and error.status == 409
    other = error_for_status(method="GET", url=RUN, status=409, headers={}, body=body)
    assert type(other) is not WorkflowBusyError


def test_validation_errors_carry_input_and_ctx() -> None:
    body = (
        b'{"detail": [{"type": "uuid_parsing", "loc": ["path", "job_id"], "msg": "Input should '
        b'be a valid UUID", "input": "abc", "ctx": {"error": "invalid length"}},'
        b' {"type": "missing", "loc": ["body", "x"], "msg": "Field required", "input": null},'
        b' {"type": "t", "loc": [], "msg": "m", "input": {"a": [1]}, "ctx": "odd"}]}'
    )
    error = error_for_status(method="GET", url="u", status=422, headers={}, body=body)
    assert isinstance(error, UnprocessableEntityError)
    first, second, third = error.errors
    assert (first.input, first.ctx) == ("abc", {"error": "invalid length"})
    assert (second.input, second.ctx) == (None, None)
    assert third.input == {"a": [1]} and third.ctx is None and third.unparsed == {"ctx": "odd"}
    assert hash(third) == hash(ValidationErrorDetail(loc=(), msg="m", type="t"))
