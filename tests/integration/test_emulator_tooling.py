"""Test tooling for users: refused fault paths, the record of what was received, the session
and environment fixtures, and ``serve --fail-files`` (issue 24, item 6)."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from cli_support import READY_LIMIT, Start

from unstructured_jobs import AsyncJobsClient, JobsClient
from unstructured_jobs.testing import Emulator, Fault, RecordedRequest, UnroutableFaultError

pytest_plugins = ["pytester"]

JOBS = "/api/v1/jobs/"
JOB = "/api/v1/jobs/3fa85f64-5717-4562-b3fc-2c963f66afa6"
KEY = "tooling-secret-key-77"


# -- inject() refuses what no request can match ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "said"),
    [
        (None, "/api/v1/job/", "did you mean '/api/v1/jobs/'?"),
        ("POST", "/api/v1/jobs", "did you mean '/api/v1/jobs/'?"),  # the client sends the slash
        (None, "/api/v1/jobs/?status=FAILED", "faults match the path only"),
        ("PUT", None, "no route of the emulator takes PUT requests"),
        ("GET", JOB + "/cancel", "no GET request to the emulator can match"),  # POST only
        (None, JOB + "/downloads", f"did you mean '{JOB}/download'?"),
        (None, "/api/v2/*", "can match the fault path '/api/v2/*'"),
        (None, "/api/v1/jobs/x/y/z/*", "can match"),
    ],
)
def test_inject_refuses_a_fault_that_could_never_fire(
    method: str | None, path: str | None, said: str
) -> None:
    emu = Emulator()
    with pytest.raises(UnroutableFaultError) as caught:
        emu.inject(Fault.status(503), method=method, path=path)
    assert said in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert emu.injected_faults() == []  # refused at once: nothing was registered


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", JOBS),
        ("GET", JOB),
        ("GET", JOB + "/download"),
        ("POST", JOB + "/cancel"),
        (None, "/api/v1/jo*"),
        (None, "/api/v1/jobs/3fa8*"),  # a prefix of a job id
        ("GET", "/api/v1/jobs/3fa85f64/d*"),
        (None, "*"),
        ("POST", "/api/v1/workflows/w1/run"),
        ("GET", None),
    ],
)
def test_inject_accepts_every_path_a_request_can_take(method: str | None, path: str | None) -> None:
    emu = Emulator()
    emu.inject(Fault.status(503), method=method, path=path)
    assert emu.pending_faults == 1


async def test_a_refused_path_over_http_is_422_naming_it() -> None:
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        fault = {"kind": "status", "status": 503, "method": "POST", "path": "/api/v1/job/"}
        async with http.post("/_emulator/faults", json=fault) as resp:
            assert resp.status == 422
            (detail,) = (await resp.json())["detail"]
        assert detail["loc"] == ["body", "path"] and detail["input"] == "/api/v1/job/"
        assert "did you mean '/api/v1/jobs/'?" in detail["msg"]
        assert emu.injected_faults() == []


# -- the record of what was received ----------------------------------------------------------


async def test_requests_record_headers_without_the_key_and_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"a" * 1000)
    (tmp_path / "b.txt").write_bytes(b"hello")
    async with (
        Emulator(api_key=KEY) as emu,
        AsyncJobsClient(api_key=KEY, server_url=emu.url) as client,
    ):
        job = await client.create_job(
            template_id="hi_res_partition", input_files=[tmp_path / "a.pdf", tmp_path / "b.txt"]
        )
        await client.list_jobs(status="COMPLETED")
        created, listed = emu.requests
        assert created == RecordedRequest("POST", JOBS, {}, 200, None, JOBS)
        assert [(f.filename, f.size) for f in created.files] == [("a.pdf", 1000), ("b.txt", 5)]
        assert created.files == tuple(emu.jobs[job.id].files)
        assert created.header("unstructured-api-key") == "<redacted>"
        assert created.header("USER-AGENT") is not None
        assert (created.header("content-type") or "").startswith("multipart/form-data")
        assert listed.query == {"status": "COMPLETED"} and listed.files == ()
        assert KEY not in repr(emu.requests)

        async with aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http:
            async with http.get("/_emulator/received") as resp:
                assert resp.status == 200
                answer = await resp.json()
            async with http.get("/_emulator/received", headers={"unstructured-api-key": "x"}) as r:
                assert r.status == 401  # the control endpoints take the API's key
        assert KEY not in json.dumps(answer)
        first, second = answer["requests"]  # the control requests are not recorded
        assert (first["method"], first["path"], first["status"]) == ("POST", JOBS, 200)
        assert [(f["filename"], f["size"]) for f in first["files"]] == [("a.pdf", 1000),
                                                                        ("b.txt", 5)]  # fmt: skip
        assert ["unstructured-api-key", "<redacted>"] in first["headers"]
        assert second["query"] == {"status": "COMPLETED"} and second["files"] == []


async def test_a_faulted_upload_is_recorded_without_files(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"a")
    async with (
        Emulator() as emu,
        AsyncJobsClient(api_key="k", server_url=emu.url, max_retries=0) as client,
    ):
        emu.inject(Fault.status(500), method="POST", path=JOBS)
        with pytest.raises(Exception, match="500"):
            await client.create_job(template_id="t", input_files=[tmp_path / "a.pdf"])
        (request,) = emu.requests
        assert (request.status, request.fault, request.files) == (500, "status", ())


# -- the fixtures (pytester: as a user's test suite sees them) -------------------------------


def run_inner(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(body)
    return pytester.runpytest("-p", "no:cacheprovider")


def test_env_fixture_points_code_that_reads_the_environment_at_the_emulator(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNSTRUCTURED_API_URL", "http://127.0.0.1:9/elsewhere")
    monkeypatch.setenv("UNSTRUCTURED_API_KEY", "outer")
    result = run_inner(
        pytester,
        """
import os
from unstructured_jobs import JobsClient


def make_report():  # the code under test builds its own client from the environment
    with JobsClient() as client:
        return [job.status for job in client.list_jobs()]


def test_uses_the_emulator(unstructured_emulator_env):
    emu = unstructured_emulator_env
    assert os.environ["UNSTRUCTURED_API_URL"] == emu.url
    assert os.environ["UNSTRUCTURED_API_KEY"] == emu.api_key
    with JobsClient() as client:
        client.create_job(template_id="hi_res_partition")
    assert make_report() == ["COMPLETED"]
    assert [r.method for r in emu.requests] == ["POST", "GET"]


def test_restored_afterwards():
    assert os.environ["UNSTRUCTURED_API_URL"] == "http://127.0.0.1:9/elsewhere"
    assert os.environ["UNSTRUCTURED_API_KEY"] == "outer"
""",
    )
    result.assert_outcomes(passed=2)


def test_session_fixture_is_one_emulator_and_checks_its_faults_at_the_end(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
from unstructured_jobs.testing import Fault

seen = []


def test_first(unstructured_emulator_session):
    seen.append(unstructured_emulator_session)
    unstructured_emulator_session.inject(Fault.status(503), path="/api/v1/templates/*")


def test_second(unstructured_emulator_session):
    assert unstructured_emulator_session is seen[0]  # the same emulator, still running
    assert unstructured_emulator_session.pending_faults == 1  # state carries over
""",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_second*",
            "*unstructured_emulator_session: 1 injected fault(s) fired fewer times than asked:*",
            "*any method /api/v1/templates/*: Fault.status(503): fired 0 of 1 times*",
        ]
    )


def test_session_fixture_is_quiet_when_its_faults_fired(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
import urllib.error
import urllib.request

from unstructured_jobs.testing import Fault


def test_fires(unstructured_emulator_session):
    emu = unstructured_emulator_session
    emu.inject(Fault.status(503), method="GET", path="/api/v1/templates/")
    request = urllib.request.Request(emu.url + "/api/v1/templates/", headers=emu.headers)
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as exc:
        exc.close()
        assert exc.code == 503
""",
    )
    result.assert_outcomes(passed=1)


def _example(name: str) -> str:
    """The code block of docs/emulator.md that follows the marker comment `name`."""
    text = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()
    match = re.search(rf"<!-- {re.escape(name)} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"no example {name!r} in docs/emulator.md"
    return match[1]


def test_the_testing_guide_example_runs(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_report=_example("example: test_report.py"),
        report=_example("example: report.py"),
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3)


# -- serve --fail-files --------------------------------------------------------------------


def test_serve_fails_the_files_a_glob_names(start: Start, tmp_path: Path) -> None:
    proc = start("serve", "--port", "0", "--fail-files", "*.bad.*", "--fail-files", "broken*",
                 env={}, cwd=tmp_path)  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    for name in ("a.pdf", "b.bad.pdf", "broken.txt"):
        (tmp_path / name).write_bytes(b"x")
    with JobsClient(api_key="k", server_url=url) as client:
        some = client.create_job(
            template_id="t", input_files=[tmp_path / n for n in ("a.pdf", "b.bad.pdf")]
        )
        every = client.create_job(template_id="t", input_files=[tmp_path / "broken.txt"])
        none = client.create_job(template_id="t", input_files=[tmp_path / "a.pdf"])
        some, every, none = (client.wait_for_job(j.id, timeout=60) for j in (some, every, none))
        assert (some.status, every.status, none.status) == ("COMPLETED", "FAILED", "COMPLETED")
        assert [f.document for f in client.get_job_failed_files(some.id).failed_files] == [
            "b.bad.pdf"
        ]
        assert client.get_job_failed_files(none.id).failed_files == ()
    with urllib.request.urlopen(
        urllib.request.Request(url + "/_emulator/received", headers={"unstructured-api-key": "k"})
    ) as resp:
        received = json.load(resp)["requests"]
    assert [f["filename"] for f in received[0]["files"]] == ["a.pdf", "b.bad.pdf"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=READY_LIMIT) == 0
