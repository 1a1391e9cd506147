"""`AsyncJobsClient`: every jobs endpoint, in one file.

Each method validates its arguments (before any byte is sent), builds a `Request`, and hands it
to the transport with a consumer that turns the answer into records. Wire details live in
`_http.transport`; retry and error policy in `_core`.

Adding an endpoint: write its method here (a `Request` with its `Safety`, success statuses and,
for a request that creates something, its `on_lost`), its records in `_models` and its route in
the emulator, then run ``python scripts/generate_sync.py``: it writes the method's blocking twin
on `JobsClient` and, for a method that sends one request, its `with_raw_response` twins (the
marked block below and ``_sync/client.py``). tests/unit/test_generated.py fails until you do.
"""

from __future__ import annotations

import copy
import functools
import gc
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.to_thread

from . import _core, _run_job
from . import _notifications as _events
from ._clock import SYSTEM_CLOCK, Clock
from ._constants import (
    BULK_ANSWER,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_WAIT_TIMEOUT,
    ENV_API_KEY,
    FILE_STATUS_CALLS,
    FILE_STATUS_MARGIN,
    FILE_STATUS_WINDOW,
    LOGGER_NAME,
    POLL_BACKOFF,
    UPLOAD_CHUNK_SIZE,
)
from ._converter import ShapeError, structure
from ._core import (
    MayHaveCreatedJob,
    Request,
    Safety,
    api_path,
    validate_id,
    validate_name_id,
)
from ._exceptions import (
    InvalidInputError,
    RequestTooLargeError,
    ResponseValidationError,
    ServiceLimitError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from ._files.downloads import read_output, spool, stream_to_file
from ._files.elements import iter_elements
from ._files.inputs import (
    InputFile,
    InputFileLike,
    PreparedFile,
    prepare_files,
    request_data_json,
)
from ._files.multipart import MultipartBody, ProgressCallback
from ._http import proxy as _proxy
from ._http import tls as _tls
from ._http.hooks import EventHooks, Hooks
from ._http.pacing import CallPacer
from ._http.response import RawResponse
from ._http.tls import SSLOption
from ._http.transport import Attempt, ConnectionPool, SessionFactory, Transport
from ._models import (
    CancelJobResult,
    ChannelType,
    JobDetails,
    JobEventType,
    JobFailedFiles,
    JobFileStatus,
    JobInformation,
    JobStatus,
    MarkReadResult,
    NotificationChannel,
    NotificationEvent,
    NotificationPage,
    Template,
    TemplateDetail,
    UnreadCount,
    Workflow,
    WorkflowState,
)
from ._options import RetryConfig, ServiceLimits, Timeout
from ._run_job import JobRun
from ._secret import Secret

if TYPE_CHECKING:
    from ._bars import StatusProgress

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
P = ParamSpec("P")
FILE_STATUS_EVERY = FILE_STATUS_WINDOW / FILE_STATUS_CALLS
"""Seconds between two reads of a job's files' states for ``wait_for_job(progress=True)``."""
AnswerCheck = Callable[..., Exception | None]
"""Called (with method, url, status, headers, body) on a success answer that is not the record
expected: the error that answer stands for (`_core.workflow_busy_error`), or None."""
PollCallback = Callable[[JobInformation], Any]
"""Called with each job state read while waiting (on the event loop's thread: keep it quick)."""
FilesCallback = Callable[[JobFileStatus], Any]
"""Called with the job's files' states (`get_job_file_status`) while waiting: ``on_files`` of
`AsyncJobsClient.wait_for_job`, `watch_job` and `run_job` (on the event loop's thread)."""


class AsyncJobsClient:
    """Async client for the jobs endpoints of the Unstructured Platform API.

    Use it as ``async with AsyncJobsClient() as client: ...`` (or call `aclose`). Arguments:

    - `api_key`: defaults to ``$UNSTRUCTURED_API_KEY``; sent as the ``unstructured-api-key``
      header and never shown in reprs, logs or errors.
    - `server_url`: defaults to ``$UNSTRUCTURED_API_URL``, then the public service. Either
      ``https://HOST`` or ``https://HOST/api/v1`` (as the REST docs give it); anything else, or
      an empty value, is an `InvalidInputError`. Plain ``http://`` is refused for hosts other
      than loopback unless `allow_insecure_http`.
    - `timeout`: a `Timeout` (connect, read-inactivity, upload-stall) or seconds for all three.
    - `max_retries`, `retry_budget`: retries per request and seconds of waiting they may use.
    - `max_connections`: concurrent connections to the API (requests beyond it queue, with no
      timeout running while they wait).
    - `trust_env` (default True): use the proxy that ``HTTPS_PROXY`` / ``HTTP_PROXY`` (or
      their lower-case forms) set for the server's scheme, unless ``NO_PROXY`` excludes the
      host, as requests and httpx do. Read once, when the client is created. A loopback server
      (``127.0.0.0/8``, ``::1``, ``localhost``: the emulator) is never proxied. Only
      ``http://`` proxies; credentials in their URL are sent as ``Proxy-Authorization`` and
      never logged. ``trust_env=False`` ignores the proxy variables.
    - `ssl`: how the server's certificate is verified. True (default): against
      ``$SSL_CERT_FILE``, else ``$REQUESTS_CA_BUNDLE``, else the system's CAs, read when the
      client is created; a path: that CA bundle only (checked now: `InvalidInputError` if it is
      missing or holds no certificate); an `ssl.SSLContext`: used as is; False: no
      verification (unsafe: anyone on the path can read the API key). A certificate that cannot
      be verified raises `CertificateVerifyError` at once, before any byte of the request.
    - `session_factory`: a function returning an aiohttp session, called on first use inside
      the client's event loop (so it also works through `JobsClient`); the client closes it.
    - `session`: an aiohttp session to use instead of the client's own (not closed by us).
      With `session` or `session_factory`, proxies and TLS are that session's to configure:
      `ssl` and `trust_env` must keep their defaults.
    - `clock`: where every wait of the client goes (retry backoff, polling, the batch's
      launch rate): a `Clock` with ``now()`` and ``async sleep()``. Default: real time. Tests
      pass `unstructured_jobs.testing.FakeClock` to run retries and waits without sleeping.
    - `max_answer_bytes`: the largest JSON answer read, counted decompressed (default 256 MiB;
      100,000 listed jobs are about 80 MB); past it, `AnswerTooLargeError`. Downloads have
      their own bound, below.
    - `max_download_bytes`: the largest output `download_job_output` reads into memory
      (default 1 GiB; parsed, an output takes 2-3x its bytes); past it, `AnswerTooLargeError`
      naming the remedies. None: no bound. Outputs streamed to disk (`download_job_output_to`)
      and `run_job`'s (large ones spill to disk) are never bounded.
    - `event_hooks`: ``{"request": [...], "response": [...], "retry": [...]}``, functions (sync
      or async) called with a `RequestEvent`, `ResponseEvent` or `RetryEvent` for each attempt
      of every request, as httpx's ``event_hooks``: to count retries, time requests or add a
      header. They never see the API key, run on the event loop's thread, and an exception
      one raises reaches the caller unchanged (the README's "Event hooks").
    - `limits`: the service's published limits (`ServiceLimits`: 10 files per job, 50 MB per
      file, one launch per second, 5 running jobs). `create_job` and `run_workflow` refuse a
      request over a file limit with `ServiceLimitError` before sending anything; the batch
      engine groups and paces by them. ``ServiceLimits(files_per_job=None)`` lifts one.

    Every request method also takes `timeout` and `max_retries` to override them for one call
    (`max_retries` may be a `RetryConfig(max_retries, budget)` to change the time budget too).
    """

    def __init__(
        self,
        api_key: str | None = None,
        server_url: str | None = None,
        *,
        timeout: Timeout | float = Timeout(),  # noqa: B008 - immutable value object
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        ssl: SSLOption = True,
        session_factory: SessionFactory | None = None,
        clock: Clock | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        event_hooks: EventHooks | None = None,
        limits: ServiceLimits = ServiceLimits(),  # noqa: B008 - immutable value object
        max_download_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        # The key goes into a Secret at once: no frame keeps it in a plain local (see _secret).
        given = Secret.of(api_key if api_key is not None else os.environ.get(ENV_API_KEY))
        del api_key
        secret = _check_key(given)
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidInputError(
                f"clock must have now() and async sleep(), got {type(clock).__name__}"
            )
        url = _core.resolve_server_url(server_url, os.environ)
        if max_connections < 1:
            raise InvalidInputError("max_connections must be >= 1")
        if max_answer_bytes < 1:
            raise InvalidInputError("max_answer_bytes must be >= 1")
        if not isinstance(limits, ServiceLimits):
            raise InvalidInputError(f"limits must be a ServiceLimits, got {type(limits).__name__}")
        self.limits = limits
        """The `ServiceLimits` checked before sending (and that a batch paces itself by)."""
        if max_download_bytes is not None and max_download_bytes < 1:
            raise InvalidInputError("max_download_bytes must be >= 1 or None")
        self._max_download_bytes = max_download_bytes
        self.server_url = _core.check_server_url(url, allow_insecure_http=allow_insecure_http)
        ssl_context: SSLContext | bool = True
        proxy: _proxy.Proxy | None = None
        if session is not None or session_factory is not None:
            if session is not None and session_factory is not None:
                raise InvalidInputError("pass session or session_factory, not both")
            if ssl is not True or trust_env is not True:
                raise InvalidInputError(
                    "ssl= and trust_env= configure the client's own session; configure the "
                    "connector and trust_env of the session you pass instead"
                )
        else:
            tls_used = urlsplit(self.server_url).scheme == "https"
            ssl_context = _tls.build_context(ssl, tls_used=tls_used)
            proxy = _proxy.from_environment(self.server_url) if trust_env else None
        self.clock: Clock = clock or SYSTEM_CLOCK
        """The client's `Clock` (the batch engine waits on it too)."""
        pool = ConnectionPool(
            max_connections=max_connections,
            session=session,
            session_factory=session_factory,
            ssl=ssl_context,
        )
        self._transport = Transport(
            pool=pool,
            base_url=self.server_url,
            api_key=secret,
            timeout=Timeout.coerce(timeout) or Timeout(),
            retries=RetryConfig(max_retries, retry_budget),
            clock=self.clock,
            max_answer_bytes=max_answer_bytes,
            proxy=proxy,
            hooks=Hooks.of(event_hooks),
        )
        self._raw = False
        # Shared by the copies `with_options` makes: the limit is the service's, not a copy's.
        self._file_status_pacer = CallPacer(
            calls=FILE_STATUS_CALLS,
            window=FILE_STATUS_WINDOW,
            margin=FILE_STATUS_MARGIN,
            clock=self.clock,
        )

    def __repr__(self) -> str:
        return f"AsyncJobsClient(server_url={getattr(self, 'server_url', None)!r}, api_key='***')"

    async def __aenter__(self) -> AsyncJobsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections (not a session you passed in).

        Copies made by `with_options` share the connections: closing one closes them all.
        """
        await self._transport.aclose()

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
        retry_budget: float | None = None,
        event_hooks: EventHooks | None = None,
        limits: ServiceLimits | None = None,
    ) -> AsyncJobsClient:
        """A copy of this client with other settings, sharing its connection pool.

        >>> fast = client.with_options(timeout=5, max_retries=0)   # doctest: +SKIP
        >>> await fast.get_job(job_id)                             # doctest: +SKIP

        Arguments left None keep this client's value. `max_retries` may be a
        `RetryConfig(max_retries, budget)`, as the request methods take, instead of
        `max_retries` and `retry_budget` (not both). The copy is cheap (no new connections)
        and lives as long as this client: closing either closes both. `api_key` lets one pool
        serve several keys (a web server acting for several accounts). `event_hooks`
        replaces this client's hooks in the copy (``{}``: none); `limits` its `ServiceLimits`.
        """
        given = Secret.of(api_key)
        del api_key
        secret = None if given is None else _check_key(given)
        old = self._transport.retries
        if isinstance(max_retries, RetryConfig):
            if retry_budget is not None:
                raise InvalidInputError("pass retry_budget or a RetryConfig, not both")
            retries = max_retries
        else:
            retries = RetryConfig(
                old.max_retries if max_retries is None else max_retries,
                old.budget if retry_budget is None else retry_budget,
            )
        transport = self._transport.evolve(
            api_key=secret,
            timeout=Timeout.coerce(timeout),
            retries=retries,
            hooks=None if event_hooks is None else Hooks.of(event_hooks),
        )
        clone = self._copy(transport=transport, raw=self._raw)
        if limits is not None:
            if not isinstance(limits, ServiceLimits):
                raise InvalidInputError(
                    f"limits must be a ServiceLimits, got {type(limits).__name__}"
                )
            clone.limits = limits
        return clone

    @functools.cached_property
    def with_raw_response(self) -> AsyncRawResponses:
        """Each request method, returning a `RawResponse` (status, headers, request id,
        elapsed, retries taken) instead of the record; ``.parse()`` gives the record.

        >>> raw = await client.with_raw_response.get_job(job_id)   # doctest: +SKIP
        >>> raw.status, raw.request_id, raw.parse().status         # doctest: +SKIP
        """
        return AsyncRawResponses(self._copy(transport=self._transport, raw=True))

    def _with_limits(self, limits: ServiceLimits) -> AsyncJobsClient:
        """A copy that checks `limits` instead (a batch's own options), sharing the pool."""
        clone = self._copy(transport=self._transport, raw=self._raw)
        clone.limits = limits
        return clone

    def _copy(self, *, transport: Transport, raw: bool) -> AsyncJobsClient:
        clone = copy.copy(self)  # every attribute, so a new one cannot be forgotten here
        clone.__dict__.pop("with_raw_response", None)  # a cached view of the original
        clone._transport = transport
        clone._raw = raw
        return clone

    # ------------------------------------------------------------------ jobs

    async def create_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Create an on-demand job from a template or custom nodes, uploading `input_files`.

        Pass `template_id` (see `list_templates`), `job_nodes`, or both (sent together, as
        the vendor's REST collection does; which one the server runs is the server's choice),
        or else `request_data` alone (a dict or its JSON).
        Every local file is checked before anything is sent; files are streamed from disk one at
        a time. The request is retried only where the server cannot have created the job; after
        an ambiguous failure `JobMayExistError` is raised instead. More files than
        ``limits.files_per_job`` or one larger than ``limits.bytes_per_file`` raise
        `ServiceLimitError` before sending; a 413 answer is a `RequestTooLargeError` naming
        the files.
        """
        try:
            data = request_data_json(
                template_id=template_id, job_nodes=job_nodes, request_data=request_data
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        files = _within_limits(await _prepare(input_files), self.limits)
        body = MultipartBody(files, fields=[("request_data", data)], on_progress=on_upload_progress)
        lost = MayHaveCreatedJob(tuple(body.file_names), data)
        request = Request("POST", api_path("jobs", ""), Safety.UNSAFE, body=body, on_lost=lost)
        try:
            return await self._send(request, JobInformation, timeout, max_retries)
        except RequestTooLargeError as exc:
            _name_files(exc, files)
            raise

    async def run_workflow(
        self,
        workflow_id: str,
        *,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Run a long-lived workflow (a new job, answered with 202), optionally with files.

        The service runs a workflow only when no job of it is active: otherwise it starts none
        and says so, and `WorkflowBusyError` is raised (with the running job's id when the
        server gives it); wait for that job or cancel it, then run again.
        The files are checked against `limits` as `create_job` checks them.
        """
        path = api_path("workflows", validate_id(workflow_id, "workflow_id"), "run")
        files = _within_limits(await _prepare(input_files), self.limits)
        body = MultipartBody(files, on_progress=on_upload_progress) if files else None
        lost = MayHaveCreatedJob(tuple(body.file_names) if body is not None else ())
        request = Request("POST", path, Safety.UNSAFE, body=body, on_lost=lost)
        try:
            return await self._send(
                request, JobInformation, timeout, max_retries, check=_core.workflow_busy_error
            )
        except RequestTooLargeError as exc:
            _name_files(exc, files)
            raise

    async def list_jobs(
        self,
        *,
        workflow_id: str | None = None,
        status: JobStatus | str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[JobInformation]:
        """List jobs, optionally only those of one workflow and/or in one status."""
        params: list[tuple[str, str]] = []
        if workflow_id is not None:
            params.append(("workflow_id", validate_id(workflow_id, "workflow_id")))
        if status is not None:
            if not isinstance(status, str) or not status:
                raise InvalidInputError(f"status must be a JobStatus or its name, got {status!r}")
            params.append(("status", str(JobStatus(status).value)))
        request = Request("GET", api_path("jobs", ""), Safety.IDEMPOTENT, params=tuple(params))
        return await self._send(request, list[JobInformation], timeout, max_retries)

    async def get_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Get one job."""
        request = Request("GET", api_path("jobs", validate_id(job_id, "job_id")), Safety.IDEMPOTENT)
        return await self._send(request, JobInformation, timeout, max_retries)

    async def get_job_details(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobDetails:
        """Get a job's processing status and per-node file counters."""
        path = api_path("jobs", validate_id(job_id, "job_id"), "details")
        return await self._send(
            Request("GET", path, Safety.IDEMPOTENT), JobDetails, timeout, max_retries
        )

    async def get_job_failed_files(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobFailedFiles:
        """Get the input files of a job that failed, with their errors."""
        path = api_path("jobs", validate_id(job_id, "job_id"), "failed-files")
        request = Request("GET", path, Safety.IDEMPOTENT)
        return await self._send(request, JobFailedFiles, timeout, max_retries)

    async def get_job_file_status(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobFileStatus:
        """Get every file of a job with its status: READY, IN_PROGRESS, SUCCESS or FAILURE
        (`FileProcessingStatus`), its error, time taken and current node.

        The service allows 12 calls per minute for each job (and API key). The client keeps to
        it by waiting, not failing: a 13th call for the same job within a minute waits its turn,
        on the client's clock, until the oldest of the last 12 is a minute (and half a second)
        old; turns go in call order, concurrent calls and ``with_options`` copies included.
        A 429 that comes anyway (another process polling the same job with the same key) is
        retried as any read is, after the server's ``Retry-After``.

        The job's own status (`get_job`) says whether it has finished; see `JobFileStatus`.
        """
        job_id = validate_id(job_id, "job_id")
        path = api_path("jobs", job_id, "file-status")
        await self._file_status_pacer.wait_turn(job_id)
        request = Request("GET", path, Safety.IDEMPOTENT)
        return await self._send(request, JobFileStatus, timeout, max_retries)

    async def cancel_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> CancelJobResult:
        """Cancel a job. Not retried after an ambiguous failure (`AmbiguousRequestError`)."""
        path = api_path("jobs", validate_id(job_id, "job_id"), "cancel")
        return await self._send(
            Request("POST", path, Safety.UNSAFE), CancelJobResult, timeout, max_retries
        )

    async def download_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Any:
        """Download one output of a completed job, parsed from JSON (usually a list of elements).

        `file_id` comes from the job's `input_file_ids`, or from `output_node_files` together
        with its `node_id`. The output is held in memory, up to the client's
        `max_download_bytes` (default 1 GiB; past it, `AnswerTooLargeError`):
        `download_job_output_to` streams any size to disk instead, and `iter_elements` reads
        a saved output one element at a time.
        """
        request = self._download_request(job_id, file_id, node_id)
        limit = self._max_download_bytes

        async def consume(response: aiohttp.ClientResponse, attempt: Attempt) -> Any:
            body = await read_output(request, response, limit)
            if self._raw:
                return _raw_response(
                    request,
                    response,
                    attempt,
                    body,
                    lambda: _parse_answer(request, response, body, object),
                )
            return _parse_answer(request, response, body, object)

        data: Any = await self._transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )
        return data

    async def download_job_output_to(
        self,
        job_id: str,
        destination: str | os.PathLike[str],
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Path:
        """Stream one output to the file `destination`, in constant memory; return its path.

        The bytes go to a temporary file in the same folder (created if missing), renamed into
        place only once complete, so a failed download never leaves a truncated file behind.
        `destination` is used as given: build it with `unstructured_jobs.paths.safe_output_name`
        when it comes from server data.
        """
        target = Path(destination)
        request = self._download_request(job_id, file_id, node_id)

        async def consume(response: aiohttp.ClientResponse, attempt: Attempt) -> Any:
            path = await stream_to_file(response, target)
            if self._raw:
                return _raw_response(request, response, attempt, b"", lambda: path)
            return path

        path: Path = await self._transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )
        return path

    async def iter_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> AsyncIterator[Any]:
        """Yield the elements of one output one at a time, in constant memory, whatever its size.

        The output is first streamed to a temporary file (`download_job_output_to`, with its
        retries: an output cut short is fetched again, so no element is ever yielded twice),
        then parsed incrementally (`iter_elements`) in a worker thread, a few elements per
        trip. The file is removed when the iteration ends, breaks or fails. The output must
        be a JSON list (`InvalidInputError` otherwise). To keep the file, use
        `download_job_output_to` and `iter_elements` yourself.
        """
        folder = Path(await anyio.to_thread.run_sync(_private_folder))
        elements: Iterator[Any] | None = None
        try:
            path = await self.download_job_output_to(
                job_id,
                folder / "output.json",
                file_id=file_id,
                node_id=node_id,
                timeout=timeout,
                max_retries=max_retries,
            )
            elements = iter_elements(path)
            while batch := await anyio.to_thread.run_sync(_next_batch, elements):
                for element in batch:
                    yield element
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_remove_folder, elements, folder)

    # ------------------------------------------------------------------ templates, workflows

    async def list_templates(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[Template]:
        """List the job templates: their `id` is what create_job takes as `template_id`."""
        request = Request("GET", api_path("templates", ""), Safety.IDEMPOTENT)
        return await self._send(request, list[Template], timeout, max_retries, unwrap="templates")

    async def get_template(
        self,
        template_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> TemplateDetail:
        """Get one template with its nodes. Template ids are names (``hi_res_partition``),
        not UUIDs; an unknown one raises `NotFoundError`."""
        path = api_path("templates", validate_name_id(template_id, "template_id"))
        request = Request("GET", path, Safety.IDEMPOTENT)
        return await self._send(request, TemplateDetail, timeout, max_retries, unwrap="template")

    async def list_workflows(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: WorkflowState | str | None = None,
        name: str | None = None,
        source_id: str | None = None,
        destination_id: str | None = None,
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: str | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        show_only_soft_deleted: bool | None = None,
        show_recommender_workflows: bool | None = None,
        dag_node_configuration_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[Workflow]:
        """List workflows (one page of them when `page`/`page_size` are given).

        Every filter is optional and sent only when given: `status` (``active``,
        ``inactive``), `name`, a connector (`source_id`, `destination_id`), creation time
        (`created_since`, `created_before`: datetimes, naive ones taken as UTC), order
        (`sort_by` a field name, `sort_direction` ``asc``/``desc``), `page` (from 1) and
        `page_size`. Creating, updating and deleting workflows is not part of this client.
        """
        params = _core.workflow_filters(
            page=page,
            page_size=page_size,
            status=status,
            name=name,
            source_id=source_id,
            destination_id=destination_id,
            created_since=created_since,
            created_before=created_before,
            sort_by=sort_by,
            sort_direction=sort_direction,
            show_only_soft_deleted=show_only_soft_deleted,
            show_recommender_workflows=show_recommender_workflows,
            dag_node_configuration_id=dag_node_configuration_id,
        )
        request = Request("GET", api_path("workflows", ""), Safety.IDEMPOTENT, params=params)
        return await self._send(request, list[Workflow], timeout, max_retries)

    async def get_workflow(
        self,
        workflow_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Workflow:
        """Get one workflow (its nodes, connectors, schedule); run it with `run_workflow`."""
        path = api_path("workflows", validate_id(workflow_id, "workflow_id"))
        return await self._send(
            Request("GET", path, Safety.IDEMPOTENT), Workflow, timeout, max_retries
        )

    # ------------------------------------------------------------------ job events

    async def create_notification_channel(
        self,
        *,
        event_types: Sequence[JobEventType | str],
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Create a channel that receives job events: a webhook (`url`, ``https://``, with an
        optional signing `secret` of 24-75 ASCII characters) or an email channel
        (`recipient_email`, optional `cc` and `reply_to`; it stays disabled until
        `verify_notification_channel`).

        Scoped to the workspace, or to one workflow with `workflow_id`. The secret is
        write-only (never returned, never shown in reprs, logs or errors). Not retried after
        an ambiguous failure (`AmbiguousRequestError`): list the channels to see whether it
        was created.
        """
        given = Secret.of(secret)  # never a plain local, even while it is checked
        del secret
        given = _events.signing_secret(given)
        if (url is None) == (recipient_email is None):
            raise InvalidInputError("pass url= (a webhook channel) or recipient_email= (email)")
        fields: dict[str, Any] = {
            "channel_type": "webhook" if url is not None else "email",
            "event_types": _events.event_types(event_types),
            "enabled": _flag(enabled, "enabled"),
        }
        if description is not None:
            fields["description"] = _events.description(description)
        if url is not None:
            if cc is not None or reply_to is not None:
                raise InvalidInputError("cc and reply_to go with recipient_email, not url")
            fields["url"] = _events.webhook_url(url)
            if given is not None:
                fields["secret"] = given
        else:
            if given is not None:
                raise InvalidInputError("secret goes with a webhook channel (url=)")
            fields["email_config"] = _events.email_config(recipient_email, cc, reply_to)
        path = _events.channels_path(workflow_id)
        request = Request("POST", path, Safety.UNSAFE, body=_events.JsonBody(fields))
        return await self._send(request, NotificationChannel, timeout, max_retries)

    async def list_notification_channels(
        self,
        *,
        channel_type: ChannelType | str,
        enabled: bool | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[NotificationChannel]:
        """List the workspace's channels of one type (``webhook`` or ``email``: the service
        requires it), or those of one workflow with `workflow_id`; `enabled` filters."""
        params = [("channel_type", _events.channel_type_of(channel_type))]
        if enabled is not None:
            params.append(("enabled", "true" if _flag(enabled, "enabled") else "false"))
        path = _events.channels_path(workflow_id)
        request = Request("GET", path, Safety.IDEMPOTENT, params=tuple(params))
        return await self._send(
            request, list[NotificationChannel], timeout, max_retries, unwrap="items"
        )

    async def get_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Get one channel (of the workspace, or of the workflow `workflow_id`)."""
        path = _events.channels_path(workflow_id, _events.channel_id(channel_id))
        request = Request("GET", path, Safety.IDEMPOTENT)
        return await self._send(request, NotificationChannel, timeout, max_retries)

    async def update_notification_channel(
        self,
        channel_id: str,
        *,
        event_types: Sequence[JobEventType | str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Change a channel: only the arguments given are sent (PATCH). ``secret=""`` removes
        a webhook's custom signing secret; any other secret is checked as on create."""
        given = Secret.of(secret)  # never a plain local, even while it is checked
        del secret
        given = _events.signing_secret(given, allow_empty=True)
        fields: dict[str, Any] = {}
        if event_types is not None:
            fields["event_types"] = _events.event_types(event_types)
        if enabled is not None:
            fields["enabled"] = _flag(enabled, "enabled")
        if description is not None:
            fields["description"] = _events.description(description)
        if url is not None:
            fields["url"] = _events.webhook_url(url)
        if given is not None:
            fields["secret"] = given
        config = _events.email_config(recipient_email, cc, reply_to)
        if config:
            fields["email_config"] = config
        if not fields:
            raise InvalidInputError("nothing to update: pass at least one field to change")
        path = _events.channels_path(workflow_id, _events.channel_id(channel_id))
        request = Request("PATCH", path, Safety.IDEMPOTENT, body=_events.JsonBody(fields))
        return await self._send(request, NotificationChannel, timeout, max_retries)

    async def delete_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> None:
        """Delete a channel. Not retried after an ambiguous failure (a second delete would
        answer 404): `AmbiguousRequestError` then."""
        path = _events.channels_path(workflow_id, _events.channel_id(channel_id))
        request = Request("DELETE", path, Safety.UNSAFE)
        return await self._send_no_content(request, timeout, max_retries)

    async def verify_notification_channel(
        self,
        channel_id: str,
        code: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> None:
        """Verify an email channel with the 6-digit `code` the service emailed (webhook
        channels need no verification). Not retried after an ambiguous failure."""
        code = _events.verification_code(code)
        # The verify page names the field ``verification_code``, the platform's OpenAPI
        # ``code``: both are sent (FastAPI ignores a field it does not know).
        body = _events.JsonBody({"verification_code": code, "code": code})
        path = _events.channels_path(workflow_id, _events.channel_id(channel_id), "verify")
        request = Request("POST", path, Safety.UNSAFE, body=body)
        return await self._send_no_content(request, timeout, max_retries)

    async def list_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        unread_only: bool | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationPage:
        """One page of the job-event feed, newest first: the events and the `next_cursor` to
        pass back for the next page (None on the last). Filters: `workflow_id`, `event_types`,
        `since` (a datetime; naive is UTC), `unread_only`; `limit` 1-100 (server default 50).
        `iter_notifications` follows the cursors for you."""
        params = _events.feed_params(
            workflow_id=workflow_id,
            event_types_=event_types,
            since=since,
            limit=limit,
            cursor=cursor,
            unread_only=unread_only,
        )
        request = Request("GET", api_path("notifications"), Safety.IDEMPOTENT, params=params)
        return await self._send(request, NotificationPage, timeout, max_retries)

    async def iter_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        unread_only: bool | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[NotificationEvent]:
        """Yield every event of the feed that matches, newest first, page after page
        (`list_notifications` with each `next_cursor`, `page_size` events a page). A server
        that hands back a cursor already followed raises `ResponseValidationError` instead of
        looping for ever."""
        _events.feed_params(  # every argument checked before the first request
            workflow_id=workflow_id,
            event_types_=event_types,
            since=since,
            limit=page_size,
            cursor=None,
            unread_only=unread_only,
        )
        cursor: str | None = None
        followed: set[str] = set()
        while True:
            page = await self.list_notifications(
                workflow_id=workflow_id,
                event_types=event_types,
                since=since,
                limit=page_size,
                cursor=cursor,
                unread_only=unread_only,
            )
            for event in page.events:
                yield event
            cursor = page.next_cursor
            if not cursor:
                return
            if cursor in followed:
                raise ResponseValidationError(
                    f"GET {self.server_url}/api/v1/notifications: the server gave the cursor "
                    f"{cursor!r:.60} again; stopped rather than read the same pages for ever",
                    method="GET",
                    url=self.server_url + api_path("notifications"),
                    status=200,
                    snippet="",
                )
            followed.add(cursor)

    async def get_unread_notification_count(
        self,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> UnreadCount:
        """How many events of the feed the current user (API key) has not marked read,
        optionally of one workflow: ``.unread_count``."""
        params: tuple[tuple[str, str], ...] = ()
        if workflow_id is not None:
            params = (("workflow_id", validate_id(workflow_id, "workflow_id")),)
        path = api_path("notifications", "unread-count")
        request = Request("GET", path, Safety.IDEMPOTENT, params=params)
        return await self._send(request, UnreadCount, timeout, max_retries)

    async def mark_notifications_read(
        self,
        *,
        notification_ids: Sequence[str] | None = None,
        before: datetime | None = None,
        mark_all: bool = False,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> MarkReadResult:
        """Mark events read for the current user: exactly one of `notification_ids` (at most
        100), `before` (every event created before that time) or ``mark_all=True``;
        `workflow_id` narrows `before`/`mark_all` to one workflow. Returns ``.marked_count``.
        Not retried after an ambiguous failure (its count would be wrong)."""
        fields = _events.mark_read_body(
            notification_ids=notification_ids,
            before=before,
            mark_all=_flag(mark_all, "mark_all"),
            workflow_id=workflow_id,
        )
        path = api_path("notifications", "mark-read")
        request = Request("POST", path, Safety.UNSAFE, body=_events.JsonBody(fields))
        return await self._send(request, MarkReadResult, timeout, max_retries)

    async def get_notification(
        self,
        notification_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationEvent:
        """Get one event of the feed by its id."""
        path = api_path("notifications", validate_id(notification_id, "notification_id"))
        request = Request("GET", path, Safety.IDEMPOTENT)
        return await self._send(request, NotificationEvent, timeout, max_retries)

    # ------------------------------------------------------------------ waiting

    async def watch_job(
        self,
        job_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_files: FilesCallback | None = None,
    ) -> AsyncIterator[JobInformation]:
        """Yield the job each time its status changes, until it reaches a terminal status.

        Polls `get_job` with an interval that grows by 1.5x from `poll_interval` up to
        `max_poll_interval`. The first state is always yielded.

        `on_files` is called with the job's files' states (`JobFileStatus`: how many are
        READY, IN_PROGRESS, SUCCESS, FAILURE, ``status.count("SUCCESS")``), read after a poll
        that finds the job not finished, at most every `FILE_STATUS_EVERY` (5) seconds, and
        once more when it has finished if they were read before: within the service's 12 calls
        a minute per job, which the client also enforces (`get_job_file_status`). A file status
        that cannot be read is skipped (logged at DEBUG), never an error of the watch.
        """
        job_id = validate_id(job_id, "job_id")
        files = _FilesDue(self, job_id, [on_files] if on_files is not None else [])
        interval = poll_interval
        last: JobStatus | None = None
        while True:
            job = await self.get_job(job_id)
            await files.after_poll(job, None)
            if job.status != last:
                last = job.status
                yield job
            if job.status.is_terminal:
                return
            await self.clock.sleep(interval)
            interval = min(interval * POLL_BACKOFF, max_poll_interval)

    async def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_poll: PollCallback | None = None,
        progress: bool = False,
        on_files: FilesCallback | None = None,
    ) -> JobInformation:
        """Poll until the job is COMPLETED, FAILED or STOPPED and return it.

        `timeout` is the whole wait in seconds (None waits for ever); past it,
        `WaitTimeoutError` is raised carrying the last job seen. `on_poll` is called with every
        state read. A FAILED or STOPPED job is returned, not raised: check `job.status`.

        ``progress=True`` shows the job's status and a bar of its files done, with each file
        state's count (READY, IN_PROGRESS, SUCCESS, FAILURE: `get_job_file_status`, read at
        most every `FILE_STATUS_EVERY` seconds, within the service's 12 calls a minute) through
        ``tqdm.auto``: a widget in Jupyter, a bar on stderr elsewhere. Nothing is shown by
        default. A file status that cannot be read only leaves the bar as it was.

        `on_files` (with or without `progress`) is called with the files' states
        (`JobFileStatus`) as `watch_job` reads them: after a poll that finds the job not
        finished, at most every `FILE_STATUS_EVERY` (5) seconds (12 a minute, the service's
        limit per job, which `get_job_file_status` also keeps to), and once more at the end
        if they were read before; never past `timeout`.
        """
        job_id = validate_id(job_id, "job_id")
        deadline = None if timeout is None else self.clock.now() + timeout
        interval = poll_interval
        last: JobInformation | None = None
        shown = _status_display(job_id) if progress else None
        listeners: list[FilesCallback] = [] if shown is None else [shown.files]
        if on_files is not None:
            listeners.append(on_files)
        files = _FilesDue(self, job_id, listeners)

        def expired() -> WaitTimeoutError:
            state = f"still {last.status}" if last is not None else "not read yet"
            return WaitTimeoutError(
                f"job {job_id} is {state} after {timeout:g}s", job_id=job_id, last_job=last
            )

        try:
            while True:
                # Each poll (its retries included) gets only the time left, so that `timeout`
                # bounds the whole wait, not just the sleeps between polls.
                remaining = None if deadline is None else max(deadline - self.clock.now(), 0.0)
                with anyio.move_on_after(remaining) as scope:
                    polled = await self.get_job(job_id)
                if scope.cancelled_caught:
                    raise expired()
                last = polled
                await files.after_poll(last, deadline)  # first: a status line shows the counts
                if on_poll is not None:
                    on_poll(last)
                if shown is not None:
                    shown(last)
                if last.status.is_terminal:
                    return last
                now = self.clock.now()
                if deadline is not None and now + interval > deadline:
                    if deadline - now <= 0:
                        raise expired()
                    interval = deadline - now  # one last look exactly at the deadline
                await self.clock.sleep(interval)
                interval = min(interval * POLL_BACKOFF, max_poll_interval)
        finally:
            if shown is not None:
                shown.close()

    # ------------------------------------------------------------------ one call

    async def run_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_poll: PollCallback | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        spill_bytes: int = _run_job.DEFAULT_SPILL_BYTES,
        job_id: str | None = None,
        progress: bool = False,
        on_files: FilesCallback | None = None,
    ) -> JobRun:
        """Create a job, wait for it, and fetch every input file's output: a `JobRun`.

        Takes create_job's inputs, and wait_for_job's `timeout` (the whole wait, seconds;
        `WaitTimeoutError` past it, carrying the last job seen), `poll_interval`,
        `max_poll_interval` and `on_poll`. Built from those calls, so each request keeps its
        validation, retries and typed errors; per-request settings come from the client
        (`with_options(timeout=..., max_retries=...)`).

        ``run.files`` has one `FileOutput` per input file: its parsed `elements`, or its
        `error` (from the job's failed files, the status a FAILED or STOPPED job ended in, or a
        failed download). With `output_dir`, outputs are streamed to ``<file id>.json`` files
        there (safe names) and `FileOutput.path` is set instead of `elements`;
        ``run.to_dir(path)`` writes in-memory outputs the same way.

        No output is refused for its size. One of at most `spill_bytes` (default 16 MiB) is
        parsed into memory; a larger one is streamed to a temporary file (`FileOutput.spilled`)
        and parsed only when ``f.elements`` is first read, or gone through one element at a
        time with ``f.iter_elements()``. ``run.close()`` (or ``with run:``) removes those
        files; so does dropping the run and its files. ``spill_bytes=0`` spills every output.

        An error or an interrupt after the job was created (a wait timeout, a lost connection,
        Ctrl-C, a cancel) carries a note (``add_note``) with the job's id: the job exists on
        the server and is not cancelled. Do not run the same call again (that creates a second
        job): pass ``job_id=`` instead, which waits for that job and fetches its outputs, with
        no template, nodes or files.

        ``progress=True`` shows the wait as `wait_for_job` does (the job's status, its files'
        states), then the outputs fetched, through ``tqdm.auto``; nothing is shown by default.
        `on_files` gets the files' states while waiting, as in `wait_for_job`.
        """
        return await _run_job.run_job(
            self,
            template_id=template_id,
            job_nodes=job_nodes,
            request_data=request_data,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_poll=on_poll,
            output_dir=output_dir,
            spill_bytes=spill_bytes,
            job_id=job_id,
            progress=progress,
            on_files=on_files,
        )

    # ------------------------------------------------------------------ plumbing

    async def _download_spooled(
        self, job_id: str, file_id: str, spill_bytes: int, target: Callable[[], Path]
    ) -> tuple[Any, Path | None]:
        """`download_job_output` for `run_job`: ``(parsed output, None)`` when it is at most
        `spill_bytes`, else ``(None, path)`` of the file ``target()`` it was streamed to."""
        request = self._download_request(job_id, file_id, None)

        async def consume(response: aiohttp.ClientResponse, attempt: Attempt) -> Any:
            got = await spool(response, spill_bytes, target)
            if isinstance(got, Path):
                return None, got
            return _parse_answer(request, response, got, object), None

        result: tuple[Any, Path | None] = await self._transport.send(request, consume)
        return result

    def _download_request(self, job_id: str, file_id: str, node_id: str | None) -> Request:
        if not isinstance(file_id, str) or not file_id:
            raise InvalidInputError("file_id must be a non-empty string")
        params = [("file_id", file_id)]
        if node_id is not None:
            if not isinstance(node_id, str) or not node_id:
                raise InvalidInputError("node_id must be a non-empty string or None")
            params.append(("node_id", node_id))
        path = api_path("jobs", validate_id(job_id, "job_id"), "download")
        return Request("GET", path, Safety.IDEMPOTENT, params=tuple(params))

    def _send_no_content(
        self,
        request: Request,
        timeout: Timeout | float | None,
        max_retries: int | RetryConfig | None,
    ) -> Awaitable[None]:
        """Send a request answered without a body (204): None (its `RawResponse` when raw)."""

        async def consume(response: aiohttp.ClientResponse, attempt: Attempt) -> Any:
            content = await self._transport.read_answer(request, response)
            if self._raw:
                return _raw_response(request, response, attempt, content, lambda: None)
            return None

        return self._transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )

    def _send(
        self,
        request: Request,
        cls: type[T],
        timeout: Timeout | float | None,
        max_retries: int | RetryConfig | None,
        *,
        unwrap: str | None = None,
        check: AnswerCheck | None = None,
    ) -> Awaitable[T]:
        # Returns the transport's awaitable: no coroutine frame of its own on every call.
        transport = self._transport

        async def consume(response: aiohttp.ClientResponse, attempt: Attempt) -> Any:
            if transport.reads_whole(response):
                body = await response.read()
            else:
                body = await transport.read_answer(request, response)
            if not self._raw:
                return _parse_answer(request, response, body, cls, unwrap, check)

            def parse() -> T:
                return _parse_answer(request, response, body, cls, unwrap, check)

            return _raw_response(request, response, attempt, body, parse)

        return transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )


def _status_display(job_id: str) -> StatusProgress:
    """The command line's status bar, through tqdm.auto (imported only when asked for)."""
    from ._bars import Mode, StatusProgress

    return StatusProgress(Mode.AUTO, job_id)


# --- generated by scripts/generate_sync.py (do not edit): AsyncRawResponses ---
class AsyncRawResponses:
    """Each method that sends one request, returning a `RawResponse`."""

    def __init__(self, client: AsyncJobsClient) -> None:
        self._client = client  # a copy made to answer with RawResponse objects

    async def create_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`AsyncJobsClient.create_job`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.create_job(
                template_id=template_id,
                job_nodes=job_nodes,
                request_data=request_data,
                input_files=input_files,
                on_upload_progress=on_upload_progress,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def run_workflow(
        self,
        workflow_id: str,
        *,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`AsyncJobsClient.run_workflow`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.run_workflow(
                workflow_id,
                input_files=input_files,
                on_upload_progress=on_upload_progress,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def list_jobs(
        self,
        *,
        workflow_id: str | None = None,
        status: JobStatus | str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[JobInformation]]:
        """`AsyncJobsClient.list_jobs`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.list_jobs(
                workflow_id=workflow_id, status=status, timeout=timeout, max_retries=max_retries
            )
        )

    async def get_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`AsyncJobsClient.get_job`, returning a `RawResponse` of its result."""
        return _raw(await self._client.get_job(job_id, timeout=timeout, max_retries=max_retries))

    async def get_job_details(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobDetails]:
        """`AsyncJobsClient.get_job_details`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_job_details(job_id, timeout=timeout, max_retries=max_retries)
        )

    async def get_job_failed_files(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobFailedFiles]:
        """`AsyncJobsClient.get_job_failed_files`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_job_failed_files(
                job_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def get_job_file_status(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobFileStatus]:
        """`AsyncJobsClient.get_job_file_status`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_job_file_status(job_id, timeout=timeout, max_retries=max_retries)
        )

    async def cancel_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[CancelJobResult]:
        """`AsyncJobsClient.cancel_job`, returning a `RawResponse` of its result."""
        return _raw(await self._client.cancel_job(job_id, timeout=timeout, max_retries=max_retries))

    async def download_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Any]:
        """`AsyncJobsClient.download_job_output`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.download_job_output(
                job_id, file_id=file_id, node_id=node_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def download_job_output_to(
        self,
        job_id: str,
        destination: str | os.PathLike[str],
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Path]:
        """`AsyncJobsClient.download_job_output_to`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.download_job_output_to(
                job_id,
                destination,
                file_id=file_id,
                node_id=node_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def list_templates(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[Template]]:
        """`AsyncJobsClient.list_templates`, returning a `RawResponse` of its result."""
        return _raw(await self._client.list_templates(timeout=timeout, max_retries=max_retries))

    async def get_template(
        self,
        template_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[TemplateDetail]:
        """`AsyncJobsClient.get_template`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_template(template_id, timeout=timeout, max_retries=max_retries)
        )

    async def list_workflows(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: WorkflowState | str | None = None,
        name: str | None = None,
        source_id: str | None = None,
        destination_id: str | None = None,
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: str | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        show_only_soft_deleted: bool | None = None,
        show_recommender_workflows: bool | None = None,
        dag_node_configuration_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[Workflow]]:
        """`AsyncJobsClient.list_workflows`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.list_workflows(
                page=page,
                page_size=page_size,
                status=status,
                name=name,
                source_id=source_id,
                destination_id=destination_id,
                created_since=created_since,
                created_before=created_before,
                sort_by=sort_by,
                sort_direction=sort_direction,
                show_only_soft_deleted=show_only_soft_deleted,
                show_recommender_workflows=show_recommender_workflows,
                dag_node_configuration_id=dag_node_configuration_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def get_workflow(
        self,
        workflow_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Workflow]:
        """`AsyncJobsClient.get_workflow`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_workflow(workflow_id, timeout=timeout, max_retries=max_retries)
        )

    async def create_notification_channel(
        self,
        *,
        event_types: Sequence[JobEventType | str],
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`AsyncJobsClient.create_notification_channel`, as a `RawResponse`."""
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return _raw(
            await self._client.create_notification_channel(
                event_types=event_types,
                url=url,
                secret=hidden,
                recipient_email=recipient_email,
                cc=cc,
                reply_to=reply_to,
                description=description,
                enabled=enabled,
                workflow_id=workflow_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def list_notification_channels(
        self,
        *,
        channel_type: ChannelType | str,
        enabled: bool | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[NotificationChannel]]:
        """`AsyncJobsClient.list_notification_channels`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.list_notification_channels(
                channel_type=channel_type,
                enabled=enabled,
                workflow_id=workflow_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def get_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`AsyncJobsClient.get_notification_channel`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_notification_channel(
                channel_id, workflow_id=workflow_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def update_notification_channel(
        self,
        channel_id: str,
        *,
        event_types: Sequence[JobEventType | str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`AsyncJobsClient.update_notification_channel`, as a `RawResponse`."""
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return _raw(
            await self._client.update_notification_channel(
                channel_id,
                event_types=event_types,
                enabled=enabled,
                description=description,
                url=url,
                secret=hidden,
                recipient_email=recipient_email,
                cc=cc,
                reply_to=reply_to,
                workflow_id=workflow_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def delete_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[None]:
        """`AsyncJobsClient.delete_notification_channel`, as a `RawResponse`."""
        return await _raw_empty(
            self._client.delete_notification_channel(
                channel_id, workflow_id=workflow_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def verify_notification_channel(
        self,
        channel_id: str,
        code: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[None]:
        """`AsyncJobsClient.verify_notification_channel`, as a `RawResponse`."""
        return await _raw_empty(
            self._client.verify_notification_channel(
                channel_id, code, workflow_id=workflow_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def list_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        unread_only: bool | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationPage]:
        """`AsyncJobsClient.list_notifications`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.list_notifications(
                workflow_id=workflow_id,
                event_types=event_types,
                since=since,
                limit=limit,
                cursor=cursor,
                unread_only=unread_only,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def get_unread_notification_count(
        self,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[UnreadCount]:
        """`AsyncJobsClient.get_unread_notification_count`, as a `RawResponse`."""
        return _raw(
            await self._client.get_unread_notification_count(
                workflow_id=workflow_id, timeout=timeout, max_retries=max_retries
            )
        )

    async def mark_notifications_read(
        self,
        *,
        notification_ids: Sequence[str] | None = None,
        before: datetime | None = None,
        mark_all: bool = False,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[MarkReadResult]:
        """`AsyncJobsClient.mark_notifications_read`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.mark_notifications_read(
                notification_ids=notification_ids,
                before=before,
                mark_all=mark_all,
                workflow_id=workflow_id,
                timeout=timeout,
                max_retries=max_retries,
            )
        )

    async def get_notification(
        self,
        notification_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationEvent]:
        """`AsyncJobsClient.get_notification`, returning a `RawResponse` of its result."""
        return _raw(
            await self._client.get_notification(
                notification_id, timeout=timeout, max_retries=max_retries
            )
        )


# --- end of generated code ---


def _raw(result: T) -> RawResponse[T]:
    # The client behind an `AsyncRawResponses` is a copy made with raw=True: its `_send`
    # already returns a RawResponse. This only tells the type checker so.
    return cast("RawResponse[T]", result)


async def _raw_empty(call: Awaitable[None]) -> RawResponse[None]:
    # As `_raw`, for a method whose record is None (an answer without a body).
    return cast("RawResponse[None]", await call)


def _raw_response(
    request: Request,
    response: aiohttp.ClientResponse,
    attempt: Attempt,
    content: bytes,
    parse: Callable[[], T],
) -> RawResponse[T]:
    return RawResponse(
        method=request.method,
        url=str(response.url),
        status=response.status,
        headers=response.headers,
        request_id=_core.request_id_of(response.headers),
        elapsed=timedelta(seconds=time.perf_counter() - attempt.started),
        retries_taken=attempt.retries_taken,
        content=content,
        parse=parse,
    )


def _parse_answer(
    request: Request,
    response: aiohttp.ClientResponse,
    body: bytes,
    cls: type[T],
    unwrap: str | None = None,
    check: AnswerCheck | None = None,
) -> T:
    if len(body) < BULK_ANSWER or not gc.isenabled():
        return _parse(request, response, body, cls, unwrap, check)
    # Decoding 10,000 jobs allocates hundreds of thousands of containers that all survive, so
    # the collections their allocation triggers find nothing and cost about 40 % of the parse
    # time. Reference counting still frees memory meanwhile; the GC is re-enabled right after.
    gc.disable()
    try:
        return _parse(request, response, body, cls, unwrap, check)
    finally:
        gc.enable()


def _parse(
    request: Request,
    response: aiohttp.ClientResponse,
    body: bytes,
    cls: type[T],
    unwrap: str | None,
    check: AnswerCheck | None = None,
) -> T:
    data: Any = _NOT_DECODED
    if body and _core.is_json_type(response.headers.get("Content-Type")):
        try:  # UTF-8, as JSON is sent; anything else (a BOM, UTF-16) takes the full path
            data = json.loads(body.decode())
        except (ValueError, RecursionError):
            data = _NOT_DECODED  # the full path below decodes it, or names the problem
    if data is _NOT_DECODED:
        data = _core.parse_json_answer(
            method=request.method,
            url=str(response.url),
            status=response.status,
            headers=dict(response.headers),
            body=body,
        )
    if unwrap is not None and isinstance(data, dict) and list(data) == [unwrap]:
        data = data[unwrap]  # the wrapped form some versions of the API answer
    if cls is object:
        return data  # type: ignore[no-any-return]
    try:
        return structure(data, cls)
    except ShapeError as exc:
        refused = None if check is None else check(
            method=request.method, url=str(response.url), status=response.status,
            headers=dict(response.headers), body=data,
        )  # fmt: skip
        if refused is not None:
            raise refused from None  # the server said no: not an answer that failed to parse
        raise _core.shape_error(
            exc,
            method=request.method,
            url=str(response.url),
            status=response.status,
            headers=dict(response.headers),
            body=body,
        ) from None


_NOT_DECODED = object()
_ELEMENTS_PER_TRIP = 32  # elements parsed per worker-thread trip by iter_job_output


def _private_folder() -> str:
    return tempfile.mkdtemp(prefix="unstructured-jobs-")


def _next_batch(elements: Iterator[Any]) -> list[Any]:
    return list(itertools.islice(elements, _ELEMENTS_PER_TRIP))


def _remove_folder(elements: Iterator[Any] | None, folder: Path) -> None:
    if elements is not None:
        elements.close()  # type: ignore[attr-defined]  # a generator: closes its file
    shutil.rmtree(folder, ignore_errors=True)


def _check_key(secret: Secret | None) -> Secret:
    if not secret:
        raise InvalidInputError(f"no API key: pass api_key= or set {ENV_API_KEY}")
    if any(c in secret.reveal() for c in "\r\n\x00"):
        raise InvalidInputError("the API key contains control characters")
    return secret


def _within_limits(files: list[PreparedFile], limits: ServiceLimits) -> list[PreparedFile]:
    """The files, if they respect `limits`; else `ServiceLimitError`, before any byte is sent."""
    most = limits.files_per_job
    if most is not None and len(files) > most:
        raise ServiceLimitError(
            f"{len(files)} input files, over the limit of {most} files per job "
            f"(ServiceLimits.files_per_job); send them in several jobs (run_batch groups "
            f"them), or lift the limit: AsyncJobsClient(limits=ServiceLimits("
            f"files_per_job=None))",
            limit="files_per_job",
            allowed=most,
            found=len(files),
        )
    largest = limits.bytes_per_file
    if largest is not None:
        for f in files:
            if f.size is not None and f.size > largest:
                raise ServiceLimitError(
                    f"{f.filename}: {f.size} bytes, over the limit of {largest} bytes per file "
                    f"(ServiceLimits.bytes_per_file); if your server accepts larger files, "
                    f"raise or lift it: AsyncJobsClient(limits=ServiceLimits("
                    f"bytes_per_file=None))",
                    limit="bytes_per_file",
                    allowed=largest,
                    found=f.size,
                )
    return files


def _name_files(error: RequestTooLargeError, files: Sequence[PreparedFile]) -> None:
    """Say which files a 413 refused request carried, and what to do about it: one line of
    about 300 characters, naming the files while they fit (all of them are in `files`)."""
    error.files = [
        f.filename if f.size is None else f"{f.filename} ({f.size} bytes)" for f in files
    ]
    if not files:
        return
    advice = (
        ": a file over the server's limit fails again; lower "
        "ServiceLimits(bytes_per_file=...) to refuse it before sending"
    )
    room = 300 - len(error.message) - len(advice) - len("; it carried ") - len(" and 999 more")
    shown: list[str] = []
    for name in error.files:
        name = _core.one_line(name, max(room, 60) if not shown else room)
        if shown and len(name) + 2 > room:
            break
        shown.append(name)
        room -= len(name) + 2
    more = len(files) - len(shown)
    message = (
        f"{error.message}; it carried {', '.join(shown)}"
        + (f" and {more} more" if more else "")
        + advice
    )
    error.message = message
    error.args = (message,)


def _needs_disk(items: Sequence[object]) -> bool:
    return any(
        isinstance(x, (str, os.PathLike))
        or (isinstance(x, InputFile) and isinstance(x.content, (str, os.PathLike)))
        for x in items
    )


async def _prepare(input_files: Iterable[InputFileLike]) -> list[PreparedFile]:
    if isinstance(input_files, (str, bytes, os.PathLike)):
        raise InvalidInputError("input_files must be a list of files, not a single path")
    items = list(input_files)
    if not _needs_disk(items):
        return prepare_files(items)
    # stat() may wait on the disk: every file is checked, and the first small ones read (so
    # that their upload needs no other trip), in one trip to a worker thread.
    return await anyio.to_thread.run_sync(prepare_files, items, UPLOAD_CHUNK_SIZE)


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{what} must be True or False, got {value!r:.40}")
    return value


class _FilesDue:
    """When a wait reads its job's files' states (`get_job_file_status`) for `listeners`:
    after a poll that finds the job not finished, at most every `FILE_STATUS_EVERY` seconds,
    and once more after the poll that finds it finished if they were read before (the counts
    then are final). A status that cannot be read is skipped; a read never outlasts the
    wait's deadline."""

    def __init__(
        self, client: AsyncJobsClient, job_id: str, listeners: Sequence[FilesCallback]
    ) -> None:
        self.client, self.job_id, self.listeners = client, job_id, listeners
        self.due = -math.inf
        self.read = False

    async def after_poll(self, job: JobInformation, deadline: float | None) -> None:
        """Read and hand on the files' states if it is time to."""
        if not self.listeners:
            return
        now = self.client.clock.now()
        if job.status.is_terminal:
            if not self.read:
                return
            self.read = False  # once
        elif now < self.due:
            return
        self.due = now + FILE_STATUS_EVERY
        remaining = None if deadline is None else max(deadline - now, 0.0)
        with anyio.move_on_after(remaining):
            try:
                status = await self.client.get_job_file_status(self.job_id)
            except UnstructuredJobsError as exc:
                log.debug("job %s: no file status to show: %s", self.job_id, exc)
                return
            self.read = True
            for listener in self.listeners:
                listener(status)
