"""The aiohttp application of the emulator: routes, auth, validation, faults, recording."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ._catalog import TEMPLATES, Catalog, parse_list_query, template_list_item, template_nodes
from ._control import (
    FAULTS_PATH,
    LIMITS_PATH,
    RECEIVED_PATH,
    fault_to_json,
    listing,
    read_fault,
    received_to_json,
)
from ._faults import CONTROL_PREFIX, Fault, FaultPlan, UnroutableFaultError
from ._limits import QUOTA_DETAIL, RATE_DETAIL, LimitState
from ._notifications import Notifications
from ._records import JOB_STATUSES, ReceivedFile, RecordedRequest
from ._state import JobStore, server_now
from ._upload import Form, UploadError, drain, read_form

__all__ = ["ApiApp"]

log = logging.getLogger("unstructured_jobs.testing")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY_HEADER = "unstructured-api-key"
DEFAULT_API_KEY = "emulator-key"
ARRIVED = web.RequestKey("arrived", float)
FILES = web.RequestKey("files", list[ReceivedFile])
#: Headers whose values are never recorded.
SECRET_HEADERS = frozenset({API_KEY_HEADER, "authorization", "proxy-authorization", "cookie"})


WORKFLOW_BUSY_DETAIL = "There is a running job in progress. No new job run."


class CallsPerMinute:
    """At most `calls` accepted calls per key in any 60 s of the emulator's clock (the per-job
    limit of file-status); a refused call is not counted. The caller holds the store's lock."""

    WINDOW = 60.0

    def __init__(self, calls: int) -> None:
        if not isinstance(calls, int) or calls < 1:
            raise ValueError(f"file_status_limit must be an integer >= 1 or None, got {calls!r}")
        self.calls = calls
        self._accepted: dict[object, deque[float]] = {}

    def refuse(self, key: object, now: float) -> int | None:
        """None (and count the call) if it may go, else the ``Retry-After`` seconds (>= 1)."""
        accepted = self._accepted.setdefault(key, deque(maxlen=self.calls))
        if len(accepted) == self.calls and now - accepted[0] < self.WINDOW - 1e-9:
            return max(1, math.ceil(accepted[0] + self.WINDOW - now))
        accepted.append(now)
        return None


class _Dropped(Exception):
    """Raised inside the middleware to close the connection without an answer."""


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _invalid(loc: list[str | int], msg: str, type_: str, value: Any = None) -> web.Response:
    """A 422 in FastAPI/pydantic v2 shape."""
    return _error(422, [{"type": type_, "loc": loc, "msg": msg, "input": value}])


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _bad_uuid(loc: list[str | int], value: str) -> web.Response:
    return _invalid(loc, "Input should be a valid UUID", "uuid_parsing", value)


class ApiApp:
    """Builds the ``web.Application`` and keeps the request log."""

    def __init__(
        self,
        store: JobStore,
        faults: FaultPlan,
        *,
        catalog: Catalog,
        api_key: str | None,
        limits: LimitState,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.faults = faults
        self.api_key = api_key
        self.limits = limits
        self._log_lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.file_status_limiter: CallsPerMinute | None = None  # set by Emulator, opt-in
        self.notifications = Notifications(
            store,
            workflow_exists=lambda workflow_id: catalog.get(workflow_id) is not None,
            key_header=API_KEY_HEADER,
        )
        """Job events: channels, the feed and webhook deliveries (``_notifications``)."""
        # What a fault may target: `inject` refuses a method or path no request can match.
        routes = [
            (r.method, r.resource.canonical) for r in self.build().router.routes() if r.resource
        ]
        faults.routes = [(m, path) for m, path in routes if not path.startswith(CONTROL_PREFIX)]

    def recorded(self) -> list[RecordedRequest]:
        """A copy of the request log."""
        with self._log_lock:
            return list(self.requests)

    def clear_log(self) -> None:
        """Forget the recorded requests."""
        with self._log_lock:
            self.requests.clear()

    async def _date_header(self, request: web.Request, response: web.StreamResponse) -> None:
        # A server whose clock is off sends its own time in Date, as a real one would.
        when = server_now(self.store.clock_offset)
        response.headers["Date"] = email.utils.format_datetime(when, usegmt=True)

    def build(self) -> web.Application:
        """A fresh application serving the contract's jobs endpoints."""
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        if self.store.clock_offset:
            app.on_response_prepare.append(self._date_header)
        app.router.add_post("/api/v1/jobs/", self.create_job)
        app.router.add_get("/api/v1/jobs/", self.list_jobs, allow_head=False)
        app.router.add_get("/api/v1/jobs/{job_id}", self.get_job, allow_head=False)
        app.router.add_get("/api/v1/jobs/{job_id}/details", self.job_details, allow_head=False)
        app.router.add_get(
            "/api/v1/jobs/{job_id}/failed-files", self.failed_files, allow_head=False
        )
        app.router.add_post("/api/v1/jobs/{job_id}/cancel", self.cancel_job)
        app.router.add_get("/api/v1/jobs/{job_id}/file-status", self.file_status, allow_head=False)
        app.router.add_get("/api/v1/jobs/{job_id}/download", self.download, allow_head=False)
        app.router.add_post("/api/v1/workflows/{workflow_id}/run", self.run_workflow)
        app.router.add_get("/api/v1/workflows/", self.list_workflows, allow_head=False)
        app.router.add_get("/api/v1/workflows/{workflow_id}", self.get_workflow, allow_head=False)
        app.router.add_get("/api/v1/templates/", self.list_templates, allow_head=False)
        app.router.add_get("/api/v1/templates/{template_id}", self.get_template, allow_head=False)
        app.router.add_get(FAULTS_PATH, self.list_faults, allow_head=False)
        app.router.add_post(FAULTS_PATH, self.add_fault)
        app.router.add_delete(FAULTS_PATH, self.clear_faults)
        app.router.add_get(LIMITS_PATH, self.limits_state, allow_head=False)
        app.router.add_get(RECEIVED_PATH, self.received, allow_head=False)
        self.notifications.add_routes(app)
        return app

    # -- middleware --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # When the request arrived (its headers, before its body), on the emulator's clock: the
        # launch interval is measured between arrivals, as a limiter in front of the app would.
        request[ARRIVED] = self.store.clock()
        if request.path.startswith(CONTROL_PREFIX):
            return await self._control(request, handler)
        fault = self.faults.pick(request.method, request.path)
        status: int | None = None
        try:
            response = await self._with_fault(request, handler, fault)
            status = response.status
            return response
        except _Dropped:
            transport = request.transport
            if transport is not None:
                transport.close()
            # Never sent: writing to the closed transport fails quietly inside aiohttp.
            return web.Response(status=500)
        finally:
            with self._log_lock:
                self.requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=request.path,
                        query=dict(request.query),
                        status=status,
                        fault=None if fault is None else fault.kind,
                        raw_path=request.rel_url.raw_path,
                        headers=tuple(
                            (k, "<redacted>" if k.lower() in SECRET_HEADERS else v)
                            for k, v in request.headers.items()
                        ),
                        files=tuple(request.get(FILES, ())),
                    )
                )

    async def _control(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A request to the emulator's own endpoints: no fault, not recorded, same auth."""
        response = await self._handle(request, handler)
        try:
            await drain(request)
        except ConnectionError:
            raise _Dropped from None
        return response

    async def _with_fault(
        self, request: web.Request, handler: Handler, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is not None:
            if fault.kind == "stall":
                await request.content.readany()
                await asyncio.sleep(fault.seconds)
                raise _Dropped
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind != "drop_after":
                await drain(request)
                if fault.kind == "drop_before":
                    raise _Dropped
                if fault.kind == "raw":
                    headers = dict(fault.headers)
                    if fault.content_type is not None:
                        headers["Content-Type"] = fault.content_type
                    return web.Response(status=fault.code or 200, body=fault.body, headers=headers)
                code = fault.code or 500
                extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
                return _error(code, fault.detail or HTTPStatus(code).phrase, extra)
        response = await self._handle(request, handler)
        try:
            await drain(request)
        except ConnectionError:
            raise _Dropped from None
        if fault is not None and fault.kind == "drop_after":
            raise _Dropped
        return response

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is None:
            denied = self._check_key(request)
            if denied is not None:
                return denied
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 404:
                return await self._not_found(request)
            if exc.status == 405:
                allow = exc.headers.get("Allow", "")
                return _error(405, "Method Not Allowed", {"Allow": allow} if allow else None)
            return _error(exc.status, exc.reason)
        except UploadError:
            return _error(400, "There was an error parsing the body")
        except ConnectionError:
            raise _Dropped from None  # the client went away mid-request: nothing to answer
        except Exception:
            log.exception("emulator handler failed")
            return _error(500, "Internal Server Error")

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        """404, or FastAPI's 307 to the same path with/without its trailing slash."""
        path = request.path
        alt = path[:-1] if path.endswith("/") else path + "/"
        if alt != "/" and alt:
            match = await request.app.router.resolve(request.clone(rel_url=alt))
            exc = match.http_exception
            if exc is None or exc.status == 405:
                location = request.url.with_path(alt).with_query(request.query)
                return web.Response(status=307, headers={"Location": str(location)})
        return _error(404, "Not Found")

    def _check_key(self, request: web.Request) -> web.Response | None:
        key = request.headers.get(API_KEY_HEADER, "")
        if not key:
            return _error(401, "API key is missing")
        if self.api_key is not None and key != self.api_key:
            return _error(401, "Invalid API key")
        return None

    async def _read_upload(self, request: web.Request) -> Form | web.Response:
        limits = self.limits.limits
        form = await read_form(request, limits.max_file_size)
        request[FILES] = form.files + form.oversized
        if form.nameless_file_at is not None:
            return _invalid(
                ["body", "input_files", form.nameless_file_at],
                "Value error, Expected UploadFile, received: <class 'str'>",
                "value_error",
            )
        if form.oversized:
            with self.store.lock:
                self.limits.refuse("max_file_size")
            names = ", ".join(f"{f.filename!r} ({f.size} bytes)" for f in form.oversized)
            return _error(
                413, f"File too large: {names}; the limit is {limits.max_file_size} bytes per file"
            )
        limit = limits.max_files_per_job
        if limit is not None and len(form.files) > limit:
            with self.store.lock:
                self.limits.refuse("max_files_per_job")
            return _error(400, f"Too many files: {len(form.files)} (limit {limit} per job)")
        return form

    def _launch(self, request: web.Request, **job: Any) -> web.Response | dict[str, Any]:
        """Create the job unless the launch interval (429) or the quota (402) refuses it."""
        state = self.limits
        files = len(job["files"])
        with self.store.lock:
            now = self.store.clock()
            wait = state.launch_wait(request.get(ARRIVED, now), now)
            if wait is not None:
                state.refuse("launch_interval")
                return _error(429, RATE_DETAIL, {"Retry-After": str(wait)})
            if state.quota_refuses(files):
                state.refuse("quota")
                return _error(402, QUOTA_DETAIL)
            created = self.store.create(**job)
            state.accept(request.get(ARRIVED, now), files)
            return created

    # -- endpoints ---------------------------------------------------------------------------

    async def create_job(self, request: web.Request) -> web.Response:
        """``POST /api/v1/jobs/``: multipart ``request_data`` + ``input_files``."""
        form = await self._read_upload(request)
        if isinstance(form, web.Response):
            return form
        loc: list[str | int] = ["body", "request_data"]
        if "request_data" in form.file_fields and "request_data" not in form.fields:
            return _invalid(loc, "Input should be a valid string", "string_type")
        raw = form.fields.get("request_data")
        if raw is None:
            return _invalid(loc, "Field required", "missing")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            return _invalid(loc, f"Value error, request_data is not valid JSON: {exc}",
                            "value_error", raw)  # fmt: skip
        problem = _check_request_data(data)
        if problem is not None:
            return _invalid(loc, f"Value error, {problem}", "value_error", raw)
        template = data.get("template_id")
        job_type, nodes = "ephemeral", None
        if template is not None and "job_nodes" not in data:  # with both, job_nodes run
            workflow_id = _uuid(template) or str(uuid.uuid4())
            known = TEMPLATES.get(template)
            name = f"template {template}" if known is None else known["name"]
            job_type, nodes = "template", template_nodes(template)
        else:
            workflow_id, name = str(uuid.uuid4()), "custom job"
        created = self._launch(
            request,
            endpoint="create_job",
            workflow_id=workflow_id,
            workflow_name=name,
            request_data=data,
            files=form.files,
            nodes=nodes,
            job_type=job_type,
        )
        return created if isinstance(created, web.Response) else web.json_response(created)

    async def run_workflow(self, request: web.Request) -> web.Response:
        """``POST /api/v1/workflows/{workflow_id}/run``: optional ``input_files``; 202."""
        raw_id = request.match_info["workflow_id"]
        workflow_id = _uuid(raw_id)
        if workflow_id is None:
            return _bad_uuid(["path", "workflow_id"], raw_id)
        form = await self._read_upload(request)
        if isinstance(form, web.Response):
            return form
        workflow = self.catalog.get(workflow_id)
        name, nodes, job_type = f"workflow {workflow_id[:8]}", None, "persistent"
        if workflow is not None:
            name, nodes = workflow["name"], workflow["workflow_nodes"]
            job_type = "scheduled" if workflow["schedule"] else "persistent"
        with self.store.lock:  # no job of the workflow may start between the check and the launch
            if self.store.active_run(workflow_id) is not None:
                # As the service answers (official SDK issue #286): a success status, no job.
                return web.json_response({"detail": WORKFLOW_BUSY_DETAIL}, status=202)
            created = self._launch(
                request,
                endpoint="run_workflow",
                workflow_id=workflow_id,
                workflow_name=name,
                request_data=None,
                files=form.files,
                nodes=nodes,
                job_type=job_type,
            )
        if isinstance(created, web.Response):
            return created
        return web.json_response(created, status=202)

    async def list_jobs(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/?workflow_id=&status=``."""
        status = request.query.get("status")
        if status is not None and status not in JOB_STATUSES:
            expected = ", ".join(f"'{s}'" for s in JOB_STATUSES[:-1])
            return _invalid(["query", "status"], f"Input should be {expected} or 'FAILED'",
                            "enum", status)  # fmt: skip
        workflow_id = request.query.get("workflow_id")
        if workflow_id is not None:
            workflow_id = _uuid(workflow_id) or workflow_id
        return web.json_response(self.store.list(workflow_id, status))

    def _job_id(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        raw = request.match_info["job_id"]
        job_id = _uuid(raw)
        return job_id, (_bad_uuid(["path", "job_id"], raw) if job_id is None else None)

    async def _job_view(
        self, request: web.Request, view: Callable[[str], dict[str, Any] | None]
    ) -> web.Response:
        job_id, error = self._job_id(request)
        if error is not None or job_id is None:
            return error or _error(500, "Internal Server Error")
        body = view(job_id)
        return _error(404, "Job not found") if body is None else web.json_response(body)

    async def get_job(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/{job_id}``: JobInformation."""
        return await self._job_view(request, self.store.info)

    async def job_details(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/{job_id}/details``: JobDetails."""
        return await self._job_view(request, self.store.details)

    async def failed_files(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/{job_id}/failed-files``: JobFailedFiles."""
        return await self._job_view(request, self.store.failed_files)

    async def file_status(self, request: web.Request) -> web.Response:
        """``GET /api/v1/jobs/{job_id}/file-status``: each file's status (see ``_state``);
        with ``file_status_limit``, 429 past that many calls per minute for a job and key."""
        job_id, error = self._job_id(request)
        if error is not None or job_id is None:
            return error or _error(500, "Internal Server Error")
        if self.store.info(job_id) is None:
            return _error(404, "Job not found")
        limiter = self.file_status_limiter
        if limiter is not None:
            key = request.headers.get(API_KEY_HEADER, "")
            with self.store.lock:
                wait = limiter.refuse((key, job_id), self.store.clock())
            if wait is not None:
                return _error(429, "Rate limit exceeded", {"Retry-After": str(wait)})
        return await self._job_view(request, self.store.file_status)

    async def cancel_job(self, request: web.Request) -> web.Response:
        """``POST /api/v1/jobs/{job_id}/cancel``: ``{"id", "status", "message"}``."""
        return await self._job_view(request, self.store.cancel)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/v1/jobs/{job_id}/download?file_id=&node_id=``: the output JSON."""
        job_id, error = self._job_id(request)
        if error is not None or job_id is None:
            return error or _error(500, "Internal Server Error")
        file_id = request.query.get("file_id")
        if file_id is None:
            return _invalid(["query", "file_id"], "Field required", "missing")
        node_id = request.query.get("node_id")
        if node_id is not None:
            parsed = _uuid(node_id)
            if parsed is None:
                return _bad_uuid(["query", "node_id"], node_id)
            node_id = parsed
        status, body = self.store.download(job_id, file_id, node_id)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="application/json")
        # A generated output (`OutputShape`): streamed piece by piece, never held whole.
        response = web.StreamResponse(status=status)
        response.content_type = "application/json"
        response.content_length = body.size
        await response.prepare(request)
        for chunk in body.chunks():
            await response.write(chunk)
        await response.write_eof()
        return response

    async def list_workflows(self, request: web.Request) -> web.Response:
        """``GET /api/v1/workflows/``: filters, sorting and paging (see ``_catalog``)."""
        query = parse_list_query(request.query)
        if isinstance(query, list):
            return _error(422, query)
        return web.json_response(self.catalog.list(query))

    async def get_workflow(self, request: web.Request) -> web.Response:
        """``GET /api/v1/workflows/{workflow_id}``: WorkflowInformation."""
        raw = request.match_info["workflow_id"]
        workflow_id = _uuid(raw)
        if workflow_id is None:
            return _bad_uuid(["path", "workflow_id"], raw)
        found = self.catalog.get(workflow_id)
        return _error(404, "Workflow not found") if found is None else web.json_response(found)

    async def list_templates(self, request: web.Request) -> web.Response:
        """``GET /api/v1/templates/``: every template, without nodes."""
        return web.json_response([template_list_item(t) for t in TEMPLATES.values()])

    async def get_template(self, request: web.Request) -> web.Response:
        """``GET /api/v1/templates/{template_id}``: one template with its nodes."""
        template_id = request.match_info["template_id"]
        found = TEMPLATES.get(template_id)
        if found is None:
            return _error(404, f"Template {template_id} not found")
        return web.json_response(found)

    # -- control endpoints (``/_emulator/``, see ``_control``) --------------------------------

    async def list_faults(self, request: web.Request) -> web.Response:
        """``GET /_emulator/faults``: every injection with its fired count."""
        return web.json_response(listing(self.faults))

    async def add_fault(self, request: web.Request) -> web.Response:
        """``POST /_emulator/faults``: inject the fault described by the JSON body; 201."""
        parsed = read_fault(await request.read())
        if isinstance(parsed, list):
            return _error(422, parsed)
        fault, method, path, times, optional = parsed
        try:
            injected = self.faults.inject(fault, method, path, times, optional)
        except UnroutableFaultError as exc:
            return _error(422, [{"type": "value_error", "loc": ["body", "path"],
                                 "msg": str(exc), "input": path}])  # fmt: skip
        return web.json_response(fault_to_json(injected), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """``DELETE /_emulator/faults``: forget every injection (like ``clear_faults()``)."""
        return web.json_response({"cleared": self.faults.clear()})

    async def received(self, request: web.Request) -> web.Response:
        """``GET /_emulator/received``: every recorded API request (``Emulator.requests``)."""
        return web.json_response({"requests": [received_to_json(r) for r in self.recorded()]})

    async def limits_state(self, request: web.Request) -> web.Response:
        """``GET /_emulator/limits``: the limits in force, the quota left, accepted launches
        and how many requests each limit refused."""
        with self.store.lock:
            return web.json_response(self.limits.as_json())


def _check_request_data(data: Any) -> str | None:
    """Why a parsed ``request_data`` is unacceptable, or None."""
    if not isinstance(data, dict):
        return "request_data must be a JSON object"
    has_template, has_nodes = "template_id" in data, "job_nodes" in data
    if not has_template and not has_nodes:
        return "request_data needs template_id or job_nodes"
    if has_template:
        template = data["template_id"]
        if not isinstance(template, str) or not template:
            return "template_id must be a non-empty string"
    if has_nodes:
        nodes = data["job_nodes"]
        if not isinstance(nodes, list) or not nodes or not all(isinstance(n, dict) for n in nodes):
            return "job_nodes must be a non-empty list of objects"
    return None
