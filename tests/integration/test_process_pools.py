"""Typed errors cross process boundaries: real process pools talking to the emulator.

Workers are spawned (not forked) and call the emulator over loopback with their own
`JobsClient`; the errors they raise are pickled back to this process. Before errors pickled,
one 404 broke a `ProcessPoolExecutor` and made `multiprocessing.Pool.get()` hang.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import _pool_workers as workers
import pytest

from unstructured_jobs import (
    APIStatusError,
    AuthenticationError,
    JobInformation,
    JobsClient,
    NotFoundError,
    PermissionDeniedError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from unstructured_jobs.testing import Emulator, Fault, Schedule

KEY = "sk-pool-test-key-0123456789abcdefXYZ"
WRONG_KEY = "sk-wrong-key-9876543210fedcbaQRS"
WORKFLOW = "9d5a3c1e-1111-4222-8333-444455556666"
MISSING = "00000000-0000-4000-8000-000000000404"
FORBIDDEN = "00000000-0000-4000-8000-000000000403"
ODD = "00000000-0000-4000-8000-0000000000dd"
ODD_STATUS = "QUARANTINED_IN_A_WORKER"  # unknown to this release, first seen in a worker


class Server:
    def __init__(self, emu: Emulator, job: JobInformation) -> None:
        self.emu, self.url, self.job = emu, emu.url, job


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Emulator(api_key=KEY, schedule=Schedule.manual()).running_in_thread() as emu:
        with JobsClient(api_key=KEY, server_url=emu.url) as client:
            job = client.run_workflow(WORKFLOW)
        forbidden = Fault.raw(403, b'{"detail": "Forbidden"}', headers={"x-request-id": "req-403"})
        emu.inject(forbidden, method="GET", path=f"/api/v1/jobs/{FORBIDDEN}", times=None)
        odd = {
            "id": ODD,
            "workflow_id": WORKFLOW,
            "workflow_name": "workflow 9d5a3c1e",
            "status": ODD_STATUS,
            "created_at": "2025-03-04T05:06:07.890Z",
            "job_type": "ephemeral",
        }
        emu.inject(
            Fault.raw(200, json.dumps(odd).encode()),
            method="GET",
            path=f"/api/v1/jobs/{ODD}",
            times=None,
        )
        yield Server(emu, job)


def in_process(server: Server, api_key: str, job_id: str) -> APIStatusError:
    """The error this process gets for the same call, to compare with a worker's."""
    with pytest.raises(APIStatusError) as info:
        workers.get_job(server.url, api_key, job_id)
    return info.value


def assert_same_answer(received: APIStatusError, expected: APIStatusError) -> None:
    assert type(received) is type(expected)
    assert (str(received), received.args) == (str(expected), expected.args)
    fields = ("status", "body", "detail", "request_id", "method", "url", "message")
    assert {f: getattr(received, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert {k: v for k, v in received.headers.items() if k.lower() != "date"} == {
        k: v for k, v in expected.headers.items() if k.lower() != "date"
    }


def assert_no_key(exc: BaseException) -> None:
    """Neither the error nor the worker's traceback text that rides along holds a key."""
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        data = pickle.dumps(exc, protocol=protocol)
        assert KEY.encode() not in data and WRONG_KEY.encode() not in data
    remote = str(exc.__cause__)  # the worker's formatted traceback
    assert KEY not in remote and WRONG_KEY not in remote


def spawn() -> Any:
    return multiprocessing.get_context("spawn")


def test_process_pool_executor_returns_typed_errors_and_stays_usable(server: Server) -> None:
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn()) as pool:
        ok = pool.submit(workers.get_job, server.url, KEY, server.job.id)
        missing = pool.submit(workers.get_job, server.url, KEY, MISSING)
        denied = pool.submit(workers.get_job, server.url, WRONG_KEY, server.job.id)
        forbidden = pool.submit(workers.get_job, server.url, KEY, FORBIDDEN)
        listed = pool.submit(workers.list_job_ids, server.url, KEY)
        waited = pool.submit(workers.give_up_waiting, server.url, KEY, ODD)

        assert ok.result(timeout=60) == server.job
        assert listed.result(timeout=60) == [server.job.id]

        not_found = missing.exception(timeout=60)
        assert isinstance(not_found, NotFoundError)
        assert (not_found.status, not_found.body) == (404, {"detail": "Job not found"})
        assert not_found.detail == "Job not found" and not_found.request_id is None
        assert not_found.method == "GET" and not_found.url.endswith(f"/api/v1/jobs/{MISSING}")
        headers = {k.lower(): v for k, v in not_found.headers.items()}
        assert headers["content-type"].startswith("application/json")
        assert_same_answer(not_found, in_process(server, KEY, MISSING))
        assert_no_key(not_found)

        auth = denied.exception(timeout=60)
        assert isinstance(auth, AuthenticationError)
        assert (auth.status, auth.detail) == (401, "Invalid API key")
        assert_same_answer(auth, in_process(server, WRONG_KEY, server.job.id))
        assert_no_key(auth)

        perm = forbidden.exception(timeout=60)
        assert isinstance(perm, PermissionDeniedError)
        headers = {k.lower(): v for k, v in perm.headers.items()}
        assert (perm.status, perm.request_id, headers["x-request-id"]) == (
            403,
            "req-403",
            "req-403",
        )
        assert_same_answer(perm, in_process(server, KEY, FORBIDDEN))

        gave_up = waited.exception(timeout=60)
        assert isinstance(gave_up, WaitTimeoutError) and isinstance(gave_up, TimeoutError)
        assert gave_up.job_id == ODD and gave_up.last_job is not None
        assert gave_up.last_job.status.value == ODD_STATUS
        assert gave_up.last_job.status.is_known is False
        assert gave_up.last_job == workers.get_job(server.url, KEY, ODD)

        # The pool is not broken: it takes more work, on live workers.
        again = pool.submit(workers.get_job, server.url, KEY, server.job.id)
        assert again.result(timeout=60) == server.job


def test_multiprocessing_pool_get_raises_instead_of_hanging(server: Server) -> None:
    with spawn().Pool(processes=2) as pool:
        missing = pool.apply_async(workers.get_job, (server.url, KEY, MISSING))
        denied = pool.apply_async(workers.get_job, (server.url, WRONG_KEY, server.job.id))
        ok = pool.apply_async(workers.get_job, (server.url, KEY, server.job.id))

        with pytest.raises(NotFoundError) as not_found:
            missing.get(timeout=60)
        assert_same_answer(not_found.value, in_process(server, KEY, MISSING))
        with pytest.raises(AuthenticationError) as auth:
            denied.get(timeout=60)
        assert auth.value.status == 401 and isinstance(auth.value, UnstructuredJobsError)
        assert ok.get(timeout=60) == server.job
        # Still usable after the errors.
        assert pool.apply_async(workers.list_job_ids, (server.url, KEY)).get(timeout=60) == [
            server.job.id
        ]
