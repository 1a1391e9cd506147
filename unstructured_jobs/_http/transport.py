"""The aiohttp shell: one session, one retry loop, every wire detail.

It carries out what `_core` decides. Timeouts are aiohttp's ``sock_connect`` and ``sock_read``
(``total`` is None: a total would count time queued for a connection and kill long uploads),
plus the upload-stall watchdog inside `MultipartBody` (aiohttp has no write timeout).

The client's own session has aiohttp's ``trust_env`` off: the proxy (from `_http.proxy`, chosen once
per client) and the TLS context (from `_http.tls`) are given to it explicitly, so no request pays
for re-reading the environment and ``~/.netrc`` in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import anyio
import attrs

from .. import _core
from .._clock import Clock
from .._constants import (
    API_KEY_HEADER,
    DEFAULT_MAX_ANSWER_BYTES,
    ERROR_SNIPPET_CHARS,
    LOGGER_NAME,
    MAX_ERROR_BODY,
    WRITER_STOP_GRACE,
)
from .._core import AttemptProgress, Failure, FailureKind, Request, Safety, Verdict
from .._exceptions import (
    AnswerTooLargeError,
    APIConnectionError,
    APITimeoutError,
    CertificateVerifyError,
    ClientClosedError,
    InputFileError,
    InvalidInputError,
    ResponseValidationError,
    UnstructuredJobsError,
)
from .._files.multipart import FileChangedError, UploadStalledError
from .._options import RetryConfig, Timeout
from .._secret import Secret, scrub_traceback
from . import tls as _tls
from .hooks import NO_HOOKS, Hooks, RequestEvent, ResponseEvent, RetryEvent, fire
from .log import log_attempt
from .proxy import Proxy
from .tracing import note_attempt, note_retry, traced

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
SessionFactory = Callable[[], aiohttp.ClientSession]


@attrs.frozen
class Attempt:
    """The attempt that got the answer being consumed."""

    retries_taken: int  # attempts before this one
    started: float  # `time.perf_counter()` when this attempt began


Consume = Callable[[aiohttp.ClientResponse, Attempt], Awaitable[T]]


class _HookFailed(Exception):
    """An event hook raised `error`: it reaches the caller as it is, never classified as a
    network failure nor retried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure, error: UnstructuredJobsError) -> None:
        super().__init__(str(error))
        self.failure = failure
        self.error = error


class _Progress:
    """Where one call stands, for the error its total timeout gives."""

    def __init__(self) -> None:
        self._started = time.time()
        self.in_flight = False  # an attempt is under way (not waiting to retry)

    @property
    def sent_at(self) -> datetime:
        """When the call began (read only for errors: a clock read is cheaper than a datetime)."""
        return datetime.fromtimestamp(self._started, UTC)


class ConnectionPool:
    """The aiohttp session (and its connection pool), shared by a client and its copies.

    The session is the one passed in, else one from the session factory, else the client's
    own; it is created on first use, inside the event loop that will use it.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        session: aiohttp.ClientSession | None = None,
        session_factory: SessionFactory | None = None,
        ssl: ssl.SSLContext | bool = True,
    ) -> None:
        self.max_connections = max_connections
        self._session = session
        self._session_factory = session_factory
        self._owns_session = session is None
        self._ssl = ssl
        self.closed = False

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, created on first use (it must be made inside the loop)."""
        if self.closed or (self._session is not None and self._session.closed):
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
                    connector=_Connector(limit=self.max_connections, ssl=self._ssl),
                    trust_env=False,
                )
        return self._session

    def abort_stuck(self) -> None:
        """End at once the connections of ours left closing by a cut-short upload."""
        connector = self._session.connector if self._session is not None else None
        if isinstance(connector, _Connector):
            connector.abort_closing()

    async def aclose(self) -> None:
        """Close the session if the pool created it, with every socket of it, before returning.

        Nothing is left for the garbage collector (no ``ResourceWarning``), even after an upload
        cut short or a call cancelled: their connections are aborted, and the loop given the
        turn in which their sockets close.
        """
        self.closed = True
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()
            self.abort_stuck()
            await asyncio.sleep(0)  # the turn in which aborted and closed transports let go


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, remembering the transports of its connections.

    A connection closed while its request body was still being written (an upload cancelled,
    stalled or cut off by a timeout) stays *closing* until the peer has read the rest, which a
    server that stopped reading never does: its socket outlived the client and the event loop,
    for the garbage collector to find (``ResourceWarning: unclosed transport``).
    `abort_closing` ends such connections at once; ones still open are not touched.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._transports: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()

    async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
        protocol = await super()._create_connection(*args, **kwargs)
        if protocol.transport is not None:
            self._transports.add(protocol.transport)
        return protocol

    def abort_closing(self) -> None:
        """Abort every transport of this connector that is closing (and not yet closed)."""
        for transport in list(self._transports):
            if not transport.is_closing():
                continue
            # A transport that finished writing after it was asked to close has already lost its
            # connection (asyncio let go of its loop and protocol): aborting it would raise.
            if transport.get_protocol() is not None:
                transport.abort()
            self._transports.discard(transport)


class Transport:
    """Sends `Request`s with retries. Create and use it inside one event loop."""

    def __init__(
        self,
        *,
        pool: ConnectionPool,
        base_url: str,
        api_key: Secret,
        timeout: Timeout,
        retries: RetryConfig,
        clock: Clock,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        proxy: Proxy | None = None,
        rng: random.Random | None = None,
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self.pool = pool
        self.hooks = hooks
        self.max_answer_bytes = max_answer_bytes
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.clock = clock
        self.proxy = proxy
        self._proxy_kwargs: dict[str, Any] = {}
        if proxy is not None:
            self._proxy_kwargs = {"proxy": proxy.url, "proxy_headers": proxy.headers}
            log.debug("requests to %s go through the proxy %s", base_url, proxy.url)
        self._headers = {API_KEY_HEADER: api_key.reveal(), "User-Agent": _core.USER_AGENT}
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, api_key='***')"

    def evolve(
        self,
        *,
        api_key: Secret | None = None,
        timeout: Timeout | None = None,
        retries: RetryConfig | None = None,
        hooks: Hooks | None = None,
    ) -> Transport:
        """A transport with other settings, sharing this one's connection pool."""
        return Transport(
            pool=self.pool,
            base_url=self.base_url,
            api_key=self._api_key if api_key is None else api_key,
            timeout=self.timeout if timeout is None else timeout,
            retries=self.retries if retries is None else retries,
            clock=self.clock,
            max_answer_bytes=self.max_answer_bytes,
            proxy=self.proxy,
            rng=self._rng,
            hooks=self.hooks if hooks is None else hooks,
        )

    def reads_whole(self, response: aiohttp.ClientResponse) -> bool:
        """Whether `read_answer` would read `response` at once with ``response.read()``: a
        declared length within `max_answer_bytes`, not compressed (so it cannot grow)."""
        declared = response.content_length
        return (
            declared is not None
            and declared <= self.max_answer_bytes
            and not response.headers.get("Content-Encoding")
        )

    async def read_answer(self, request: Request, response: aiohttp.ClientResponse) -> bytes:
        """The whole body of a success answer, decompressed, up to `max_answer_bytes`.

        Past the bound, reading stops and `AnswerTooLargeError` is raised: neither a
        compression bomb nor an endless answer can exhaust memory.
        """
        limit = self.max_answer_bytes
        if self.reads_whole(response):
            return await response.read()  # the fast path: aiohttp reads a known length at once
        declared = response.content_length
        if (
            declared is not None
            and declared > limit
            and not response.headers.get("Content-Encoding")
        ):
            raise self._too_large(request, response, b"")  # said so up front: nothing read
        # aiohttp inflates a compressed answer a bounded piece at a time as it is read, so
        # this loop holds at most `limit` bytes plus one piece: past the bound it stops, and
        # no more is inflated. The chunks are joined once, at the end, when all are in.
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise self._too_large(request, response, chunks[0] if chunks else chunk)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(
        self, request: Request, response: aiohttp.ClientResponse, head: bytes
    ) -> AnswerTooLargeError:
        limit = self.max_answer_bytes
        url = str(response.url)
        error = AnswerTooLargeError(
            f"{request.method} {url} -> {response.status}: the answer is larger than "
            f"max_answer_bytes ({limit:,} bytes once decompressed); reading stopped",
            method=request.method,
            url=url,
            status=response.status,
            snippet=_core.snippet(head[:ERROR_SNIPPET_CHARS]),
            request_id=_core.request_id_of(response.headers),
        )
        error.limit = limit
        return error

    def session(self) -> aiohttp.ClientSession:
        """The pool's aiohttp session."""
        return self.pool.session()

    async def aclose(self) -> None:
        """Close the connection pool (shared with every copy of the client)."""
        await self.pool.aclose()

    def send(
        self,
        request: Request,
        consume: Consume[T],
        *,
        timeout: Timeout | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Awaitable[T]:
        """Send `request`, retrying as `_core.decide` says, and return ``consume(response)``.

        Whatever leaves it (errors, cancellation) has aiohttp's frames cut from its traceback
        and its chain's: their locals hold the request headers (`_secret.scrub_traceback`).
        Returns the awaitable that does it (no coroutine frame of its own on every call).
        """
        timeout = timeout or self.timeout
        if timeout.total is None:
            call = self._send(request, consume, timeout, max_retries, _Progress())
        else:
            call = self._send_within(request, consume, timeout, max_retries, timeout.total)
        return traced(self.base_url, request, call)  # one span per call when tracing is on

    async def _send_within(
        self,
        request: Request,
        consume: Consume[T],
        timeout: Timeout,
        max_retries: int | RetryConfig | None,
        total: float,
    ) -> T:
        progress = _Progress()
        try:
            with anyio.move_on_after(total):
                return await self._send(request, consume, timeout, max_retries, progress)
            raise self._deadline_passed(request, total, progress)
        except BaseException as exc:
            scrub_traceback(exc)
            raise

    def _deadline_passed(
        self, request: Request, total: float, progress: _Progress
    ) -> UnstructuredJobsError:
        method, url = request.method, self.base_url + request.path
        error = APITimeoutError(
            f"{method} {url}: no answer within the total timeout of {total:g}s (retries included)",
            method=method,
            url=url,
            phase="total",
        )
        body = request.body
        unsent = body is not None and not body.state.complete
        if request.safety is Safety.UNSAFE and progress.in_flight and not unsent:
            # Cut off after (or while) the request went out: it may have been applied.
            return _core.ambiguous_error(request, url, error, progress.sent_at)
        return error

    async def _send(
        self,
        request: Request,
        consume: Consume[T],
        timeout: Timeout,
        max_retries: int | RetryConfig | None,
        progress: _Progress,
    ) -> T:
        try:
            retries = self.retries
            if isinstance(max_retries, RetryConfig):
                retries = max_retries
            elif max_retries is not None:
                retries = RetryConfig(max_retries, retries.budget)
            limit = retries.max_retries
            url = self.base_url + request.path
            slept = 0.0
            retry_index = 0
            while True:
                try:
                    progress.in_flight = True
                    if request.body is None:  # nothing to write, nothing to stop after a failure
                        return await self._exchange(
                            request, url, timeout, consume, retry_index, None, None
                        )
                    return await self._attempt(request, url, timeout, consume, retry_index)
                except _AttemptFailed as failed:
                    progress.in_flight = False
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
                        note_retry(retry_index + 1, delay, _describe(failure))
                        if self.hooks.retry:
                            event = _retry_event(request, url, retry_index, limit, delay, failure)
                            await fire(self.hooks.retry, event)
                        await self.clock.sleep(delay)
                        slept += delay
                        retry_index += 1
                        continue
                if verdict is Verdict.AMBIGUOUS:
                    raise _core.ambiguous_error(request, url, error, progress.sent_at) from error
                raise error
        except _HookFailed as failed:
            scrub_traceback(failed.error)
            raise failed.error from None
        except BaseException as exc:
            scrub_traceback(exc)
            raise

    async def _attempt(
        self, request: Request, url: str, timeout: Timeout, consume: Consume[T], retries: int
    ) -> T:
        body = request.body
        data = body.new_attempt(timeout.write) if body is not None else None
        state = body.state if body is not None else None
        try:
            return await self._exchange(request, url, timeout, consume, retries, data, state)
        except BaseException:
            if state is not None:
                # Whatever ended the attempt (an error, a retry to come, a cancellation, the
                # total timeout), its body writer has closed its file before anything goes on.
                with anyio.move_on_after(WRITER_STOP_GRACE, shield=True):
                    await state.wait_stopped()
                self.pool.abort_stuck()  # its connection, if left closing with a body unsent
            raise

    async def _exchange(
        self,
        request: Request,
        url: str,
        timeout: Timeout,
        consume: Consume[T],
        retries: int,
        data: Any,
        state: AttemptProgress | None,
    ) -> T:
        attempt = retries + 1
        hooks = self.hooks
        # The headers a request hook set (never the key: no local of this frame may hold it,
        # as a traceback shows the locals of its frames; see _secret).
        extra = await self._request_hooks(request, url, attempt) if hooks.request else None
        started = time.perf_counter()
        client_timeout = _client_timeout(timeout.connect, timeout.read)
        try:
            async with self.session().request(
                request.method,
                url,
                params=request.params or None,
                data=data,
                headers=self._headers if extra is None else self._with_key(extra),
                timeout=client_timeout,
                allow_redirects=False,
                **self._proxy_kwargs,
            ) as response:
                elapsed = time.perf_counter() - started
                request_id = _core.request_id_of(response.headers)
                log_attempt(
                    request.method, url, request.params, response.status, attempt, elapsed,
                    request_id,
                )  # fmt: skip
                note_attempt(attempt, response.status, elapsed, request_id)
                if hooks.response:
                    await _response_hooks(hooks, request, url, response, attempt, elapsed)
                if 200 <= response.status < 300:
                    try:
                        return await consume(response, Attempt(retries, started))
                    except ResponseValidationError as invalid:
                        raise _AttemptFailed(Failure(FailureKind.INVALID_ANSWER), invalid) from None
                raw = await _read_error_body(response)
                headers = dict(response.headers)
                error = _core.error_for_status(
                    method=request.method,
                    url=url,
                    status=response.status,
                    headers=headers,
                    body=raw,
                )
                raise _AttemptFailed(_core.failure_for_status(response.status, headers), error)
        except (_AttemptFailed, _HookFailed):
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            elapsed = time.perf_counter() - started
            log_attempt(
                request.method, url, request.params, None, attempt, elapsed, None, error=exc
            )
            note_attempt(attempt, None, elapsed, None, exc)
            raise _classify(exc, request, url, state, timeout) from exc

    async def _request_hooks(self, request: Request, url: str, attempt: int) -> dict[str, str]:
        """Call the request hooks; the headers to send but the key (`_with_key` adds it)."""
        shown = {k: v for k, v in self._headers.items() if k != API_KEY_HEADER}
        event = RequestEvent(request.method, _with_query(url, request.params), shown, attempt)
        try:
            await fire(self.hooks.request, event)
        except Exception as exc:
            raise _HookFailed(exc) from None
        if any(k.lower() == API_KEY_HEADER.lower() for k in shown):
            raise _HookFailed(
                InvalidInputError(f"a request hook cannot set the {API_KEY_HEADER} header")
            )
        return shown

    def _with_key(self, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, API_KEY_HEADER: self._headers[API_KEY_HEADER]}


async def _response_hooks(
    hooks: Hooks,
    request: Request,
    url: str,
    response: aiohttp.ClientResponse,
    attempt: int,
    elapsed: float,
) -> None:
    headers = response.headers
    event = ResponseEvent(
        request.method,
        _with_query(url, request.params),
        response.status,
        headers,
        _core.request_id_of(headers),
        attempt,
        elapsed,
    )
    try:
        await fire(hooks.response, event)
    except Exception as exc:
        raise _HookFailed(exc) from None


async def _read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """Up to `MAX_ERROR_BODY` bytes of an error answer (a gateway page, a JSON detail).

    One ``read(n)`` gives only what has arrived; this reads on to the bound or the end. A body
    that breaks off, times out or cannot be inflated keeps what arrived: the status is the
    news. (A gateway that refuses an upload early, nginx's 413, may reset the connection while
    the body is still being sent: the page may be cut, never the status.)
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while size < MAX_ERROR_BODY:
            chunk = await response.content.read(MAX_ERROR_BODY - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError):  # OSError: timeouts included
        pass
    return b"".join(chunks)


def _retry_event(
    request: Request, url: str, retry_index: int, limit: int, delay: float, failure: Failure
) -> RetryEvent:
    kind = failure.kind
    status = failure.status if kind is FailureKind.STATUS else None
    return RetryEvent(
        request.method,
        _with_query(url, request.params),
        attempt=retry_index + 1,
        max_attempts=limit + 1,
        delay=delay,
        reason=f"HTTP {status}" if status is not None else _REASONS.get(kind, kind.value),
        status=status,
        kind=kind.value,
    )


_REASONS = {
    FailureKind.NOT_SENT: "could not connect",
    FailureKind.LOST: "connection lost",
    FailureKind.CONNECT_TIMEOUT: "connect timeout",
    FailureKind.READ_TIMEOUT: "read timeout",
    FailureKind.WRITE_TIMEOUT: "upload stalled",
    FailureKind.INVALID_ANSWER: "invalid answer",
    FailureKind.TLS: "TLS handshake failed",
}


def _with_query(url: str, params: Sequence[tuple[str, str]] | None) -> str:
    return f"{url}?{urlencode(params)}" if params else url


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for ours (``total`` None: see the module docstring), made once."""
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect, sock_read=read)


def _classify(
    exc: BaseException,
    request: Request,
    url: str,
    state: AttemptProgress | None,
    timeout: Timeout,
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
