"""The aiohttp shell: one session, one retry loop, every wire detail.

It carries out what `_core` decides. Timeouts are aiohttp's ``sock_connect`` and ``sock_read``
(``total`` is None: a total would count time queued for a connection and kill long uploads),
plus the upload-stall watchdog inside `MultipartBody` (aiohttp has no write timeout).

The client's own session has aiohttp's ``trust_env`` off: the proxy (from `_proxy`, chosen once
per client) and the TLS context (from `_tls`) are given to it explicitly, so no request pays
for re-reading the environment and ``~/.netrc`` in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import anyio

from . import _core, _tls
from ._constants import API_KEY_HEADER, LOGGER_NAME
from ._core import Failure, FailureKind, Request, Safety, Verdict
from ._exceptions import (
    AmbiguousRequestError,
    APIConnectionError,
    APITimeoutError,
    CertificateVerifyError,
    ClientClosedError,
    InputFileError,
    InvalidInputError,
    JobMayExistError,
    UnstructuredJobsError,
)
from ._multipart import AttemptState, FileChangedError, MultipartBody, UploadStalledError
from ._options import RetryConfig, Timeout
from ._proxy import Proxy

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
Consume = Callable[[aiohttp.ClientResponse], Awaitable[T]]
_MAX_ERROR_BODY = 1024 * 1024
SessionFactory = Callable[[], aiohttp.ClientSession]


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure, error: UnstructuredJobsError) -> None:
        super().__init__(str(error))
        self.failure = failure
        self.error = error


class Transport:
    """Sends `Request`s with retries. Create and use it inside one event loop."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: Timeout,
        retries: RetryConfig,
        max_connections: int,
        session: aiohttp.ClientSession | None = None,
        session_factory: SessionFactory | None = None,
        ssl: ssl.SSLContext | bool = True,
        proxy: Proxy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.max_connections = max_connections
        self._session = session
        self._session_factory = session_factory
        self._owns_session = session is None
        self._closed = False
        self._ssl = ssl
        self.proxy = proxy
        self._proxy_kwargs: dict[str, Any] = {}
        if proxy is not None:
            self._proxy_kwargs = {"proxy": proxy.url, "proxy_headers": proxy.headers}
            log.debug("requests to %s go through the proxy %s", base_url, proxy.url)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, api_key='***')"

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use (it must be made inside the loop).

        It is the one passed in, else one from the session factory, else the client's own.
        """
        if self._closed or (self._session is not None and self._session.closed):
            raise ClientClosedError("this client is closed")
        if self._session is None:
            if self._session_factory is not None:
                made = self._session_factory()
                if not isinstance(made, aiohttp.ClientSession):
                    raise InvalidInputError(
                        f"session_factory must return an aiohttp.ClientSession, "
                        f"not {type(made).__name__}"
                    )
                self._session = made
            else:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self.max_connections, ssl=self._ssl),
                    trust_env=False,
                )
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport created it."""
        self._closed = True
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    async def send(
        self,
        request: Request,
        consume: Consume[T],
        *,
        timeout: Timeout | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> T:
        """Send `request`, retrying as `_core.decide` says, and return ``consume(response)``."""
        timeout = timeout or self.timeout
        retries = self.retries
        if isinstance(max_retries, RetryConfig):
            retries = max_retries
        elif max_retries is not None:
            retries = RetryConfig(max_retries, retries.budget)
        limit = retries.max_retries
        url = self.base_url + request.path
        sent_at = datetime.now(UTC)
        slept = 0.0
        retry_index = 0
        while True:
            try:
                return await self._attempt(request, url, timeout, consume, retry_index + 1)
            except _AttemptFailed as failed:
                failure, error = failed.failure, failed.error
            verdict = _core.decide(request.safety, failure)
            body = request.body
            if verdict is Verdict.RETRY and body is not None and not body.can_rebuild():
                verdict = Verdict.RAISE  # a non-seekable stream was consumed: cannot resend
            if verdict is Verdict.RETRY and retry_index < limit:
                delay = _core.retry_delay(retry_index, failure, self._rng)
                if slept + delay <= retries.budget:
                    log.info(
                        "%s %s failed (%s); retry %d/%d in %.2fs",
                        request.method,
                        request.path,
                        _describe(failure),
                        retry_index + 1,
                        limit,
                        delay,
                    )
                    await self._sleep(delay)
                    slept += delay
                    retry_index += 1
                    continue
            if verdict is Verdict.AMBIGUOUS:
                raise _ambiguous(request, url, error, sent_at) from error
            raise error

    async def _attempt(
        self, request: Request, url: str, timeout: Timeout, consume: Consume[T], attempt: int
    ) -> T:
        body: MultipartBody | None = request.body
        data = body.new_attempt(timeout.write) if body is not None else None
        state = body.state if body is not None else None
        started = time.perf_counter()
        client_timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeout.connect, sock_read=timeout.read
        )
        try:
            async with self.session().request(
                request.method,
                url,
                params=request.params or None,
                data=data,
                headers={API_KEY_HEADER: self._api_key, "User-Agent": _core.USER_AGENT},
                timeout=client_timeout,
                allow_redirects=False,
                **self._proxy_kwargs,
            ) as response:
                log.debug(
                    "%s %s -> %d (attempt %d, %.3fs)",
                    request.method,
                    request.path,
                    response.status,
                    attempt,
                    time.perf_counter() - started,
                )
                if response.status in request.ok:
                    return await consume(response)
                raw = await response.content.read(_MAX_ERROR_BODY)
                headers = dict(response.headers)
                error = _core.error_for_status(
                    method=request.method,
                    url=url,
                    status=response.status,
                    headers=headers,
                    body=raw,
                )
                raise _AttemptFailed(_core.failure_for_status(response.status, headers), error)
        except _AttemptFailed:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Never %r: aiohttp's reprs carry the request headers, the API key among them.
            log.debug(
                "%s %s failed on attempt %d: %s: %s",
                request.method, request.path, attempt, type(exc).__name__, exc,
            )  # fmt: skip
            raise _classify(exc, request, url, state, timeout) from exc


def _classify(
    exc: BaseException, request: Request, url: str, state: AttemptState | None, timeout: Timeout
) -> _AttemptFailed:
    method = request.method
    upload_error = state.error if state is not None else None
    if isinstance(upload_error, FileChangedError):
        raise InputFileError([(upload_error.filename, str(upload_error))]) from exc
    if isinstance(upload_error, UploadStalledError):
        err = APITimeoutError(
            f"{method} {url}: upload stalled: {upload_error}", method=method, url=url, phase="write"
        )
        return _AttemptFailed(Failure(FailureKind.WRITE_TIMEOUT), err)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = _tls.verify_failure(exc.certificate_error)
        tls = CertificateVerifyError(f"{method} {url}: {reason}", method=method, url=url)
        return _AttemptFailed(Failure(FailureKind.TLS), tls)
    if isinstance(exc, aiohttp.ClientSSLError):  # another handshake failure: not worth a retry
        text = f"{method} {url}: TLS handshake failed: {exc}"
        return _AttemptFailed(
            Failure(FailureKind.TLS), APIConnectionError(text, method=method, url=url)
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        err = APITimeoutError(
            f"{method} {url}: connect timeout ({timeout.connect}s)",
            method=method,
            url=url,
            phase="connect",
        )
        return _AttemptFailed(Failure(FailureKind.CONNECT_TIMEOUT), err)
    if isinstance(exc, asyncio.TimeoutError):
        err = APITimeoutError(
            f"{method} {url}: no answer for {timeout.read}s", method=method, url=url, phase="read"
        )
        return _AttemptFailed(Failure(FailureKind.READ_TIMEOUT), err)
    text = f"{method} {url}: {type(exc).__name__}: {exc}"
    conn = APIConnectionError(text, method=method, url=url)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError)):
        # No connection to the server, or the proxy refused the tunnel: nothing reached it.
        return _AttemptFailed(Failure(FailureKind.NOT_SENT), conn)
    if state is not None and not state.complete:
        # The multipart body was cut short: the server cannot have processed it.
        return _AttemptFailed(Failure(FailureKind.NOT_SENT), conn)
    return _AttemptFailed(Failure(FailureKind.LOST), conn)


def _describe(failure: Failure) -> str:
    if failure.kind is FailureKind.STATUS:
        return f"HTTP {failure.status}"
    return str(failure.kind.value).replace("_", " ")


def _ambiguous(
    request: Request, url: str, error: UnstructuredJobsError, sent_at: datetime
) -> AmbiguousRequestError:
    method = request.method
    reason = str(error).removeprefix(f"{method} {url}: ").removeprefix(f"{method} {url} -> ")
    if request.safety is Safety.UNSAFE and request.path.endswith(("/jobs/", "/run")):
        body = request.body
        fields: Mapping[str, str] = dict(body.fields) if body is not None else {}
        return JobMayExistError(
            f"{method} {url}: the request was sent but its answer was lost ({reason}); "
            "a job may have been created: list jobs before submitting again",
            method=method,
            url=url,
            cause=error,
            input_file_names=body.file_names if body is not None else (),
            request_data=fields.get("request_data"),
            sent_at=sent_at,
        )
    return AmbiguousRequestError(
        f"{method} {url}: the request was sent but its answer was lost ({reason}); "
        "it may have been applied",
        method=method,
        url=url,
        cause=error,
    )
