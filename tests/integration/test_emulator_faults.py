"""Injected faults must fire: ``assert_all_faults_fired``, the fixtures' teardown check, and
the HTTP control endpoint ``/_emulator/faults`` (driven by raw aiohttp over loopback)."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from unstructured_jobs.testing import (
    Emulator,
    Fault,
    InjectedFault,
    RecordedRequest,
    Schedule,
    UnfiredFaultsError,
)

pytest_plugins = ["pytester"]

JOBS = "/api/v1/jobs/"
FAULTS = "/_emulator/faults"
TEMPLATE = "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c"


def make_form(files: list[tuple[str, bytes]] | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("request_data", json.dumps({"template_id": TEMPLATE}))
    for name, data in files or []:
        form.add_field("input_files", data, filename=name)
    return form


# -- assert_all_faults_fired, without the fixtures ---------------------------------------------


async def test_assert_all_faults_fired_lists_each_unfired_fault() -> None:
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        emu.assert_all_faults_fired()  # nothing injected: nothing to complain about
        first = emu.inject(Fault.status(503, retry_after="1"), method="post", path=JOBS, times=2)
        assert first == InjectedFault(1, Fault.status(503, retry_after="1"), "POST", JOBS, 2, 0,
                                      False)  # fmt: skip
        emu.inject(Fault.drop_after(), path=f"{JOBS}{TEMPLATE}/cancel", times=None)
        emu.inject(Fault.raw(200, b"<html>"), method="GET", path=JOBS, times=3)
        emu.inject(Fault.delay(0), method="GET", path="/api/v1/templates/nowhere", optional=True)
        async with http.post(JOBS, data=make_form()) as resp:
            assert resp.status == 503
        for _ in range(3):
            async with http.get(JOBS) as resp:
                assert resp.status == 200
        with pytest.raises(UnfiredFaultsError) as caught:
            emu.assert_all_faults_fired()
        message = str(caught.value)
        assert isinstance(caught.value, AssertionError)
        assert [inj.id for inj in caught.value.unfired] == [1, 2]
        assert "2 injected fault(s) fired fewer times than asked" in message
        assert (
            "  - POST /api/v1/jobs/: Fault.status(503, retry_after='1'): fired 1 of 2 times\n"
            f"  - any method {JOBS}{TEMPLATE}/cancel: Fault.drop_after(): fired 0 times, "
            "expected at least once (times=None)\n"
        ) in message
        assert (
            "Fault.raw" not in message and "/api/v1/templates/nowhere" not in message
        )  # satisfied, optional
        assert "optional=True" in message and "assert_all_faults_fired=False" in message
        assert [(i.fired, i.satisfied) for i in emu.injected_faults()] == [
            (1, False), (0, False), (3, True), (0, False)
        ]  # fmt: skip
        assert emu.pending_faults == 3  # the raw fault is used up

        async with http.post(JOBS, data=make_form()) as resp:
            assert resp.status == 503
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.post(f"{JOBS}{TEMPLATE}/cancel"):
                pass
        emu.assert_all_faults_fired()
        assert [r.fault for r in emu.requests] == ["status", "raw", "raw", "raw", "status",
                                                   "drop_after"]  # fmt: skip


async def test_cleared_and_reset_faults_are_not_checked() -> None:
    async with Emulator() as emu:
        emu.inject(Fault.status(500), path=JOBS)
        emu.clear_faults()
        assert emu.injected_faults() == []
        emu.assert_all_faults_fired()
        emu.inject(Fault.status(500), path=JOBS, times=None)
        emu.reset()
        emu.assert_all_faults_fired()


def test_faults_cannot_target_the_control_endpoints() -> None:
    emu = Emulator()
    with pytest.raises(ValueError, match="/_emulator/"):
        emu.inject(Fault.status(500), path=FAULTS)
    with pytest.raises(ValueError, match="times"):
        emu.inject(Fault.status(500), times=0)


# -- the fixtures fail a test whose faults never fired (pytester) ------------------------------

INNER_HEADER = """
import json
import urllib.error
import urllib.error
import urllib.request

import pytest

from unstructured_jobs.testing import Fault

JOBS = "/api/v1/jobs/"


def get(emu, path=JOBS):
    req = urllib.request.Request(emu.url + path, headers=emu.headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def post_fault(emu, fault):
    req = urllib.request.Request(
        emu.url + "/_emulator/faults", data=json.dumps(fault).encode(), method="POST",
        headers={**emu.headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201
"""


def run_inner(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(INNER_HEADER + body)
    return pytester.runpytest("-p", "no:cacheprovider")


def test_fixture_fails_a_test_whose_fault_never_fired(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_unfired(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), method="POST", path=JOBS, times=2)
    assert get(unstructured_emulator) == 200  # a GET: the POST fault never fires
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unfired*",
            "*1 injected fault(s) fired fewer times than asked:",
            "*  - POST /api/v1/jobs/: Fault.status(503): fired 0 of 2 times",
            "*@pytest.mark.unstructured_emulator(assert_all_faults_fired=False)*",
        ]
    )


def test_fixture_passes_a_test_whose_faults_fired(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_fired(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), method="GET", path=JOBS, times=2)
    unstructured_emulator.inject(Fault.status(429), path="/api/v1/*", times=None)
    assert [get(unstructured_emulator) for _ in range(3)] == [503, 503, 429]


def test_fired_over_http(unstructured_emulator):
    post_fault(unstructured_emulator, {"kind": "status", "status": 502})
    assert get(unstructured_emulator) == 502
""",
    )
    result.assert_outcomes(passed=2)


def test_fixture_checks_faults_set_over_http_and_every_factory_emulator(
    pytester: pytest.Pytester,
) -> None:
    result = run_inner(
        pytester,
        """
def test_two(unstructured_emulator_factory):
    first, second = unstructured_emulator_factory(), unstructured_emulator_factory()
    first.inject(Fault.status(500), path=JOBS)
    assert get(first) == 500
    post_fault(second, {"kind": "drop_before", "method": "POST", "times": None})
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*emulator 2 of 2: 1 injected fault(s) fired fewer times than asked:",
            "*  - POST any path: Fault.drop_before(): fired 0 times, expected at least once*",
        ]
    )
    assert "emulator 1 of 2" not in result.stdout.str()


def test_fixture_opt_outs(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
@pytest.mark.unstructured_emulator(assert_all_faults_fired=False)
def test_marker(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), path="/api/v1/templates/never")


def test_optional(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), path="/api/v1/templates/never", optional=True)
    post_fault(unstructured_emulator, {"kind": "status", "status": 503, "path": "/api/v1/templates/never",
                                       "optional": True})


def test_cleared(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), path="/api/v1/templates/never")
    unstructured_emulator.clear_faults()
""",
    )
    result.assert_outcomes(passed=3)


def test_fixture_adds_nothing_to_a_failing_test(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
def test_fails(unstructured_emulator):
    unstructured_emulator.inject(Fault.status(503), path="/api/v1/templates/never")
    assert get(unstructured_emulator) == 201, "the test's own failure"
""",
    )
    result.assert_outcomes(failed=1)
    assert "the test's own failure" in result.stdout.str()
    assert "fired fewer times" not in result.stdout.str()


def test_fixture_marker_with_an_unknown_option(pytester: pytest.Pytester) -> None:
    result = run_inner(
        pytester,
        """
@pytest.mark.unstructured_emulator(assert_all_faults_fire=False)
def test_typo(unstructured_emulator):
    pass
""",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) assert_all_faults_fire; known:*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.unstructured_emulator(*"])


# -- the HTTP control endpoint -----------------------------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key="key-8f2a", schedule=Schedule.manual()) as emulator:
        yield emulator
        emulator.assert_all_faults_fired()


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as session:
        yield session


async def add_fault(http: aiohttp.ClientSession, fault: dict[str, Any]) -> dict[str, Any]:
    async with http.post(FAULTS, json=fault) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
        return body


async def test_a_fault_set_over_http_fires_on_the_next_api_request(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    added = await add_fault(
        http, {"kind": "status", "status": 503, "retry_after": 2, "method": "post",
               "path": JOBS, "times": 2},
    )  # fmt: skip
    expected = {
        "id": 1, "kind": "status", "status": 503, "retry_after": "2", "detail": None,
        "method": "POST", "path": JOBS, "times": 2, "fired": 0, "optional": False,
        "satisfied": False,
    }  # fmt: skip
    assert added == expected
    async with http.get(FAULTS) as resp:
        assert await resp.json() == {"faults": [expected], "all_fired": False}
    for _ in range(2):
        async with http.post(JOBS, data=make_form()) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (503, "2")
            assert await resp.json() == {"detail": "Service Unavailable"}
    async with http.post(JOBS, data=make_form()) as resp:
        assert resp.status == 200  # times=2: used up
    async with http.get(FAULTS) as resp:
        listed = await resp.json()
    assert listed == {
        "faults": [expected | {"fired": 2, "satisfied": True}],
        "all_fired": True,
    }
    assert emu.injected_faults()[0].fired == 2
    # The control requests are neither faulted nor recorded; the API requests are.
    assert emu.requests == [
        RecordedRequest("POST", JOBS, {}, 503, "status", JOBS),
        RecordedRequest("POST", JOBS, {}, 503, "status", JOBS),
        RecordedRequest("POST", JOBS, {}, 200, None, JOBS),
    ]
    assert len(emu.jobs) == 1


async def test_every_fault_kind_over_http(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await add_fault(http, {"kind": "raw", "status": 200, "body": "<html>oops</html>",
                           "content_type": "text/html", "headers": {"X-Test": "1"},
                           "method": "GET", "path": JOBS})  # fmt: skip
    async with http.get(JOBS) as resp:
        assert (resp.status, resp.content_type, resp.headers["X-Test"]) == (200, "text/html", "1")
        assert await resp.read() == b"<html>oops</html>"
    binary = bytes(range(250, 256))
    added = await add_fault(http, {"kind": "raw", "status": 502, "content_type": None,
                                   "body_base64": base64.b64encode(binary).decode()})  # fmt: skip
    assert added["body_base64"] == base64.b64encode(binary).decode() and "body" not in added
    async with http.get(JOBS) as resp:
        assert (resp.status, await resp.read()) == (502, binary)
    await add_fault(http, {"kind": "status", "status": 429, "detail": "slow down"})
    async with http.get(JOBS) as resp:
        assert (resp.status, await resp.json()) == (429, {"detail": "slow down"})
        assert "Retry-After" not in resp.headers
    await add_fault(http, {"kind": "delay", "seconds": 0, "path": f"{JOBS}*"})
    async with http.get(JOBS) as resp:
        assert resp.status == 200  # delayed by 0 s, then answered normally
    await add_fault(http, {"kind": "drop_before", "method": "POST"})
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(JOBS, data=make_form([("a.pdf", b"a" * 10_000)])):
            pass
    assert emu.jobs == {}
    await add_fault(http, {"kind": "drop_after", "method": "POST"})
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(JOBS, data=make_form()):
            pass
    assert len(emu.jobs) == 1  # the lost answer: the job exists
    await add_fault(http, {"kind": "stall", "seconds": 0, "method": "POST"})
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(JOBS, data=make_form([("b.pdf", b"b" * 10_000)])):
            pass
    assert len(emu.jobs) == 1
    assert [r.fault for r in emu.requests] == [
        "raw", "raw", "status", "delay", "drop_before", "drop_after", "stall"
    ]  # fmt: skip
    async with http.get(FAULTS) as resp:
        listed = await resp.json()
    assert [(f["kind"], f["fired"]) for f in listed["faults"]] == [
        ("raw", 1), ("raw", 1), ("status", 1), ("delay", 1), ("drop_before", 1),
        ("drop_after", 1), ("stall", 1),
    ]  # fmt: skip
    assert listed["all_fired"] is True
    assert emu.injected_faults()[6].fault == Fault.stall(0)


async def test_delete_clears_the_faults(emu: Emulator, http: aiohttp.ClientSession) -> None:
    await add_fault(http, {"kind": "status", "status": 500, "times": None})
    emu.inject(Fault.status(503), path="/api/v1/templates/nowhere")
    async with http.get(JOBS) as resp:
        assert resp.status == 500
    async with http.delete(FAULTS) as resp:
        assert (resp.status, await resp.json()) == (200, {"cleared": 2})
    async with http.get(FAULTS) as resp:
        assert await resp.json() == {"faults": [], "all_fired": True}
    async with http.get(JOBS) as resp:
        assert resp.status == 200
    assert emu.injected_faults() == []


async def test_control_requests_need_the_key_and_are_never_faulted(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with aiohttp.ClientSession(base_url=emu.url) as stranger:
        async with stranger.post(FAULTS, json={"kind": "drop_before"}) as resp:
            assert (resp.status, await resp.json()) == (401, {"detail": "API key is missing"})
        async with stranger.delete(FAULTS, headers={"unstructured-api-key": "nope"}) as resp:
            assert (resp.status, await resp.json()) == (401, {"detail": "Invalid API key"})
    assert emu.injected_faults() == []
    # A fault for every request (any method, any path) leaves the control endpoint alone.
    emu.inject(Fault.drop_before(), times=None)
    async with http.get(FAULTS) as resp:
        assert resp.status == 200
        assert [f["kind"] for f in (await resp.json())["faults"]] == ["drop_before"]
    async with http.get(FAULTS + "/nothing") as resp:
        assert (resp.status, await resp.json()) == (404, {"detail": "Not Found"})
    async with http.put(FAULTS) as resp:
        assert resp.status == 405
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(JOBS, data=make_form()):
            pass
    assert emu.requests == [RecordedRequest("POST", JOBS, {}, None, "drop_before", JOBS)]


@pytest.mark.parametrize(
    ("body", "loc", "type_", "msg"),
    [
        (b"{not json", ["body"], "json_invalid", "JSON decode error"),
        (b"[]", ["body"], "dict_type", "a JSON object describing one fault"),
        (b'{"status": 503}', ["body", "kind"], "missing", "one of 'status', 'raw'"),
        (b'{"kind": "hang"}', ["body", "kind"], "literal_error", "'stall', 'drop_before'"),
        (b'{"kind": "status"}', ["body", "status"], "missing", "Field required"),
        (b'{"kind": "status", "status": 99}', ["body", "status"], "value_error", ">= 100"),
        (b'{"kind": "status", "status": "503"}', ["body", "status"], "int_type", "integer"),
        (b'{"kind": "status", "status": 503, "retry-after": "1"}', ["body", "retry-after"],
         "extra_forbidden", "fields of 'status': status, retry_after, detail"),
        (b'{"kind": "drop_after", "seconds": 1}', ["body", "seconds"], "extra_forbidden",
         "not permitted"),
        (b'{"kind": "status", "status": 503, "retry_after": -1}', ["body", "retry_after"],
         "value_error", "integer >= 0"),
        (b'{"kind": "delay"}', ["body", "seconds"], "missing", "Field required"),
        (b'{"kind": "stall", "seconds": -1}', ["body", "seconds"], "value_error", ">= 0"),
        (b'{"kind": "delay", "seconds": true}', ["body", "seconds"], "float_type", "number"),
        (b'{"kind": "raw", "status": 200, "body": "a", "body_base64": "YQ=="}',
         ["body", "body_base64"], "value_error", "not both"),
        (b'{"kind": "raw", "status": 200, "body_base64": "**"}', ["body", "body_base64"],
         "value_error", "base64"),
        (b'{"kind": "raw", "status": 200, "headers": {"a": 1}}', ["body", "headers"],
         "dict_type", "string values"),
        (b'{"kind": "drop_before", "times": 0}', ["body", "times"], "value_error", ">= 1"),
        (b'{"kind": "drop_before", "times": 1.5}', ["body", "times"], "int_type", "integer"),
        (b'{"kind": "drop_before", "method": "PO ST"}', ["body", "method"], "value_error",
         "HTTP method"),
        (b'{"kind": "drop_before", "path": "api/v1/jobs/"}', ["body", "path"], "value_error",
         "start with '/'"),
        (b'{"kind": "drop_before", "path": "/_emulator/faults"}', ["body", "path"],
         "value_error", "never apply to /_emulator/"),
        (b'{"kind": "drop_before", "optional": "yes"}', ["body", "optional"], "bool_type",
         "boolean"),
    ],
)  # fmt: skip
async def test_invalid_fault_json_is_a_clear_422(
    emu: Emulator,
    http: aiohttp.ClientSession,
    body: bytes,
    loc: list[str],
    type_: str,
    msg: str,
) -> None:
    async with http.post(FAULTS, data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 422
        detail = (await resp.json())["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, type_)], detail
    assert msg in detail[0]["msg"]
    assert emu.injected_faults() == []


async def test_a_422_lists_every_problem_at_once(http: aiohttp.ClientSession) -> None:
    body = {"kind": "status", "status": 700, "times": 0, "colour": "red"}
    async with http.post(FAULTS, json=body) as resp:
        assert resp.status == 422
        detail = (await resp.json())["detail"]
    assert sorted(d["loc"][1] for d in detail) == ["colour", "status", "times"]


def test_the_command_line_server_takes_faults_over_http() -> None:
    """The out-of-process use: a server started from a shell, faults set over HTTP."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "unstructured_jobs.testing", "--port", "0", "--api-key", "cli"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"unstructured-jobs emulator listening on (http://\S+)\n", line)
        assert match, line
        url, headers = match.group(1), {"unstructured-api-key": "cli"}
        post = urllib.request.Request(
            f"{url}{FAULTS}",
            data=b'{"kind": "status", "status": 503, "method": "GET", "path": "/api/v1/jobs/"}',
            method="POST",
            headers=headers | {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(post, timeout=5) as resp:
            assert resp.status == 201
        get = urllib.request.Request(f"{url}{JOBS}", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(get, timeout=5)
        assert caught.value.code == 503
        caught.value.close()
        with urllib.request.urlopen(get, timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
