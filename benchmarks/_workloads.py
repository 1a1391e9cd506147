"""The benchmark workloads, one function per (workload, client), run inside a child process.

Clients:

- ``ours``: `unstructured_jobs.AsyncJobsClient` (``ours-sync``: `unstructured_jobs.JobsClient`).
- ``floor``: the least work possible, written by hand on aiohttp (`_floor.Floor`; ``floor-sync``:
  `_floor.FloorSync`, the same coroutines on a private loop in the calling thread).
- ``formdata``: plain aiohttp with `aiohttp.FormData` bodies (open file objects), ``json.loads``
  of the answer, no retries, validation or models (the old "raw aiohttp" baseline).
- ``sdk``: the official SDK, ``unstructured_client.UnstructuredClient``, async methods
  (``sdk-sync``: its sync methods), with its default configuration.

With ``ca`` in the parameters (a CA bundle path), every client speaks HTTPS and trusts that CA
only: ours through ``ssl=``, the floor and aiohttp through an `ssl.SSLContext` given to the
connector, the SDK through httpx clients built with ``verify=`` that context.

Every function gets a `Ctx` and returns a dict of figures. It wraps the part to be measured in
``with ctx.meter:`` (once), so client construction and imports stay out of CPU and wall figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import API_KEY, TEMPLATE_ID, Meter, describe_error, latency_summary

HEADERS = {"unstructured-api-key": API_KEY}
REQUEST_DATA = json.dumps({"template_id": TEMPLATE_ID})
OCTET = "application/octet-stream"
JOBS = "/api/v1/jobs/"


class Ctx:
    """What a workload function receives."""

    def __init__(self, url: str, params: dict[str, Any]) -> None:
        self.url = url
        self.params = params
        self.meter = Meter()


Workload = Callable[[Ctx], "Awaitable[dict[str, Any]] | dict[str, Any]"]
REGISTRY: dict[tuple[str, str], Workload] = {}


def workload(name: str, client: str) -> Callable[[Workload], Workload]:
    def register(fn: Workload) -> Workload:
        REGISTRY[(name, client)] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- client factories


def _ssl_context(ctx: Ctx) -> Any:
    import ssl

    ca = ctx.params.get("ca")
    return True if ca is None else ssl.create_default_context(cafile=ca)


def _unlimited() -> Any:
    # The workloads measure the client against the floor, not the service's published limits
    # (2,000 files in one job, 256 MiB files): lift the checks the floor does not make.
    from unstructured_jobs import ServiceLimits

    return ServiceLimits(files_per_job=None, bytes_per_file=None)


def _ours(ctx: Ctx, **kwargs: Any) -> Any:
    from unstructured_jobs import AsyncJobsClient

    kwargs.setdefault("limits", _unlimited())
    if ctx.params.get("ca"):
        kwargs["ssl"] = ctx.params["ca"]
    return AsyncJobsClient(api_key=API_KEY, server_url=ctx.url, **kwargs)


def _ours_sync(ctx: Ctx, **kwargs: Any) -> Any:
    from unstructured_jobs import JobsClient

    kwargs.setdefault("limits", _unlimited())
    if ctx.params.get("ca"):
        kwargs["ssl"] = ctx.params["ca"]
    return JobsClient(api_key=API_KEY, server_url=ctx.url, **kwargs)


def _floor(ctx: Ctx, limit: int = 100) -> Any:
    import _floor as floor_module
    from _floor import Floor

    if ctx.params.get("floor_chunk"):  # for measuring the floor's own choices
        floor_module.CHUNK = int(ctx.params["floor_chunk"])
    body = ctx.params.get("floor_body", "payload")
    return Floor(ctx.url, API_KEY, limit=limit, cafile=ctx.params.get("ca"), body=body)


def _floor_sync(ctx: Ctx) -> Any:
    import _floor as floor_module
    from _floor import FloorSync

    if ctx.params.get("floor_chunk"):
        floor_module.CHUNK = int(ctx.params["floor_chunk"])
    body = ctx.params.get("floor_body", "payload")
    return FloorSync(ctx.url, API_KEY, cafile=ctx.params.get("ca"), body=body)


def _sdk(ctx: Ctx) -> Any:
    from unstructured_client import UnstructuredClient

    if not ctx.params.get("ca"):
        return UnstructuredClient(api_key_auth=API_KEY, server_url=ctx.url)
    import httpx

    context = _ssl_context(ctx)
    return UnstructuredClient(
        api_key_auth=API_KEY,
        server_url=ctx.url,
        client=httpx.Client(verify=context),
        async_client=httpx.AsyncClient(verify=context),
    )


def _raw_session(ctx: Ctx, limit: int = 100) -> Any:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=limit, ssl=_ssl_context(ctx))
    return aiohttp.ClientSession(connector=connector)


def _raw_form(files: list[tuple[str, Any]]) -> Any:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("request_data", REQUEST_DATA)
    for name, content in files:
        form.add_field("input_files", content, filename=name, content_type=OCTET)
    return form


async def _raw_create(session: Any, url: str, files: list[tuple[str, Any]]) -> dict[str, Any]:
    async with session.post(url + JOBS, data=_raw_form(files), headers=HEADERS) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        job: dict[str, Any] = json.loads(body)
        return job


def _sdk_create_request(files: list[tuple[str, Any]]) -> Any:
    from unstructured_client.models.operations import CreateJobRequest
    from unstructured_client.models.shared import BodyCreateJob, InputFiles

    return CreateJobRequest(
        body_create_job=BodyCreateJob(
            request_data=REQUEST_DATA,
            input_files=[
                InputFiles(content=content, file_name=name, content_type=OCTET)
                for name, content in files
            ],
        )
    )


# ----------------------------------------------------------------------------- a. big upload


def _upload_result(ctx: Ctx, job_id: str, file_ids: list[str] | None) -> dict[str, Any]:
    total = sum(ctx.params["sizes"])
    return {
        "job_id": job_id,
        "input_file_ids": file_ids,
        "bytes": total,
        "mb_s": total / 1e6 / ctx.meter.wall,
        "cpu_per_gib": ctx.meter.cpu / (total / 2**30),
    }


@workload("upload", "ours")
async def upload_ours(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    async with _ours(ctx) as client:
        with ctx.meter:
            job = await client.create_job(template_id=TEMPLATE_ID, input_files=paths)
    return _upload_result(ctx, job.id, job.input_file_ids)


@workload("upload", "ours-sync")
def upload_ours_sync(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    with _ours_sync(ctx) as client, ctx.meter:
        job = client.create_job(template_id=TEMPLATE_ID, input_files=paths)
    return _upload_result(ctx, job.id, job.input_file_ids)


@workload("upload", "floor")
async def upload_floor(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    floor = _floor(ctx)
    try:
        with ctx.meter:
            job = await floor.create_job(REQUEST_DATA, paths)
    finally:
        await floor.close()
    return _upload_result(ctx, job["id"], job.get("input_file_ids"))


@workload("upload", "floor-sync")
def upload_floor_sync(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    with _floor_sync(ctx) as floor, ctx.meter:
        job = floor.create_job(REQUEST_DATA, paths)
    return _upload_result(ctx, job["id"], job.get("input_file_ids"))


@workload("upload", "formdata")
async def upload_formdata(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    async with _raw_session(ctx) as session:
        with ctx.meter:
            handles = [(os.path.basename(p), open(p, "rb")) for p in paths]  # noqa: SIM115
            job = await _raw_create(session, ctx.url, handles)  # aiohttp closes the files
    return _upload_result(ctx, job["id"], job.get("input_file_ids"))


@workload("upload", "sdk")
async def upload_sdk(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    client = _sdk(ctx)
    handles = []
    try:
        with ctx.meter:
            handles = [(os.path.basename(p), open(p, "rb")) for p in paths]  # noqa: SIM115
            res = await client.jobs.create_job_async(request=_sdk_create_request(handles))
    finally:
        for _, handle in handles:
            handle.close()
    job = res.job_information
    return _upload_result(ctx, job.id, job.input_file_ids)


@workload("upload", "sdk-sync")
def upload_sdk_sync(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    client = _sdk(ctx)
    handles = []
    try:
        with ctx.meter:
            handles = [(os.path.basename(p), open(p, "rb")) for p in paths]  # noqa: SIM115
            res = client.jobs.create_job(request=_sdk_create_request(handles))
    finally:
        for _, handle in handles:
            handle.close()
    job = res.job_information
    return _upload_result(ctx, job.id, job.input_file_ids)


# ----------------------------------------------------------------------------- b. many creates


async def _many(
    ctx: Ctx, one: Callable[[int], Awaitable[Any]], count: int, concurrency: int
) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []

    async def task(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            try:
                await one(i)
            except Exception as exc:
                errors.append(describe_error(exc))
                return
            latencies.append(time.perf_counter() - start)

    with ctx.meter:
        await asyncio.gather(*(task(i) for i in range(count)))
    return {
        "ok": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "cpu_per_1k": ctx.meter.cpu / count * 1000,
        "req_s": count / ctx.meter.wall,
        **latency_summary(latencies),
    }


@workload("creates", "ours")
async def creates_ours(ctx: Ctx) -> dict[str, Any]:
    path, count, conc = ctx.params["path"], ctx.params["count"], ctx.params["concurrency"]
    async with _ours(ctx, max_connections=conc) as client:

        async def one(i: int) -> None:
            await client.create_job(template_id=TEMPLATE_ID, input_files=[path])

        return await _many(ctx, one, count, conc)


@workload("creates", "floor")
async def creates_floor(ctx: Ctx) -> dict[str, Any]:
    path, count, conc = ctx.params["path"], ctx.params["count"], ctx.params["concurrency"]
    floor = _floor(ctx, conc)
    try:

        async def one(i: int) -> None:
            await floor.create_job(REQUEST_DATA, [path])

        return await _many(ctx, one, count, conc)
    finally:
        await floor.close()


@workload("creates", "formdata")
async def creates_formdata(ctx: Ctx) -> dict[str, Any]:
    path, count, conc = ctx.params["path"], ctx.params["count"], ctx.params["concurrency"]
    name = os.path.basename(path)
    async with _raw_session(ctx, conc) as session:

        async def one(i: int) -> None:
            await _raw_create(session, ctx.url, [(name, open(path, "rb"))])  # noqa: SIM115

        return await _many(ctx, one, count, conc)


@workload("creates", "sdk")
async def creates_sdk(ctx: Ctx) -> dict[str, Any]:
    path, count, conc = ctx.params["path"], ctx.params["count"], ctx.params["concurrency"]
    name = os.path.basename(path)
    client = _sdk(ctx)

    async def one(i: int) -> None:
        with open(path, "rb") as handle:
            request = _sdk_create_request([(name, handle)])
            await client.jobs.create_job_async(request=request)

    return await _many(ctx, one, count, conc)


# ----------------------------------------------------------------------------- c. list jobs


async def _list_loop(ctx: Ctx, fetch: Callable[[], Awaitable[int]]) -> dict[str, Any]:
    expected, calls = ctx.params["jobs"], ctx.params["calls"]
    got = expected
    for _ in range(ctx.params.get("warmup", 1)):  # connection, first-use caches
        got = await fetch()
    walls: list[float] = []
    with ctx.meter:
        for _ in range(calls):
            start = time.perf_counter()
            got = await fetch()
            walls.append(time.perf_counter() - start)
    if got != expected:
        raise RuntimeError(f"listed {got} jobs, expected {expected}")
    walls.sort()
    return {
        "jobs": got,
        "wall_s": walls[len(walls) // 2],
        "cpu_s": ctx.meter.cpu / calls,
    }


@workload("list", "ours")
async def list_ours(ctx: Ctx) -> dict[str, Any]:
    async with _ours(ctx) as client:

        async def fetch() -> int:
            return len(await client.list_jobs())

        return await _list_loop(ctx, fetch)


@workload("list", "floor")
async def list_floor(ctx: Ctx) -> dict[str, Any]:
    floor = _floor(ctx)
    try:

        async def fetch() -> int:
            return len(await floor.list_jobs())

        return await _list_loop(ctx, fetch)
    finally:
        await floor.close()


@workload("list", "sdk")
async def list_sdk(ctx: Ctx) -> dict[str, Any]:
    from unstructured_client.models.operations import ListJobsRequest

    client = _sdk(ctx)

    async def fetch() -> int:
        res = await client.jobs.list_jobs_async(request=ListJobsRequest())
        return len(res.response_list_jobs)

    return await _list_loop(ctx, fetch)


# ----------------------------------------------------------------------------- d. sequential get


def _get_result(ctx: Ctx, latencies: list[float]) -> dict[str, Any]:
    return {
        "calls": len(latencies),
        "cpu_per_call_ms": ctx.meter.cpu / len(latencies) * 1000,
        **latency_summary(latencies),
    }


async def _get_loop_async(ctx: Ctx, one: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    for _ in range(ctx.params["warmup"]):
        await one()
    latencies: list[float] = []
    with ctx.meter:
        for _ in range(ctx.params["calls"]):
            start = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - start)
    return _get_result(ctx, latencies)


def _get_loop_sync(ctx: Ctx, one: Callable[[], Any]) -> dict[str, Any]:
    for _ in range(ctx.params["warmup"]):
        one()
    latencies: list[float] = []
    with ctx.meter:
        for _ in range(ctx.params["calls"]):
            start = time.perf_counter()
            one()
            latencies.append(time.perf_counter() - start)
    return _get_result(ctx, latencies)


@workload("get", "ours-sync")
def get_ours_sync(ctx: Ctx) -> dict[str, Any]:
    job_id = ctx.params["job_id"]
    with _ours_sync(ctx) as client:
        return _get_loop_sync(ctx, lambda: client.get_job(job_id))


@workload("get", "ours")
async def get_ours(ctx: Ctx) -> dict[str, Any]:
    job_id = ctx.params["job_id"]
    async with _ours(ctx) as client:
        return await _get_loop_async(ctx, lambda: client.get_job(job_id))


@workload("get", "floor")
async def get_floor(ctx: Ctx) -> dict[str, Any]:
    job_id = ctx.params["job_id"]
    floor = _floor(ctx)
    try:
        return await _get_loop_async(ctx, lambda: floor.get_job(job_id))
    finally:
        await floor.close()


@workload("get", "floor-sync")
def get_floor_sync(ctx: Ctx) -> dict[str, Any]:
    job_id = ctx.params["job_id"]
    with _floor_sync(ctx) as floor:
        return _get_loop_sync(ctx, lambda: floor.get_job(job_id))


@workload("get", "sdk")
async def get_sdk(ctx: Ctx) -> dict[str, Any]:
    from unstructured_client.models.operations import GetJobRequest

    client = _sdk(ctx)
    request = GetJobRequest(job_id=ctx.params["job_id"])
    return await _get_loop_async(ctx, lambda: client.jobs.get_job_async(request=request))


@workload("get", "sdk-sync")
def get_sdk_sync(ctx: Ctx) -> dict[str, Any]:
    from unstructured_client.models.operations import GetJobRequest

    client = _sdk(ctx)
    request = GetJobRequest(job_id=ctx.params["job_id"])
    return _get_loop_sync(ctx, lambda: client.jobs.get_job(request=request))


# ----------------------------------------------------------------------------- e. many files


def _many_files_result(ctx: Ctx, job_id: str, file_ids: list[str] | None) -> dict[str, Any]:
    return {
        "ok": True,
        "job_id": job_id,
        "files_recorded": len(file_ids or ()),
        "wall_s": ctx.meter.wall,
        "cpu_s": ctx.meter.cpu,
    }


@workload("many_files", "ours")
async def many_files_ours(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    async with _ours(ctx) as client:
        with ctx.meter:
            job = await client.create_job(template_id=TEMPLATE_ID, input_files=paths)
    return _many_files_result(ctx, job.id, job.input_file_ids)


@workload("many_files", "floor")
async def many_files_floor(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    floor = _floor(ctx)
    try:
        with ctx.meter:
            job = await floor.create_job(REQUEST_DATA, paths)
    finally:
        await floor.close()
    return _many_files_result(ctx, job["id"], job.get("input_file_ids"))


@workload("many_files", "formdata")
async def many_files_formdata(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    handles: list[tuple[str, Any]] = []
    async with _raw_session(ctx) as session:
        try:
            with ctx.meter:
                for p in paths:
                    handles.append((os.path.basename(p), open(p, "rb")))  # noqa: SIM115
                job = await _raw_create(session, ctx.url, handles)
        finally:
            for _, handle in handles:
                handle.close()
    return _many_files_result(ctx, job["id"], job.get("input_file_ids"))


@workload("many_files", "sdk")
async def many_files_sdk(ctx: Ctx) -> dict[str, Any]:
    paths = ctx.params["paths"]
    client = _sdk(ctx)
    handles: list[tuple[str, Any]] = []
    try:
        with ctx.meter:
            for p in paths:
                handles.append((os.path.basename(p), open(p, "rb")))  # noqa: SIM115
            res = await client.jobs.create_job_async(request=_sdk_create_request(handles))
    finally:
        for _, handle in handles:
            handle.close()
    job = res.job_information
    return _many_files_result(ctx, job.id, job.input_file_ids)


# ----------------------------------------------------------------------------- f. faults


async def _faulted(ctx: Ctx, one: Callable[[str, bytes], Awaitable[Any]]) -> dict[str, Any]:
    count, conc, prefix = ctx.params["count"], ctx.params["concurrency"], ctx.params["prefix"]
    sem = asyncio.Semaphore(conc)
    ok = 0
    errors: dict[str, int] = {}
    failed: list[str] = []

    async def task(i: int) -> None:
        nonlocal ok
        name = f"{prefix}-{i:05d}.txt"  # tags the logical request: duplicates share it
        async with sem:
            try:
                await one(name, name.encode() * 8)
            except Exception as exc:
                kind = type(exc).__name__
                errors[kind] = errors.get(kind, 0) + 1
                failed.append(name)
                return
            ok += 1

    with ctx.meter:
        await asyncio.gather(*(task(i) for i in range(count)))
    return {
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "failed_names": failed,
    }


@workload("faults", "ours")
async def faults_ours(ctx: Ctx) -> dict[str, Any]:
    async with _ours(ctx) as client:

        async def one(name: str, data: bytes) -> None:
            await client.create_job(template_id=TEMPLATE_ID, input_files=[(name, data)])

        return await _faulted(ctx, one)


@workload("faults", "formdata")
async def faults_formdata(ctx: Ctx) -> dict[str, Any]:
    async with _raw_session(ctx) as session:

        async def one(name: str, data: bytes) -> None:
            await _raw_create(session, ctx.url, [(name, data)])

        return await _faulted(ctx, one)


@workload("faults", "sdk")
async def faults_sdk(ctx: Ctx) -> dict[str, Any]:
    client = _sdk(ctx)

    async def one(name: str, data: bytes) -> None:
        await client.jobs.create_job_async(request=_sdk_create_request([(name, data)]))

    return await _faulted(ctx, one)


def run(name: str, client: str, ctx: Ctx) -> dict[str, Any]:
    """Run one workload for one client; figures plus wall/CPU of the measured block."""
    fn = REGISTRY[(name, client)]
    result = fn(ctx)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    assert isinstance(result, dict)
    result.setdefault("wall_s", ctx.meter.wall)
    result.setdefault("cpu_s", ctx.meter.cpu)
    return result
