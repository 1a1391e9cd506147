"""The emulator over loopback, driven by raw aiohttp (never by our client)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from unstructured_jobs.testing import (
    EmulatedJob,
    Emulator,
    FakeClock,
    Fault,
    FaultRates,
    ReceivedFile,
    RecordedRequest,
    Schedule,
)

JOBS = "/api/v1/jobs/"
TEMPLATE = "f0a1b2c3-4d5e-6f7a-8b9c-0d1e2f3a4b5c"
INFO_KEYS = {
    "id",
    "workflow_id",
    "workflow_name",
    "status",
    "created_at",
    "runtime",
    "input_file_ids",
    "output_node_files",
    "job_type",
}
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def make_form(
    request_data: Any = None,
    files: Sequence[tuple[str, Any]] = (),
    field: str = "input_files",
) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    if request_data is not None:
        text = request_data if isinstance(request_data, str) else json.dumps(request_data)
        form.add_field("request_data", text)
    for name, content in files:
        form.add_field(field, content, filename=name, content_type="application/pdf")
    return form


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(schedule=Schedule.manual()) as emulator:
        yield emulator
        emulator.assert_all_faults_fired()  # what the public fixtures check, for this one too


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as session:
        yield session


async def create(
    http: aiohttp.ClientSession, files: Sequence[tuple[str, Any]] = ()
) -> dict[str, Any]:
    async with http.post(JOBS, data=make_form({"template_id": TEMPLATE}, files)) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


# -- create job / run workflow ---------------------------------------------------------------


async def test_create_job_shape_and_records(emu: Emulator, http: aiohttp.ClientSession) -> None:
    files = [("a.pdf", b"alpha"), ("b.pdf", b"")]
    async with http.post(JOBS, data=make_form({"template_id": TEMPLATE}, files)) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        info = await resp.json()
    assert set(info) == INFO_KEYS
    assert uuid.UUID(info["id"])
    assert info["workflow_id"] == TEMPLATE
    assert isinstance(info["workflow_name"], str)
    assert info["status"] == "SCHEDULED"
    assert CREATED_AT.match(info["created_at"])
    assert info["runtime"] is None
    assert info["input_file_ids"] == ["a.pdf", "b.pdf"]
    assert info["output_node_files"] is None
    assert info["job_type"] == "template"  # a template's job

    job = emu.jobs[info["id"]]
    assert isinstance(job, EmulatedJob)
    assert job.endpoint == "create_job"
    assert job.request_data == {"template_id": TEMPLATE}
    assert job.files == [
        ReceivedFile("input_files", "a.pdf", "application/pdf", 5, sha(b"alpha")),
        ReceivedFile("input_files", "b.pdf", "application/pdf", 0, sha(b"")),
    ]
    assert emu.received_files() == job.files


async def test_create_job_with_job_nodes_and_sdk_field_name(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    nodes = [{"name": "Partitioner", "type": "partition", "subtype": "vlm", "settings": {}}]
    form = make_form({"job_nodes": nodes}, [("x.txt", b"xx")], field="input_files[]")
    async with http.post(JOBS, data=form) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert uuid.UUID(info["workflow_id"])
    assert [f.field_name for f in emu.jobs[info["id"]].files] == ["input_files[]"]
    async with http.get(f"{JOBS}{info['id']}/details") as resp:
        details = await resp.json()
    assert [n["node_name"] for n in details["node_stats"]] == ["Partitioner", "Destination"]


async def test_create_job_with_template_id_and_job_nodes_runs_the_nodes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Both together (the vendor's REST collection sends both): accepted, job_nodes win."""
    nodes = [{"name": "Mine", "type": "partition", "subtype": "vlm", "settings": {}}]
    data = {"template_id": "hi_res_partition", "job_nodes": nodes}
    async with http.post(JOBS, data=make_form(data, [("x.txt", b"xx")])) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info["job_type"] == "ephemeral"
    assert emu.jobs[info["id"]].request_data == data
    async with http.get(f"{JOBS}{info['id']}/details") as resp:
        details = await resp.json()
    assert [n["node_name"] for n in details["node_stats"]] == ["Mine", "Destination"]


async def test_create_job_streams_a_multi_mib_file(
    emu: Emulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data = os.urandom(6 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    with path.open("rb") as fh:
        info = await create(http, [("big.bin", fh)])
    (received,) = emu.jobs[info["id"]].files
    assert (received.size, received.sha256) == (len(data), sha(data))


@pytest.mark.parametrize(
    ("request_data", "msg_part"),
    [
        (None, "Field required"),
        ("{not json", "not valid JSON"),
        ({"something": 1}, "template_id or job_nodes"),
        ({"template_id": TEMPLATE, "job_nodes": []}, "non-empty list"),
        ({"template_id": "", "job_nodes": [{}]}, "non-empty string"),
        ({"job_nodes": []}, "non-empty list"),
        ([1, 2], "JSON object"),
    ],
)
async def test_create_job_invalid_request_data_is_422(
    emu: Emulator, http: aiohttp.ClientSession, request_data: Any, msg_part: str
) -> None:
    async with http.post(JOBS, data=make_form(request_data, [("a.pdf", b"a")])) as resp:
        assert resp.status == 422
        body = await resp.json()
    (error,) = body["detail"]
    assert error["loc"] == ["body", "request_data"]
    assert msg_part in error["msg"]
    assert isinstance(error["type"], str)
    assert emu.jobs == {}


async def test_create_job_non_multipart_body_is_422(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(JOBS, json={"template_id": TEMPLATE}) as resp:
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["body", "request_data"]


async def test_urlencoded_request_data_is_read_like_fastapi(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(JOBS, data={"request_data": json.dumps({"template_id": "t"})}) as resp:
        assert resp.status == 200
        assert (await resp.json())["input_file_ids"] is None
    assert [j.request_data for j in emu.jobs.values()] == [{"template_id": "t"}]


async def test_input_file_without_filename_is_422(http: aiohttp.ClientSession) -> None:
    form = make_form({"template_id": TEMPLATE})
    form.add_field("input_files", "just text")
    async with http.post(JOBS, data=form) as resp:
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["body", "input_files", 0]


def raw_multipart(part_headers: Sequence[str], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body built by hand (aiohttp's FormData would refuse or fold these headers):
    a valid ``request_data`` part, then a file part with exactly `part_headers`."""
    lines = [
        f"--{boundary}",
        'Content-Disposition: form-data; name="request_data"',
        "",
        json.dumps({"template_id": TEMPLATE}),
        f"--{boundary}",
        *part_headers,
        "",
        "%PDF-1.7",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("path", [JOBS, f"/api/v1/workflows/{TEMPLATE}/run"])
@pytest.mark.parametrize(
    "part_headers",
    [
        # One header line over aiohttp's 8190-byte limit: LineTooLong.
        [f'Content-Disposition: form-data; name="input_files"; filename="{"n" * 10_000}.pdf"'],
        # More header lines than aiohttp's 128: BadHttpMessage("Too many headers received").
        ['Content-Disposition: form-data; name="input_files"; filename="a.pdf"']
        + [f"X-Extra-{i}: {i}" for i in range(200)],
    ],
    ids=["10000-char-filename", "200-part-headers"],
)
async def test_part_headers_over_aiohttps_limits_are_400_not_500(
    emu: Emulator, path: str, part_headers: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """What the emulator's docs promise for a body it cannot parse: 400 with FastAPI's body,
    nothing created, nothing logged as a failure, and the connection keeps serving."""
    body, content_type = raw_multipart(part_headers)
    connector = aiohttp.TCPConnector(limit=1)  # the next request reuses the connection
    async with aiohttp.ClientSession(
        base_url=emu.url, headers=emu.headers, connector=connector
    ) as http:
        async with http.post(path, data=body, headers={"Content-Type": content_type}) as resp:
            assert resp.status == 400
            assert await resp.json() == {"detail": "There was an error parsing the body"}
        assert emu.jobs == {}
        assert [r.status for r in emu.requests] == [400]
        job = await create(http, [("after.pdf", b"ok")])
    assert [f.filename for f in emu.jobs[job["id"]].files] == ["after.pdf"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


RD_PART = [
    'Content-Disposition: form-data; name="request_data"',
    "",
    json.dumps({"template_id": TEMPLATE}),
]


def raw_parts(*parts: list[str], boundary: str = "b0undary") -> bytes:
    """Multipart parts given as lines (headers, blank line, body), joined by hand."""
    lines = [line for part in parts for line in [f"--{boundary}", *part]]
    return "\r\n".join([*lines, f"--{boundary}--", ""]).encode("utf-8", "surrogateescape")


MULTIPART = "multipart/form-data; boundary=b0undary"
URLENCODED = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        # FastAPI (Starlette) refuses a part without a name; the emulator ignored the part.
        (raw_parts(RD_PART, ["Content-Type: text/plain", "", "x"]), MULTIPART, 400, None),
        (
            raw_parts(RD_PART, ['Content-Disposition: form-data; filename="a.pdf"', "", "x"]),
            MULTIPART,
            400,
            None,
        ),
        # Starlette reads urlencoded bytes as Latin-1 and ignores a charset: request_data is
        # then not JSON (422) or read normally (200). Both were 500s (aiohttp's post()).
        (b"request_data=\xff\xfe", URLENCODED, 422, "not valid JSON"),
        (
            b"request_data=" + urllib.parse.quote(json.dumps({"template_id": "t"})).encode(),
            URLENCODED + "; charset=no-such-charset",
            200,
            None,
        ),
        # A field's bytes that are not UTF-8 are Latin-1 for Starlette, never a parse error;
        # a part's own charset is ignored (only the form's counts).
        (
            raw_parts(['Content-Disposition: form-data; name="request_data"', "", "\udcff"]),
            MULTIPART,
            422,
            "not valid JSON",
        ),
        (
            raw_parts(
                [
                    'Content-Disposition: form-data; name="request_data"',
                    "Content-Type: text/plain; charset=no-such-charset",
                    "",
                    json.dumps({"template_id": "t"}),
                ]
            ),
            MULTIPART,
            200,
            None,
        ),
    ],
    ids=[
        "part-without-content-disposition",
        "part-without-name",
        "urlencoded-raw-non-utf8",
        "urlencoded-unknown-charset",
        "field-not-utf8",
        "field-unknown-part-charset",
    ],
)
async def test_odd_form_bodies_are_read_like_fastapi_never_500(
    emu: Emulator,
    http: aiohttp.ClientSession,
    body: bytes,
    content_type: str,
    status: int,
    detail: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with http.post(JOBS, data=body, headers={"Content-Type": content_type}) as resp:
        assert resp.status == status, await resp.text()
        answer = await resp.json()
    if status == 400:
        assert answer == {"detail": "There was an error parsing the body"}
    if detail is not None:
        assert detail in answer["detail"][0]["msg"]
    assert len(emu.jobs) == (status == 200)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_run_workflow_is_202(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.post(f"/api/v1/workflows/{TEMPLATE}/run") as resp:
        assert resp.status == 202
        bare = await resp.json()
    assert set(bare) == INFO_KEYS
    assert (bare["workflow_id"], bare["input_file_ids"]) == (TEMPLATE, None)
    async with http.post(
        f"/api/v1/workflows/{TEMPLATE}/run", data=make_form(None, [("r.md", b"#")])
    ) as resp:
        assert resp.status == 202
        with_file = await resp.json()
    assert with_file["input_file_ids"] == ["r.md"]
    job = emu.jobs[with_file["id"]]
    assert (job.endpoint, job.request_data, job.files[0].size) == ("run_workflow", None, 1)
    async with http.post("/api/v1/workflows/not-a-uuid/run") as resp:
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["path", "workflow_id"]


# -- auth and routing ------------------------------------------------------------------------


async def test_auth_errors() -> None:
    key, wrong = "key-3b9e51", "wrong-key-6d20c4"  # distinctive: a leak cannot hide in a field
    async with Emulator(api_key=key) as emu, aiohttp.ClientSession(base_url=emu.url) as http:
        assert emu.api_key == key
        async with http.get(JOBS) as resp:
            assert (resp.status, await resp.json()) == (401, {"detail": "API key is missing"})
        async with http.get(JOBS, headers={"unstructured-api-key": wrong}) as resp:
            assert (resp.status, await resp.json()) == (401, {"detail": "Invalid API key"})
        async with http.post(JOBS, data=make_form({"template_id": TEMPLATE})) as resp:
            assert resp.status == 401
        async with http.get(JOBS, headers={"unstructured-api-key": key}) as resp:
            assert (resp.status, await resp.json()) == (200, [])
        assert emu.jobs == {}
        # Requests are recorded, refused ones included, but no key (right or wrong) in any field.
        recorded = emu.requests
        assert [r.status for r in recorded] == [401, 401, 401, 200]
        for r in recorded:
            assert key not in repr(vars(r)) and wrong not in repr(vars(r)), r


async def test_any_key_accepted_by_default(emu: Emulator) -> None:
    assert emu.api_key == "emulator-key"
    async with aiohttp.ClientSession(base_url=emu.url) as http:
        async with http.get(JOBS, headers={"unstructured-api-key": "anything"}) as resp:
            assert resp.status == 200
        async with http.get(JOBS, headers={"unstructured-api-key": ""}) as resp:
            assert resp.status == 401


async def test_routing_errors(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v1/nothing") as resp:
        assert (resp.status, await resp.json()) == (404, {"detail": "Not Found"})
    async with http.delete(JOBS) as resp:
        assert (resp.status, await resp.json()) == (405, {"detail": "Method Not Allowed"})
    async with http.get("/api/v1/jobs", allow_redirects=False) as resp:
        assert resp.status == 307
        assert resp.headers["Location"].endswith("/api/v1/jobs/")
    async with http.get(f"{JOBS}not-a-uuid") as resp:
        assert resp.status == 422
        error = (await resp.json())["detail"][0]
        assert (error["loc"], error["type"]) == (["path", "job_id"], "uuid_parsing")
    async with http.get(f"{JOBS}{uuid.uuid4()}") as resp:
        assert (resp.status, await resp.json()) == (404, {"detail": "Job not found"})


# -- list / get / details / failed files / cancel / download ---------------------------------


async def test_list_jobs_filters(emu: Emulator, http: aiohttp.ClientSession) -> None:
    first, second = await create(http), await create(http)
    async with http.post(f"/api/v1/workflows/{uuid.UUID(int=7)}/run") as resp:
        third = await resp.json()
    emu.set_status(second["id"], "FAILED")
    async with http.get(JOBS) as resp:
        assert [j["id"] for j in await resp.json()] == [first["id"], second["id"], third["id"]]
    async with http.get(JOBS, params={"status": "FAILED"}) as resp:
        assert [j["id"] for j in await resp.json()] == [second["id"]]
    async with http.get(JOBS, params={"workflow_id": str(uuid.UUID(int=7))}) as resp:
        assert [j["id"] for j in await resp.json()] == [third["id"]]
    async with http.get(JOBS, params={"status": "DONE"}) as resp:
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["loc"] == ["query", "status"]


async def test_manual_lifecycle_details_and_download(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    info = await create(http, [("doc.pdf", b"pdf bytes")])
    job_url = f"{JOBS}{info['id']}"
    async with http.get(f"{job_url}/download", params={"file_id": "doc.pdf"}) as resp:
        assert (resp.status, await resp.json()) == (409, {"detail": "Job output is not ready"})
    emu.advance(info["id"])
    async with http.get(job_url) as resp:
        assert (await resp.json())["status"] == "IN_PROGRESS"
    async with http.get(f"{job_url}/details") as resp:
        details = await resp.json()
    assert details["processing_status"] == "IN_PROGRESS"
    emu.advance(info["id"])
    async with http.get(job_url) as resp:
        done = await resp.json()
    assert done["status"] == "COMPLETED"
    assert re.match(r"^PT[\d.HMS]+$", done["runtime"])
    (out,) = done["output_node_files"]
    assert set(out) == {"node_id", "file_id", "node_type", "node_subtype"}
    assert (out["node_type"], out["node_subtype"]) == ("destination", "local")
    async with http.get(f"{job_url}/details") as resp:
        details = await resp.json()
    assert set(details) == {"id", "processing_status", "node_stats", "message"}
    assert details["processing_status"] == "SUCCESS"
    for stat in details["node_stats"]:
        assert set(stat) == {
            "node_name",
            "node_type",
            "node_subtype",
            "ready",
            "in_progress",
            "success",
            "failure",
        }
        assert stat["success"] == 1
    async with http.get(f"{job_url}/failed-files") as resp:
        assert (resp.status, await resp.json()) == (200, {"failed_files": []})

    for params in (
        {"file_id": "doc.pdf"},
        {"file_id": out["file_id"], "node_id": out["node_id"]},
        {"file_id": out["file_id"]},
    ):
        async with http.get(f"{job_url}/download", params=params) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            elements = await resp.json()
        assert elements[0]["metadata"]["filename"] == "doc.pdf"
        assert elements[0]["metadata"]["sha256"] == sha(b"pdf bytes")
        assert {"type", "element_id", "text", "metadata"} <= set(elements[1])
    for params, status in (
        ({"file_id": out["file_id"], "node_id": str(uuid.uuid4())}, 404),
        ({"file_id": "other.pdf"}, 404),
        ({"file_id": "doc.pdf", "node_id": "nope"}, 422),
        ({}, 422),
    ):
        async with http.get(f"{job_url}/download", params=params) as resp:
            assert resp.status == status
            body = await resp.json()
            if status == 404:
                assert body == {"detail": "File not found"}
    async with http.get(f"{job_url}/download") as resp:
        assert (await resp.json())["detail"][0]["loc"] == ["query", "file_id"]


async def test_failed_files_and_completed_with_errors() -> None:
    async with (
        Emulator(fail_files=lambda name: "bad" in name) as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        mixed = await create(http, [("good.pdf", b"1"), ("bad.pdf", b"2")])
        all_bad = await create(http, [("bad1.pdf", b"1"), ("bad2.pdf", b"2")])
        async with http.get(f"{JOBS}{mixed['id']}") as resp:
            info = await resp.json()
        assert info["status"] == "COMPLETED"
        assert [o["file_id"] for o in info["output_node_files"]] == ["good.pdf.json"]
        async with http.get(f"{JOBS}{mixed['id']}/details") as resp:
            details = await resp.json()
        assert details["processing_status"] == "COMPLETED_WITH_ERRORS"
        assert details["node_stats"][0]["failure"] == 1
        async with http.get(f"{JOBS}{mixed['id']}/failed-files") as resp:
            failed = (await resp.json())["failed_files"]
        assert [f["document"] for f in failed] == ["bad.pdf"]
        assert isinstance(failed[0]["error"], str)
        async with http.get(f"{JOBS}{all_bad['id']}/details") as resp:
            assert (await resp.json())["processing_status"] == "FAILED"
        async with http.get(f"{JOBS}{all_bad['id']}") as resp:
            assert (await resp.json())["status"] == "FAILED"
        async with http.get(
            f"{JOBS}{all_bad['id']}/download", params={"file_id": "bad1.pdf"}
        ) as resp:
            assert resp.status == 409


async def test_cancel(emu: Emulator, http: aiohttp.ClientSession) -> None:
    running, finished = await create(http), await create(http)
    emu.advance(finished["id"], steps=2)
    async with http.post(f"{JOBS}{running['id']}/cancel") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert (body["id"], body["status"]) == (running["id"], "STOPPED")
    assert isinstance(body["message"], str)
    assert emu.jobs[running["id"]].status == "STOPPED"
    async with http.post(f"{JOBS}{finished['id']}/cancel") as resp:
        body = await resp.json()
    assert (resp.status, body["status"]) == (200, "COMPLETED")
    assert "COMPLETED" in body["message"]
    async with http.post(f"{JOBS}{uuid.uuid4()}/cancel") as resp:
        assert resp.status == 404
    async with http.get(f"{JOBS}{running['id']}/details") as resp:
        assert (await resp.json())["processing_status"] == "STOPPED"


# -- schedule ---------------------------------------------------------------------------------


async def test_schedule_on_injected_clock() -> None:
    clock = FakeClock(1000.0)
    async with (
        Emulator(schedule=Schedule(start_after=1.0, run_for=150.0), clock=clock) as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        info = await create(http, [("a.pdf", b"a")])

        async def status() -> dict[str, Any]:
            async with http.get(f"{JOBS}{info['id']}") as resp:
                body: dict[str, Any] = await resp.json()
                return body

        assert (await status())["status"] == "SCHEDULED"
        clock.advance(1.0)
        assert (await status())["status"] == "IN_PROGRESS"
        clock.advance(149.9)
        assert (await status())["status"] == "IN_PROGRESS"
        clock.advance(0.1)
        done = await status()
        assert (done["status"], done["runtime"]) == ("COMPLETED", "PT2M30S")


async def test_max_running_keeps_extra_jobs_scheduled() -> None:
    clock = FakeClock(1000.0)
    async with (
        Emulator(schedule=Schedule(run_for=1.0), clock=clock, max_running=2) as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        ids = [(await create(http))["id"] for _ in range(3)]

        async def statuses() -> list[str]:
            async with http.get(JOBS) as resp:
                return [j["status"] for j in await resp.json() if j["id"] in ids]

        assert await statuses() == ["IN_PROGRESS", "IN_PROGRESS", "SCHEDULED"]
        clock.advance(1.0)
        assert await statuses() == ["COMPLETED", "COMPLETED", "IN_PROGRESS"]
        clock.advance(0.2)
        async with http.post(f"{JOBS}{ids[2]}/cancel"):
            pass
        assert await statuses() == ["COMPLETED", "COMPLETED", "STOPPED"]
        assert emu.jobs[ids[0]].runtime == "PT1S"


async def test_default_schedule_completes_at_once() -> None:
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        ids = [(await create(http, [("f.pdf", b"f")]))["id"] for _ in range(7)]
        async with http.get(JOBS, params={"status": "COMPLETED"}) as resp:
            assert [j["id"] for j in await resp.json()] == ids
        assert emu.jobs[ids[0]].runtime == "PT0S"


# -- faults -----------------------------------------------------------------------------------


async def test_fault_status_with_retry_after(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject(Fault.status(503, retry_after="2"), method="POST", path=JOBS)
    async with http.post(JOBS, data=make_form({"template_id": TEMPLATE}, [("a", b"a")])) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "2"
        assert await resp.json() == {"detail": "Service Unavailable"}
    assert emu.jobs == {}
    await create(http)  # times=1: the next one passes
    assert [(r.status, r.fault) for r in emu.requests] == [(503, "status"), (200, None)]
    emu.inject(Fault.status(429, detail="slow down"), path="/api/v1/*", times=2)
    for _ in range(2):
        async with http.get(JOBS) as resp:
            assert (resp.status, await resp.json()) == (429, {"detail": "slow down"})
            assert "Retry-After" not in resp.headers
    assert emu.pending_faults == 0


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Intentional drops must not make the server log warnings or tracebacks."""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_fault_drop_before_creates_nothing(
    emu: Emulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    emu.inject(Fault.drop_before(), method="POST")
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(http, [("a.pdf", b"a" * 100_000)])
    assert emu.jobs == {}
    assert emu.requests[-1] == RecordedRequest("POST", JOBS, {}, None, "drop_before", JOBS)
    await create(http)  # the server is still fine
    assert_quiet(caplog)


async def test_fault_drop_after_creates_the_job(
    emu: Emulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    emu.inject(Fault.drop_after(), method="POST", path=JOBS)
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(http, [("a.pdf", b"a")])
    (job,) = emu.jobs.values()
    assert job.files[0].filename == "a.pdf"
    assert (emu.requests[-1].status, emu.requests[-1].fault) == (None, "drop_after")
    assert_quiet(caplog)


async def test_fault_raw_and_delay(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject(Fault.raw(200, b"<html>oops</html>", content_type="text/html"), method="POST")
    async with http.post(JOBS, data=make_form({"template_id": TEMPLATE})) as resp:
        assert (resp.status, resp.content_type) == (200, "text/html")
        assert await resp.read() == b"<html>oops</html>"
    emu.inject(Fault.raw(200, b'{"id": "tru', headers={"X-Test": "1"}), path=JOBS)
    async with http.get(JOBS) as resp:
        assert resp.headers["X-Test"] == "1"
        assert await resp.read() == b'{"id": "tru'
    assert emu.jobs == {}
    emu.inject(Fault.delay(0.05), path=JOBS)
    async with http.get(JOBS) as resp:
        assert resp.status == 200
    assert [r.fault for r in emu.requests] == ["raw", "raw", "delay"]


async def test_fault_stall_stops_reading_then_drops(
    emu: Emulator, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    emu.inject(Fault.stall(0.3), method="POST")
    data = b"x" * (32 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(aiohttp.ClientError):
        await create(http, [("big.bin", io.BytesIO(data))])
    assert time.monotonic() - started >= 0.25
    assert emu.jobs == {}
    assert emu.requests[-1].fault == "stall"
    assert_quiet(caplog)


async def test_fault_rates_are_seeded() -> None:
    async def run(seed: int) -> list[int]:
        rates = FaultRates(status_429=0.3, status_503=0.3, seed=seed, methods=("GET",))
        async with (
            Emulator(fault_rates=rates) as emu,
            aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
        ):
            out = []
            for _ in range(20):
                async with http.get(JOBS) as resp:
                    out.append(resp.status)
                    if resp.status != 200:
                        assert resp.headers["Retry-After"] == "0"
            emu.fault_rates = None
            async with http.get(JOBS) as resp:
                assert resp.status == 200
            return out

    first = await run(1234)
    assert first == await run(1234)
    assert {200, 429, 503} == set(first)


# -- service limits ---------------------------------------------------------------------------


async def test_service_limits() -> None:
    clock = FakeClock(1000.0)
    options: dict[str, Any] = {"max_files_per_job": 2, "max_file_size": 10, "launch_rate": 1.0}
    async with (
        Emulator(clock=clock, **options) as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        form = make_form({"template_id": TEMPLATE}, [("1", b"1"), ("2", b"2"), ("3", b"3")])
        async with http.post(JOBS, data=form) as resp:
            assert resp.status == 400
            assert "Too many files" in (await resp.json())["detail"]
        async with http.post(
            JOBS, data=make_form({"template_id": "t"}, [("1", b"x" * 11)])
        ) as resp:
            assert resp.status == 413
            assert "too large" in (await resp.json())["detail"]
        await create(http)
        async with http.post(JOBS, data=make_form({"template_id": TEMPLATE})) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "1")
            assert await resp.json() == {"detail": "Rate limit exceeded"}
        clock.advance(1.0)
        async with http.post(f"/api/v1/workflows/{TEMPLATE}/run") as resp:
            assert resp.status == 202
        assert len(emu.jobs) == 2


async def test_output_hook_and_option_checks() -> None:
    async with (
        Emulator(output_for=lambda f: f.sha256.encode()) as emu,
        aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http,
    ):
        info = await create(http, [("o.pdf", b"o")])
        async with http.get(f"{JOBS}{info['id']}/download", params={"file_id": "o.pdf"}) as resp:
            assert await resp.read() == sha(b"o").encode()
        async with http.head(JOBS) as resp:
            assert resp.status == 405
    with pytest.raises(ValueError):
        Emulator(max_running=0)
    with pytest.raises(ValueError):
        Schedule(run_for=-1)
    with pytest.raises(ValueError):
        FaultRates(status_429=0.7, status_503=0.7)


# -- running modes ----------------------------------------------------------------------------


def test_running_in_thread_from_sync_code() -> None:
    with Emulator(schedule=Schedule.manual()).running_in_thread() as emu:
        req = urllib.request.Request(f"{emu.url}{JOBS}", headers=emu.headers)
        with urllib.request.urlopen(req) as resp:
            assert json.loads(resp.read()) == []
        emu.inject(Fault.status(500), path=JOBS)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req)
        assert caught.value.code == 500
        caught.value.close()
        assert [r.status for r in emu.requests] == [200, 500]
        emu.reset()
        assert emu.requests == []
    with pytest.raises(RuntimeError):
        _ = emu.url


async def test_running_in_thread_from_async_code() -> None:
    with Emulator(schedule=Schedule.manual()).running_in_thread() as emu:
        async with aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http:
            info = await create(http, [("t.txt", b"t")])
            emu.advance()
            emu.advance(info["id"])
            async with http.get(f"{JOBS}{info['id']}") as resp:
                assert (await resp.json())["status"] == "COMPLETED"


def test_pytest_fixture(unstructured_emulator: Emulator) -> None:
    assert unstructured_emulator.url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(
        f"{unstructured_emulator.url}{JOBS}", method="POST", headers=unstructured_emulator.headers
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req)
    assert caught.value.code == 422
    caught.value.close()


async def test_pytest_factory_fixture(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = unstructured_emulator_factory(api_key="secret", schedule=Schedule.manual())
    async with aiohttp.ClientSession(base_url=emu.url, headers=emu.headers) as http:
        info = await create(http)
        assert info["status"] == "SCHEDULED"
    assert emu.jobs[info["id"]].status == "SCHEDULED"


def test_command_line_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "unstructured_jobs.testing", "--port", "0", "--api-key", "cli"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(
            r"unstructured-jobs emulator listening on (http://127\.0\.0\.1:\d+)\n", line
        )
        assert match, line
        req = urllib.request.Request(
            f"{match.group(1)}{JOBS}", headers={"unstructured-api-key": "cli"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
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


async def test_server_survives_concurrent_clients(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    results = await asyncio.gather(*(create(http, [(f"{i}.pdf", b"%d" % i)]) for i in range(20)))
    assert len({r["id"] for r in results}) == 20
    assert sorted(f.filename for f in emu.received_files()) == sorted(f"{i}.pdf" for i in range(20))
