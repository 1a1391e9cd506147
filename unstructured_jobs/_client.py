"""`AsyncJobsClient`: every jobs endpoint, in one file.

Each method validates its arguments (before any byte is sent), builds a `Request`, and hands it
to the transport with a consumer that turns the answer into records. Wire details live in
`_transport`; retry and error policy in `_core`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from ssl import SSLContext
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.to_thread

from . import _core, _proxy, _tls
from ._constants import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_WAIT_TIMEOUT,
    ENV_API_KEY,
    POLL_BACKOFF,
)
from ._converter import ShapeError, structure
from ._core import Request, Safety, api_path, validate_id
from ._exceptions import InvalidInputError, LocalFileError, WaitTimeoutError
from ._inputs import InputFile, InputFileLike, PreparedFile, prepare_files, request_data_json
from ._models import (
    CancelJobResult,
    JobDetails,
    JobFailedFiles,
    JobInformation,
    JobStatus,
)
from ._multipart import MultipartBody, ProgressCallback
from ._options import RetryConfig, Timeout
from ._tls import SSLOption
from ._transport import SessionFactory, Transport

T = TypeVar("T")
PollCallback = Callable[[JobInformation], Any]
"""Called with each job state read while waiting (on the event loop's thread: keep it quick)."""

_DOWNLOAD_CHUNK = 256 * 1024
_BULK_BODY = 1024 * 1024  # answers this large are parsed with the cyclic GC paused


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
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key:
            raise InvalidInputError(f"no API key: pass api_key= or set {ENV_API_KEY}")
        if any(c in key for c in "\r\n\x00"):
            raise InvalidInputError("the API key contains control characters")
        url = _core.resolve_server_url(server_url, os.environ)
        if max_connections < 1:
            raise InvalidInputError("max_connections must be >= 1")
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
        self._transport = Transport(
            base_url=self.server_url,
            api_key=key,
            timeout=Timeout.coerce(timeout) or Timeout(),
            retries=RetryConfig(max_retries, retry_budget),
            max_connections=max_connections,
            session=session,
            session_factory=session_factory,
            ssl=ssl_context,
            proxy=proxy,
        )
        self._clock: Callable[[], float] = time.monotonic

    def __repr__(self) -> str:
        return f"AsyncJobsClient(server_url={self.server_url!r}, api_key='***')"

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
        """Close the client's connections (not a session you passed in)."""
        await self._transport.aclose()

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

        Pass exactly one of `template_id`, `job_nodes` or `request_data` (a dict or its JSON).
        Every local file is checked before anything is sent; files are streamed from disk one at
        a time. The request is retried only where the server cannot have created the job; after
        an ambiguous failure `JobMayExistError` is raised instead.
        """
        try:
            data = request_data_json(
                template_id=template_id, job_nodes=job_nodes, request_data=request_data
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        files = await _prepare(input_files)
        body = MultipartBody(files, fields=[("request_data", data)], on_progress=on_upload_progress)
        request = Request("POST", api_path("jobs", ""), Safety.UNSAFE, body=body)
        return await self._send(request, JobInformation, timeout, max_retries)

    async def run_workflow(
        self,
        workflow_id: str,
        *,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Run a long-lived workflow (a new job, answered with 202), optionally with files."""
        path = api_path("workflows", validate_id(workflow_id, "workflow_id"), "run")
        files = await _prepare(input_files)
        body = MultipartBody(files, on_progress=on_upload_progress) if files else None
        request = Request("POST", path, Safety.UNSAFE, body=body, ok=frozenset({200, 201, 202}))
        return await self._send(request, JobInformation, timeout, max_retries)

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
        with its `node_id`. For large outputs, `download_job_output_to` streams to disk instead.
        """
        request = self._download_request(job_id, file_id, node_id)
        data: Any = await self._send(request, object, timeout, max_retries)
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
        `destination` is used as given: build it with `unstructured_jobs.batch.safe_output_name`
        when it comes from server data.
        """
        target = Path(destination)
        request = self._download_request(job_id, file_id, node_id)

        async def consume(response: aiohttp.ClientResponse) -> Path:
            return await _stream_to_file(response, target)

        return await self._transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )

    # ------------------------------------------------------------------ waiting

    async def watch_job(
        self,
        job_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    ) -> AsyncIterator[JobInformation]:
        """Yield the job each time its status changes, until it reaches a terminal status.

        Polls `get_job` with an interval that grows by 1.5x from `poll_interval` up to
        `max_poll_interval`. The first state is always yielded.
        """
        job_id = validate_id(job_id, "job_id")
        interval = poll_interval
        last: JobStatus | None = None
        while True:
            job = await self.get_job(job_id)
            if job.status != last:
                last = job.status
                yield job
            if job.status.is_terminal:
                return
            await self._transport._sleep(interval)
            interval = min(interval * POLL_BACKOFF, max_poll_interval)

    async def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_poll: PollCallback | None = None,
    ) -> JobInformation:
        """Poll until the job is COMPLETED, FAILED or STOPPED and return it.

        `timeout` is the whole wait in seconds (None waits for ever); past it,
        `WaitTimeoutError` is raised carrying the last job seen. `on_poll` is called with every
        state read. A FAILED or STOPPED job is returned, not raised: check `job.status`.
        """
        job_id = validate_id(job_id, "job_id")
        deadline = None if timeout is None else self._clock() + timeout
        interval = poll_interval
        last: JobInformation | None = None

        def expired() -> WaitTimeoutError:
            state = f"still {last.status}" if last is not None else "not read yet"
            return WaitTimeoutError(
                f"job {job_id} is {state} after {timeout:g}s", job_id=job_id, last_job=last
            )

        while True:
            # Each poll (its retries included) gets only the time left, so that `timeout`
            # bounds the whole wait, not just the sleeps between polls.
            remaining = None if deadline is None else max(deadline - self._clock(), 0.0)
            with anyio.move_on_after(remaining) as scope:
                polled = await self.get_job(job_id)
            if scope.cancelled_caught:
                raise expired()
            last = polled
            if on_poll is not None:
                on_poll(last)
            if last.status.is_terminal:
                return last
            now = self._clock()
            if deadline is not None and now + interval > deadline:
                if deadline - now <= 0:
                    raise expired()
                interval = deadline - now  # one last look exactly at the deadline
            await self._transport._sleep(interval)
            interval = min(interval * POLL_BACKOFF, max_poll_interval)

    # ------------------------------------------------------------------ plumbing

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

    async def _send(
        self,
        request: Request,
        cls: type[T],
        timeout: Timeout | float | None,
        max_retries: int | RetryConfig | None,
    ) -> T:
        async def consume(response: aiohttp.ClientResponse) -> T:
            body = await response.read()
            url, headers, status = str(response.url), dict(response.headers), response.status
            with _gc_paused(len(body) >= _BULK_BODY):
                data = _core.parse_json_answer(
                    method=request.method, url=url, status=status, headers=headers, body=body
                )
                if cls is object:
                    return data  # type: ignore[no-any-return]
                try:
                    return structure(data, cls)
                except ShapeError as exc:
                    raise _core.shape_error(
                        exc,
                        method=request.method,
                        url=url,
                        status=status,
                        headers=headers,
                        body=body,
                    ) from None

        return await self._transport.send(
            request, consume, timeout=Timeout.coerce(timeout), max_retries=max_retries
        )


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Pause the cyclic GC while a large answer becomes objects.

    Decoding 10,000 jobs allocates hundreds of thousands of containers that all survive, so the
    collections their allocation triggers find nothing and cost about 40 % of the parse time.
    Reference counting still frees memory meanwhile; the GC is re-enabled right after.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    if _needs_disk(items):  # stat() blocks: keep it off the event loop
        return await asyncio.get_running_loop().run_in_executor(None, prepare_files, items)
    return prepare_files(items)


async def _stream_to_file(response: aiohttp.ClientResponse, target: Path) -> Path:
    def open_temp() -> tuple[int, str]:
        # Not mkstemp: it creates 0600 files. A download is the user's output and gets the
        # mode their umask gives (0644 with the usual 022), like any file their tools write.
        target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        while True:
            name = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.part")
            try:
                return os.open(name, flags, 0o666), name
            except FileExistsError:  # pragma: no cover - 48 random bits
                continue

    async def local(fn: Callable[..., Any], *args: Any) -> Any:
        # Disk errors are the user's to fix, not the network's: never retried, typed apart.
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except OSError as exc:
            raise LocalFileError(
                f"cannot write {target}: {exc.strerror or exc}", path=target
            ) from exc

    fd, tmp_name = await local(open_temp)
    handle = os.fdopen(fd, "wb")
    try:
        async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK):
            await local(handle.write, chunk)
        await local(handle.close)
        await local(os.replace, tmp_name, target)
    except BaseException:
        handle.close()
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
