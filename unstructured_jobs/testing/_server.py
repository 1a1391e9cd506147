"""``Emulator``: run the emulated jobs API in-process, in a background thread, or from a shell."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from .._sync.loop_thread import EventLoopThread
from ._app import API_KEY_HEADER, DEFAULT_API_KEY, ApiApp, CallsPerMinute
from ._catalog import Catalog
from ._faults import Fault, FaultPlan, FaultRates, InjectedFault, UnfiredFaultsError
from ._limits import EmulatorLimits, LimitState
from ._notifications import Notifications
from ._outputs import OutputShape
from ._records import EmulatedJob, ReceivedFile, RecordedRequest, Schedule
from ._state import JobStore

__all__ = ["Emulator"]


class Emulator:
    """A local emulator of the Unstructured Platform jobs API, served over loopback.

    Use it as ``async with Emulator() as emu:`` inside a running loop, or as
    ``with Emulator().running_in_thread() as emu:`` from synchronous code. Clients talk to
    ``emu.url`` with the header ``unstructured-api-key: emu.api_key``. Every method below is
    safe to call from any thread while the server runs.

    Faults can also be managed over HTTP at ``/_emulator/faults`` (POST a JSON fault, GET the
    list with fired counts, DELETE to clear; the format is in ``docs/emulator.md``), which
    needs the same API key as the API.

    Args:
        api_key: the only key accepted; None accepts any non-empty key.
        host, port: where to listen (port 0 picks a free port).
        schedule: how jobs move between statuses (default ``Schedule()``: done at once).
        clock: monotonic seconds used by the schedule, runtimes and the launch interval.
        limits: the service's limits to enforce, all at once: ``EmulatorLimits.published()``
            for the published ones (see `EmulatorLimits`). Give either `limits` or the single
            settings below, not both.
        max_running: jobs ``IN_PROGRESS`` at once (the published limit is 5; None: no limit).
        fail_files: predicate on an input filename; matching files fail processing.
        max_files_per_job, max_file_size, launch_interval, quota_files: single service limits
            (off by default; see `EmulatorLimits`). ``launch_rate`` (launches per second) is
            the older spelling of ``launch_interval = 1 / launch_rate``.
        fault_rates: random faults from the start (see ``FaultRates``).
        output_for: builds the download body (bytes) of one received file.
        output_elements, embedding_dim: realistic outputs instead of the default two
            elements: `output_elements` elements per file, each with an ``embeddings`` list of
            `embedding_dim` floats (0: none). Deterministic, sent with a ``Content-Length``
            and streamed (the emulator never holds one whole): 16,000 elements of 1,536
            dimensions are a 323 MB output, as a long PDF gives (see ``OutputShape``).
        clock_offset: seconds the server's wall clock is ahead of the real time (negative:
            behind). It shifts every ``created_at`` and the ``Date`` header, to test what a
            client does when its clock and the server's disagree (the monotonic `clock` above
            is unaffected).
        ssl_context: serve HTTPS with this server-side context (its certificate and key);
            ``url`` is then ``https://...``. Clients must trust the certificate's CA.
        file_status_limit: calls per minute of ``GET .../file-status`` for one job and key
            (the published limit is 12); past it 429 with ``Retry-After``. None (default): no
            limit.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        schedule: Schedule | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_running: int | None = 5,
        fail_files: Callable[[str], bool] | None = None,
        max_files_per_job: int | None = None,
        max_file_size: int | None = None,
        launch_rate: float | None = None,
        launch_interval: float | None = None,
        quota_files: int | None = None,
        limits: EmulatorLimits | None = None,
        fault_rates: FaultRates | None = None,
        output_for: Callable[[ReceivedFile], bytes] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock_offset: float = 0.0,
        file_status_limit: int | None = None,
        output_elements: int | None = None,
        embedding_dim: int = 0,
    ) -> None:
        shape = None
        if output_elements is not None or embedding_dim:
            if output_for is not None:
                raise ValueError("give output_for or output_elements/embedding_dim, not both")
            shape = OutputShape(2 if output_elements is None else output_elements, embedding_dim)
        if max_running is not None and max_running < 1:
            raise ValueError("max_running must be >= 1 or None")
        if launch_rate is not None and not launch_rate > 0:
            raise ValueError("launch_rate must be > 0 or None")
        if launch_rate is not None and launch_interval is not None:
            raise ValueError("give launch_interval or launch_rate, not both")
        single = EmulatorLimits(
            launch_interval=launch_interval if launch_rate is None else 1.0 / launch_rate,
            max_running=max_running,
            max_files_per_job=max_files_per_job,
            max_file_size=max_file_size,
            quota_files=quota_files,
        )
        if limits is None:
            limits = single
        elif single != EmulatorLimits():
            raise ValueError("give limits= or the single limit settings, not both")
        self._limits = LimitState(limits)
        self.host = host
        self._port = port
        self._key = api_key
        self._store = JobStore(
            schedule=schedule or Schedule(),
            clock=clock,
            max_running=limits.max_running,
            fail_files=fail_files,
            output_for=output_for,
            clock_offset=clock_offset,
            output_shape=shape,
        )
        self._faults = FaultPlan(fault_rates)
        self._catalog = Catalog()
        self._api = ApiApp(
            self._store,
            self._faults,
            catalog=self._catalog,
            api_key=api_key,
            limits=self._limits,
        )
        if file_status_limit is not None:
            self._api.file_status_limiter = CallsPerMinute(file_status_limit)
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port actually bound (only known once started)."""
        if self._bound_port is None:
            raise RuntimeError("the emulator is not running")
        return self._bound_port

    @property
    def url(self) -> str:
        """Base URL to give a client, e.g. ``http://127.0.0.1:41234`` (https with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        """A key the emulator accepts (``"emulator-key"`` when any key is accepted)."""
        return self._key if self._key is not None else DEFAULT_API_KEY

    @property
    def notifications(self) -> Notifications:
        """Job events: the feed's events, webhook deliveries made, and the codes that verify
        email channels (see docs/emulator.md, "Job events")."""
        return self._api.notifications

    @property
    def headers(self) -> dict[str, str]:
        """The auth header to send: ``{"unstructured-api-key": api_key}``."""
        return {API_KEY_HEADER: self.api_key}

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve on the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(
            self._api.build(), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port, ssl_context=self._ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._bound_port = int(address[1])

    async def stop(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._bound_port = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[Emulator]:
        """Serve from a daemon thread with its own event loop for the ``with`` block.

        The thread is the package's one loop-in-a-thread mechanism, `EventLoopThread`; handlers
        still running at the end (a delayed or stalled answer) are cancelled with its loop.
        """
        with EventLoopThread(name="unstructured-jobs-emulator") as loop_thread:
            loop_thread.run(self.start)
            try:
                yield self
            finally:
                loop_thread.run(self.stop)

    # -- test controls -------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
        optional: bool = False,
    ) -> InjectedFault:
        """Give ``fault`` to the next ``times`` requests matching ``method`` and ``path``.

        ``path`` is an exact (decoded) path, a prefix when it ends with ``*``, or None for any;
        ``times=None`` keeps the fault forever (until ``clear_faults()``/``reset()``).
        A fault that no request can match (a path no route has, such as ``/api/v1/job/`` or
        ``/api/v1/jobs`` without its slash; a method no route takes) is refused at once with
        `UnroutableFaultError`, a `ValueError`, and nothing is injected.

        The fault is expected to fire: ``assert_all_faults_fired()`` (which the pytest fixtures
        call after each passing test) fails unless it fired ``times`` times, or at least once
        for ``times=None``. ``optional=True`` exempts it, for a fault that may legitimately
        stay unused. Returns a snapshot of the injection as registered (``fired == 0``).
        """
        return self._faults.inject(fault, method, path, times, optional)

    def clear_faults(self) -> None:
        """Forget every scripted fault, fired or not (``fault_rates`` stay).

        Cleared faults are never reported by ``assert_all_faults_fired()``: clearing is a
        deliberate "these no longer matter".
        """
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many scripted injections are still waiting for a request."""
        return self._faults.pending()

    def injected_faults(self) -> list[InjectedFault]:
        """Every scripted injection since the last ``clear_faults()``/``reset()``, used up or not,
        in injection order, with how often each fired (``GET /_emulator/faults`` in Python).
        """
        return self._faults.injected()

    def assert_all_faults_fired(self) -> None:
        """Raise ``AssertionError`` (an ``UnfiredFaultsError``) listing every injected fault that
        fired fewer times than asked: ``times`` times, or at least once for ``times=None``.

        Faults injected with ``optional=True`` and faults forgotten through ``clear_faults()`` or
        ``reset()`` are not checked; random ``fault_rates`` never are. The pytest fixtures call
        this after each passing test; call it yourself when you run an ``Emulator`` directly.
        """
        unfired = self._faults.unfired()
        if unfired:
            raise UnfiredFaultsError(unfired)

    @property
    def fault_rates(self) -> FaultRates | None:
        """Random faults in force; assign a ``FaultRates`` (or None) at any time."""
        return self._faults.rates

    @fault_rates.setter
    def fault_rates(self, rates: FaultRates | None) -> None:
        self._faults.rates = rates

    def advance(self, job_id: str | None = None, steps: int = 1) -> None:
        """Move a job (None: every unfinished job) ``steps`` steps: SCHEDULED -> IN_PROGRESS ->
        COMPLETED (or FAILED when every file fails). The job leaves the automatic schedule.
        """
        self._store.advance(job_id, steps)

    def set_status(self, job_id: str, status: str) -> None:
        """Force a job's status (one of the five JobStatus values)."""
        self._store.set_status(job_id, status)

    def add_workflow(
        self,
        name: str,
        *,
        workflow_id: str | None = None,
        status: str = "active",
        sources: Iterable[str] = (),
        destinations: Iterable[str] = (),
        workflow_type: str | None = "custom",
        nodes: Sequence[Mapping[str, Any]] | None = None,
        schedule: Sequence[str] | None = None,
        reprocess_all: bool = False,
        created_at: datetime | str | None = None,
        updated_at: datetime | str | None = None,
    ) -> str:
        """Add a workflow (as the platform's UI would make one) and return its id.

        It is then listed by ``GET /api/v1/workflows/``, read by ``GET .../{id}``, and run by
        ``POST .../{id}/run``: its jobs get its name and nodes (plus the final Destination)
        and ``job_type`` ``persistent``, or ``scheduled`` with a `schedule` (cron lines such
        as ``"0 0 * * 0"``). `sources` and `destinations` are connector UUIDs; `nodes` are
        ``{"name", "type", "subtype", "settings"?}`` (default: one hi_res Partitioner);
        `created_at` defaults to now (a datetime or ISO 8601 text, naive meaning UTC).
        """
        return self._catalog.add(
            name,
            workflow_id=workflow_id,
            status=status,
            sources=sources,
            destinations=destinations,
            workflow_type=workflow_type,
            nodes=nodes,
            schedule=schedule,
            reprocess_all=reprocess_all,
            created_at=created_at,
            updated_at=updated_at,
        )

    @property
    def limits(self) -> EmulatorLimits:
        """The service limits this emulator enforces."""
        return self._limits.limits

    @property
    def quota_left(self) -> int | None:
        """Files the quota still allows (None: no quota)."""
        with self._store.lock:
            return self._limits.quota_left

    def set_quota(self, files: int | None) -> None:
        """Set the files the quota allows from now on (restore a spent quota; None: none)."""
        with self._store.lock:
            self._limits.set_quota(files)

    @property
    def refusals(self) -> dict[str, int]:
        """How many requests each limit refused: ``launch_interval`` (429),
        ``max_files_per_job`` (400), ``max_file_size`` (413) and ``quota`` (402)."""
        with self._store.lock:
            return dict(self._limits.refused)

    @property
    def workflows(self) -> dict[str, dict[str, Any]]:
        """Every added workflow as served (WorkflowInformation JSON), by id, oldest first."""
        return self._catalog.all()

    @property
    def jobs(self) -> dict[str, EmulatedJob]:
        """A snapshot of every job, oldest first, keyed by id."""
        return self._store.snapshot()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received so far, in arrival order (faulted ones included), with
        its headers (secrets redacted) and uploaded files (``GET /_emulator/received``).

        Requests to the emulator's own ``/_emulator/`` control endpoints are not recorded.
        """
        return self._api.recorded()

    def received_files(self) -> list[ReceivedFile]:
        """Every file received by a created job, in order."""
        return [f for job in self._store.snapshot().values() for f in job.files]

    def reset(self) -> None:
        """Forget jobs, workflows, recorded requests, scripted faults, accepted launches and
        refusals, notification channels and job events; the quota starts again from its
        setting (options and rates stay).

        Like ``clear_faults()``, forgotten faults are not checked by ``assert_all_faults_fired()``.
        """
        self._store.clear()
        self._catalog.clear()
        self._faults.clear()
        self._api.clear_log()
        self._api.notifications.clear()
        with self._store.lock:
            self._limits.clear()
