"""The batch's two conversations with the service's limits: when the next job may be launched
(`LaunchPacer`), and which of the batch's jobs have finished (`JobWatcher`).

`LaunchPacer` owns every job-creating request of a batch, retries included. The service allows
one launch per `launch_interval` and a strict limiter measures it between *arrivals*: a launch
arriving 0.999 s after the last accepted one is refused (429). Where the limiter counts depends
on the deployment: a gateway counts a request when its headers arrive, an app behind a proxy
that buffers request bodies (nginx's default) when the whole body has arrived. So a launch
may leave only once the previous one has sent its whole body (or been answered) and
`launch_interval` plus a margin has passed since. For small groups the body is sent within
milliseconds; a group whose upload takes longer than the interval delays the next launch by
its upload time. The margin starts at `LAUNCH_MARGIN` (10 ms),
doubles plus `LAUNCH_MARGIN_STEP` on each 429 (up to the interval itself), and shrinks by
`LAUNCH_MARGIN_DECAY` on each accepted launch. A 429's ``Retry-After`` holds back every launch,
the refused one included, which goes back in the queue and takes the next slot like any other.

`JobWatcher` notices finished jobs with a fixed request budget, whatever the number of jobs the
batch waits for: each tick (the batch's ``poll_interval``, 1 s by default) lists the account's
``SCHEDULED`` jobs, then its ``IN_PROGRESS`` ones (two requests); a waited job in neither list
has ended (or has a status this release does not know), and one `get_job` confirms it. So the
budget is 2 requests per tick plus one per finished job, and a job is noticed at most one tick
(plus a round trip) after it ended. Once nothing is left to send, the ends of the last jobs
are the end of the batch: the tick halves (4 requests a second by default, for those last
jobs' run time). The two lists are read in that order so that a job starting
between them is in one of them.

The files' states of running jobs (for progress: `BatchObserver.file_status_every`) come on top,
with a budget of their own that does not grow with the batch: at most one ``file-status``
request in flight and one started per `FILE_STATUS_SPACING` (1 s) in all, for the waited job
listed IN_PROGRESS whose files were read longest ago, each job at most once per its
``every`` (30 s for the command line's progress; never under 5 s: the service allows 12 calls
a minute per job, which the client also enforces). Such a read runs beside the ticks, never
delays them, and is cancelled when the watcher has nothing left to wait for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import attrs

from .._clock import Clock
from .._constants import LAUNCH_MARGIN, LAUNCH_MARGIN_DECAY, LAUNCH_MARGIN_STEP, LOGGER_NAME
from .._exceptions import (
    AuthenticationError,
    PermissionDeniedError,
    QuotaExceededError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from .._models import JobFileStatus, JobInformation, JobStatus

__all__ = ["JobWatcher", "Launch", "LaunchPacer"]

log = logging.getLogger(LOGGER_NAME)
_FATAL = (AuthenticationError, PermissionDeniedError, QuotaExceededError)
FILE_STATUS_SPACING = 1.0
"""Seconds between two file-status reads of a batch's running jobs (all jobs together)."""
PROGRESS_FILE_STATUS_EVERY = 30.0
"""Seconds between two file-status reads of one job for the batch's progress (2 a minute)."""
FILE_STATUS_MIN_EVERY = 5.0
"""The least seconds between two file-status reads of one job (12 a minute: the service's limit)."""


class Launch:
    """One launch slot given by `LaunchPacer.slot`: report when its body has been sent."""

    def __init__(self, pacer: LaunchPacer) -> None:
        self._pacer = pacer
        self.began = anyio.Event()

    def started(self) -> None:
        """The request's body was sent (call it from the upload progress callback)."""
        if not self.began.is_set():
            self._pacer._started(self._pacer.clock.now())
            self.began.set()

    def finish(self) -> None:
        """The request ended (answered, failed or cancelled): no later than now it arrived."""
        self.started()


class LaunchPacer:
    """When the next job-creating request may leave (see the module's docstring)."""

    def __init__(self, interval: float | None, clock: Clock) -> None:
        self.interval = interval or 0.0
        self.margin = LAUNCH_MARGIN if self.interval else 0.0
        self.clock = clock
        self.not_before = -math.inf
        self._previous: anyio.Event | None = None
        self.refusals = 0
        """429 answers to launches."""
        self.paced_seconds = 0.0
        """Seconds the launches were held back by 429 answers (their ``Retry-After``)."""

    @property
    def spacing(self) -> float:
        """Seconds from one launch's last byte to the next launch, now."""
        return self.interval + self.margin

    async def slot(self) -> Launch:
        """Wait until a launch may leave, and take the slot."""
        if self.interval and self._previous is not None:
            await self._previous.wait()
        while (wait := self.not_before - self.clock.now()) > 0:
            await self.clock.sleep(wait)
        launch = Launch(self)
        self._previous = launch.began
        if self.interval:  # pushed later by `Launch.started`, measured from the last byte
            self.not_before = max(self.not_before, self.clock.now() + self.spacing)
        return launch

    def _started(self, at: float) -> None:
        if self.interval:
            self.not_before = max(self.not_before, at + self.spacing)

    def accepted(self) -> None:
        """A launch created its job: narrow the margin back, slowly."""
        if self.interval:
            self.margin = max(LAUNCH_MARGIN, self.margin * LAUNCH_MARGIN_DECAY)

    def refused(self, retry_after: float | None) -> float:
        """A launch got 429: widen the margin and hold every launch for ``Retry-After``
        (else one spacing, at least a second). Returns the wait."""
        self.refusals += 1
        if self.interval:
            self.margin = min(self.margin * 2 + LAUNCH_MARGIN_STEP, self.interval)
        wait = retry_after if retry_after is not None else max(self.spacing, 1.0)
        self.not_before = max(self.not_before, self.clock.now() + wait)
        self.paced_seconds += wait
        return wait

    def hold(self, seconds: float) -> None:
        """Hold every launch for `seconds` (a 503's ``Retry-After``), with no refusal counted."""
        self.not_before = max(self.not_before, self.clock.now() + seconds)


@attrs.define(eq=False)
class _Waiter:
    job_id: str
    deadline: float | None
    timeout: float | None
    done: anyio.Event = attrs.field(factory=anyio.Event)
    job: JobInformation | None = None
    error: BaseException | None = None
    last: JobInformation | None = None

    def settle(self, job: JobInformation | None = None, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.job, self.error = job, error
            self.done.set()


ListJobs = Callable[[str], Awaitable[list[JobInformation]]]
GetJob = Callable[[str], Awaitable[JobInformation]]
ReadFiles = Callable[[str], Awaitable[JobFileStatus]]
OnFiles = Callable[[str, JobFileStatus], None]


class JobWatcher:
    """Waits for many jobs with one listing per tick (see the module's docstring).

    `start` runs the loop in a task group while jobs are waited for; the loop ends when none
    is left and starts again with the next `wait`.
    """

    def __init__(
        self,
        list_jobs: ListJobs,
        get_job: GetJob,
        clock: Clock,
        *,
        interval: float,
        start: Callable[[Callable[[], Coroutine[Any, Any, None]]], object],
        files: tuple[ReadFiles, OnFiles, float] | None = None,
    ) -> None:
        self._list = list_jobs
        self._get = get_job
        self.clock = clock
        self.interval = interval
        self._start = start
        self._waiters: dict[str, _Waiter] = {}
        self._running = False
        self.requests = 0
        """Requests made (listings and confirmations), for the budget's measurement."""
        # The files' states of running jobs: (read, hand on, seconds between two reads of a
        # job), when asked for; see the module's docstring.
        self._files = files
        self._files_read: dict[str, float] = {}  # job id -> when its files were last read
        self._files_next = -math.inf
        self._files_scope: anyio.CancelScope | None = None
        self.file_requests = 0
        """File-status requests started, for the budget's measurement."""

    async def wait(self, job_id: str, timeout: float | None) -> JobInformation:
        """The job once it is COMPLETED, FAILED or STOPPED (or another terminal status).

        Raises `WaitTimeoutError` after `timeout` seconds (None: no limit), `NotFoundError`
        when the job is gone, or the error that made the watcher unable to look.
        """
        deadline = None if timeout is None else self.clock.now() + timeout
        waiter = self._waiters.get(job_id)
        if waiter is None:
            waiter = self._waiters[job_id] = _Waiter(job_id, deadline, timeout)
        if not self._running:
            self._running = True
            self._start(self._loop)
        await waiter.done.wait()
        self._waiters.pop(job_id, None)
        self._files_read.pop(job_id, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.job is not None
        return waiter.job

    async def _loop(self) -> None:
        try:
            while self._pending():
                try:
                    active = await self._active()
                    for waiter in [w for w in self._waiters.values() if not w.done.is_set()]:
                        listed = active.get(waiter.job_id)
                        if listed is None:
                            await self._confirm(waiter)
                        else:
                            waiter.last = listed
                        self._check_deadline(waiter)
                    self._read_files(active)
                except UnstructuredJobsError as exc:  # after the client's own retries
                    if not isinstance(exc, _FATAL):
                        log.warning("cannot look at the batch's jobs: %s", exc)
                    self._settle_all(exc)
                    return
                if self._pending():
                    await self.clock.sleep(self.interval)
        finally:
            self._running = False
            if self._files_scope is not None:  # nothing left to show it for
                self._files_scope.cancel()

    def _read_files(self, active: dict[str, JobInformation]) -> None:
        """Start reading the files' states of one running job, if the budget allows."""
        now = self.clock.now()
        if self._files is None or self._files_scope is not None or now < self._files_next:
            return
        every = max(self._files[2], FILE_STATUS_MIN_EVERY)
        due = [
            (self._files_read.get(w.job_id, -math.inf), w.job_id)
            for w in self._waiters.values()
            if not w.done.is_set()
            and (listed := active.get(w.job_id)) is not None
            and listed.status == JobStatus.IN_PROGRESS
            and self._files_read.get(w.job_id, -math.inf) + every <= now
        ]
        if not due:
            return
        _, job_id = min(due)  # read longest ago (or never) first
        self._files_read[job_id] = now
        self._files_next = now + FILE_STATUS_SPACING
        self._files_scope = anyio.CancelScope()
        self.file_requests += 1
        self._start(lambda: self._files_of(job_id))

    async def _files_of(self, job_id: str) -> None:
        assert self._files is not None and self._files_scope is not None
        read, on_files, _ = self._files
        try:
            with self._files_scope:
                status = await read(job_id)
                waiter = self._waiters.get(job_id)
                if waiter is not None and not waiter.done.is_set():  # not ended meanwhile
                    on_files(job_id, status)
        except UnstructuredJobsError as exc:  # progress only: the batch goes on without it
            log.debug("job %s: no file status for the progress: %s", job_id, exc)
        finally:
            self._files_scope = None

    def _pending(self) -> bool:
        return any(not w.done.is_set() for w in self._waiters.values())

    async def _active(self) -> dict[str, JobInformation]:
        """The account's jobs that are SCHEDULED or IN_PROGRESS (listed in that order)."""
        found: dict[str, JobInformation] = {}
        for status in (JobStatus.SCHEDULED, JobStatus.IN_PROGRESS):
            self.requests += 1
            found.update((j.id, j) for j in await self._list(status))
        return found

    async def _confirm(self, waiter: _Waiter) -> None:
        self.requests += 1
        try:
            job = await self._get(waiter.job_id)
        except _FATAL:
            raise  # the loop settles every waiter with it
        except UnstructuredJobsError as exc:  # NotFoundError included: the job is gone
            waiter.settle(error=exc)
            return
        waiter.last = job
        if job.status.is_terminal:
            waiter.settle(job)

    def _check_deadline(self, waiter: _Waiter) -> None:
        if waiter.done.is_set() or waiter.deadline is None:
            return
        if self.clock.now() >= waiter.deadline:
            last = waiter.last
            state = f"still {last.status}" if last is not None else "not finished"
            error = WaitTimeoutError(
                f"job {waiter.job_id} is {state} after {waiter.timeout:g}s",
                job_id=waiter.job_id,
                last_job=last,
            )
            waiter.settle(error=error)

    def _settle_all(self, error: BaseException) -> None:
        for waiter in self._waiters.values():
            waiter.settle(error=error)
