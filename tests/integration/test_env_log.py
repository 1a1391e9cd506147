"""``UNSTRUCTURED_JOBS_LOG=debug|info``: a line per attempt on stderr with no code (issue 24,
item 1). Each case runs a child Python that uses the client as a user would, with the variable
set (or not), against an emulator in this process."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest
from cli_support import READY_LIMIT, process_env

from unstructured_jobs import JobsClient
from unstructured_jobs._http.log import configure_from_environment, log_attempt
from unstructured_jobs.testing import Emulator, Fault

KEY = "env-log-secret-key-4242"
SCRIPT = """
import sys
from unstructured_jobs import JobsClient
with JobsClient(api_key=sys.argv[1], server_url=sys.argv[2], max_retries=2) as client:
    client.list_jobs(status="FAILED")
    client.get_job("3fa85f64-5717-4562-b3fc-2c963f66afa6")
print("done")
"""
JOB = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def _run(emu: Emulator, value: str | None) -> subprocess.CompletedProcess[str]:
    env = {"UNSTRUCTURED_JOBS_LOG": value, "PYTHONWARNINGS": None}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, KEY, emu.url], env=process_env(env), text=True,
        capture_output=True, timeout=READY_LIMIT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def emu(unstructured_emulator: Emulator) -> Emulator:
    emu = unstructured_emulator
    emu.inject(Fault.status(503, retry_after="0"), method="GET", path="/api/v1/jobs/")
    emu.inject(Fault.status(404, detail="Job not found"), method="GET", path=f"/api/v1/jobs/{JOB}")
    return emu


@pytest.mark.parametrize("value", ["info", "DEBUG"])
def test_the_variable_logs_each_attempt_on_stderr(emu: Emulator, value: str) -> None:
    done = _run(emu, value)
    assert done.returncode == 1 and "NotFoundError" in done.stderr  # the 404 ends the script
    lines = [line for line in done.stderr.splitlines() if " unstructured_jobs " in line]
    host = emu.url.removeprefix("http://")
    attempts = [line for line in lines if " -> " in line]
    pattern = (
        r"\S+ \S+ unstructured_jobs INFO GET /api/v1/jobs/\?status=FAILED -> {status} "
        rf"\({re.escape(host)}, attempt {{attempt}}, \d+ ms\)$"
    )
    assert re.match(pattern.format(status=503, attempt=1), attempts[0]), attempts
    assert re.match(pattern.format(status=200, attempt=2), attempts[1]), attempts
    assert re.search(rf"GET /api/v1/jobs/{JOB} -> 404 \(.*attempt 1, \d+ ms\)$", attempts[2])
    assert len(attempts) == 3
    assert any("INFO GET /api/v1/jobs/ failed (HTTP 503); retry 1/2" in line for line in lines)
    assert KEY not in done.stderr


def test_silent_by_default_and_a_wrong_value_is_said(emu: Emulator) -> None:
    quiet = _run(emu, None)
    assert quiet.returncode == 1 and "NotFoundError" in quiet.stderr  # ran, and said nothing:
    assert " unstructured_jobs INFO " not in quiet.stderr and "-> 200" not in quiet.stderr
    emu.reset()
    emu.inject(Fault.status(404), method="GET", path=f"/api/v1/jobs/{JOB}")
    wrong = _run(emu, "verbose")
    assert "UNSTRUCTURED_JOBS_LOG='verbose' is not a log level" in wrong.stderr
    assert "-> 200" not in wrong.stderr


def test_the_request_id_and_the_extra_fields(
    caplog: pytest.LogCaptureFixture, unstructured_emulator: Emulator
) -> None:
    emu = unstructured_emulator
    emu.inject(Fault.raw(200, b"[]", headers={"x-request-id": "req-77"}), path="/api/v1/jobs/")
    caplog.set_level(logging.INFO, logger="unstructured_jobs")
    with JobsClient(api_key=KEY, server_url=emu.url) as client:
        client.list_jobs(workflow_id="3fa85f64-5717-4562-b3fc-2c963f66afa6")
    (record,) = [r for r in caplog.records if " -> " in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.getMessage().endswith(", request id req-77)")
    host = emu.url.removeprefix("http://")
    fields = {
        name: getattr(record, name)
        for name in ("http_method", "http_host", "http_path", "http_query", "http_status",
                     "attempt", "request_id")
    }  # fmt: skip
    assert fields == {
        "http_method": "GET", "http_host": host, "http_path": "/api/v1/jobs/",
        "http_query": "workflow_id=3fa85f64-5717-4562-b3fc-2c963f66afa6", "http_status": 200,
        "attempt": 1, "request_id": "req-77",
    }  # fmt: skip
    assert isinstance(record.elapsed_ms, float) and record.elapsed_ms >= 0


def test_a_failed_attempt_is_one_line_without_a_status(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="unstructured_jobs")
    log_attempt(
        "POST", "https://user:pw@example.test:8443/gw/api/v1/jobs/", None, None, 2, 0.0031, None,
        error=ConnectionResetError("reset by peer"),
    )  # fmt: skip
    (record,) = caplog.records
    assert record.getMessage() == (
        "POST /gw/api/v1/jobs/ -> failed: ConnectionResetError: reset by peer "
        "(example.test:8443, attempt 2, 3 ms)"
    )  # no credentials of the URL
    assert (record.http_status, record.http_host) == (None, "example.test:8443")


def test_configuring_twice_adds_one_handler() -> None:
    logger = logging.getLogger("unstructured_jobs")
    handlers, level = list(logger.handlers), logger.level
    try:
        assert configure_from_environment({"UNSTRUCTURED_JOBS_LOG": "info"})
        assert configure_from_environment({"UNSTRUCTURED_JOBS_LOG": "debug"})
        assert len(logger.handlers) == len(handlers) + 1 and logger.level == logging.DEBUG
        assert not configure_from_environment({})
    finally:
        logger.handlers[:], logger.level = handlers, level


def test_the_cli_with_the_variable_and_debug_prints_each_line_once(
    unstructured_emulator: Emulator,
) -> None:
    env = {"UNSTRUCTURED_JOBS_LOG": "info", "UNSTRUCTURED_API_KEY": KEY,
           "UNSTRUCTURED_API_URL": unstructured_emulator.url}  # fmt: skip
    for debug in ([], ["--debug"]):
        done = subprocess.run(
            [sys.executable, "-m", "unstructured_jobs", *debug, "list"], env=process_env(env),
            text=True, capture_output=True, timeout=READY_LIMIT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("GET /api/v1/jobs/ -> 200") == 1, (debug, done.stderr)
        assert KEY not in done.stderr
