"""The moving parts of a batch run (see `unstructured_jobs.batch` for the public API).

Each group's send ends in one `Outcome`, settled in one place (`BatchRun._settle`): created,
back in the queue (after a refusal, a split, an unreadable file taken out), left pending,
refused, or left ``submitting`` for the next run. `_settle` is called in a ``finally``, so a
path that forgets to settle cannot leave the batch waiting for ever.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import random
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import attrs
from anyio.abc import TaskGroup

from .._clock import Clock
from .._constants import (
    BATCH_BACKLOG_PER_RUNNING,
    BATCH_MAX_CONCURRENT_DOWNLOADS,
    BATCH_MAX_RATE_LIMITED,
    BATCH_SPLIT_BREAKER,
    LOGGER_NAME,
)
from .._core import backoff_delay, one_line, parse_retry_after
from .._exceptions import (
    AmbiguousRequestError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InputFileError,
    InternalServerError,
    LocalFileError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RequestTooLargeError,
    ResponseValidationError,
    UnprocessableEntityError,
    UnsafePathError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from .._files.inputs import InputFile
from .._http.response import RawResponse
from .._models import JobFailedFiles, JobFileStatus, JobInformation, JobStatus
from .._options import ServiceLimits
from . import manifest as _manifest
from .grouping import GroupLimits, match_job, server_offset
from .manifest import (
    DISK_FULL_ERRNOS,
    FileRow,
    FileState,
    GroupRow,
    GroupState,
    Manifest,
    unique_name,
    write_error,
)
from .paths import name_as_sent, output_path_inside, safe_output_name
from .scheduler import JobWatcher, Launch, LaunchPacer, OnFiles, ReadFiles

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
# Answers that end the batch: every other group would get the same. Unsent files stay pending.
_FATAL = (AuthenticationError, PermissionDeniedError, QuotaExceededError)
# On the jobs collection itself (create, list), a 404 means a wrong server URL, not a missing
# job: every other group would fail the same way, so the batch stops and keeps them pending.
_WRONG_SERVER = (*_FATAL, NotFoundError)
# Refusals that may be about one file of the group (a name the form parser refuses, a file
# too large): the group is split to find it.
_SPLIT = (BadRequestError, UnprocessableEntityError, RequestTooLargeError)


class _RawJobs(Protocol):
    @property
    def list_jobs(self) -> Callable[[], Awaitable[RawResponse[list[JobInformation]]]]: ...


class BatchClient(Protocol):
    """What the batch engine needs of a client (`AsyncJobsClient` has it)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def limits(self) -> ServiceLimits: ...

    @property
    def with_raw_response(self) -> _RawJobs: ...

    async def create_job(
        self,
        *,
        request_data: str,
        input_files: Sequence[InputFile],
        on_upload_progress: Callable[[int], None],
        max_retries: int,
    ) -> JobInformation: ...

    async def list_jobs(self, *, status: str) -> list[JobInformation]: ...

    async def get_job(self, job_id: str) -> JobInformation: ...

    async def get_job_failed_files(self, job_id: str) -> JobFailedFiles: ...

    async def get_job_file_status(self, job_id: str) -> JobFileStatus: ...

    async def download_job_output_to(self, job_id: str, path: str, *, file_id: str) -> Any: ...


class BatchObserver:
    """Progress hooks of a batch; override the ones you need (they do nothing here).

    They are called on the event loop's thread (a `JobsClient`'s loop thread for `run_batch`
    with a client): keep them quick.
    """

    file_status_every: float | None = None
    """Set it (seconds, at least 5) to be told the files' states of the batch's running jobs
    (`on_job_files`): each such job's are read at most that often, one read a second at most
    in all. None (default): none are read. ``progress=True`` and the command line use 30."""

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        """The work of this run is known: `jobs` to send or wait for, `upload_bytes` to send."""

    def on_upload(self, delta: int) -> None:
        """Bytes sent (negative when an attempt is retried or a group is sent again)."""

    def on_job_submitted(self, job_id: str, files: int) -> None:
        """A job was created (or found after a lost answer) for `files` files."""

    def on_job_finished(self, job_id: str, status: str) -> None:
        """A job reached a terminal status."""

    def on_file(self, path: str, state: FileState) -> None:
        """A file reached its `FileState` for this run (it is also a plain string)."""

    def on_job_files(self, job_id: str, status: JobFileStatus) -> None:
        """The files' states of a running job (with `file_status_every` set): how many are
        READY, IN_PROGRESS, SUCCESS, FAILURE (``status.count("SUCCESS")``)."""

    def on_paced(self, reason: str, delay: float) -> None:
        """A launch was refused by the service's rate limit (`reason`, e.g. ``"HTTP 429"``)
        and goes back in the queue: no launch leaves for `delay` seconds. Pacing, not an
        error: the batch goes on (`BatchReport.refusals` and `paced_seconds` sum them up)."""


def form_groups(m: Manifest, limits: GroupLimits, *, retry_failed: bool) -> None:
    """Make refused files pending again (and failed ones with `retry_failed`), refuse the files
    over the size limit, and group the pending files into new jobs, in path order. Blocking,
    local only, and streaming: a page of files at a time (`Manifest.group_pending`), so a
    batch of a million files is grouped in bounded memory. A dry run
    (`unstructured_jobs.batch.plan_batch`) computes the same groups without writing them."""
    m.retry(failed_jobs=retry_failed)
    if limits.file_bytes is not None:
        m.reject_larger(limits.file_bytes)
    m.group_pending(limits.files, limits.job_bytes)


def _now() -> datetime:
    return datetime.now(UTC)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Settled(enum.Enum):
    """How one send of a group ended (see `Outcome`)."""

    CREATED = "created"  # its job exists (created, or found after a lost answer)
    AGAIN = "again"  # back in the queue: `Outcome.groups` (the group, or its parts)
    PENDING = "pending"  # not created; left pending for the next run
    REFUSED = "refused"  # refused for good: its files failed
    UNSURE = "unsure"  # left ``submitting``: the next run looks for its job
    STOPPED = "stopped"  # the batch stops (an error propagates)


@attrs.frozen
class Outcome:
    """How one send of a group ended, and what comes next for it."""

    how: Settled
    groups: tuple[GroupRow, ...] = ()
    """For `Settled.AGAIN`: the groups to send (the same one, or its parts)."""
    delay: float = 0.0
    """For `Settled.AGAIN`: seconds before they go back in the queue."""
    job: GroupRow | None = None
    """For `Settled.CREATED`: the group with its job recorded."""


_STOPPED = Outcome(Settled.STOPPED)


def _next_page(pages: Iterator[GroupRow]) -> list[GroupRow]:
    return list(itertools.islice(pages, _manifest.GROUP_PAGE))


class _Queue:
    """The groups waiting for a launch slot. Groups sent again (a refused launch, the parts of
    a refused group) go to the front: a split is followed to its end before other groups are
    sent, so a request refused for every file is recognised after a few sends."""

    def __init__(self, pages: Iterator[GroupRow]) -> None:
        # The manifest's ``new`` groups, read a page at a time in a worker thread
        # (`Manifest.iter_groups_to_send`: a batch of a million files never has them all in
        # memory); the iterator is fixed to the groups present at its first read, so the parts
        # of a split group (queued with `put_front`) are never read from it again.
        self._pages: Iterator[GroupRow] | None = pages
        self._items: deque[GroupRow] = deque()
        self._closed = False
        self._ready = anyio.Event()

    def put_front(self, groups: Sequence[GroupRow]) -> None:
        """Queue `groups` (in this order) before the others; nothing once closed."""
        if not self._closed:
            self._items.extendleft(reversed(groups))
            self._ready.set()

    def close(self) -> None:
        """No more groups: `get` returns None once the queue is empty."""
        self._closed = True
        self._ready.set()

    async def get(self) -> GroupRow | None:
        """The next group, waiting for one; None when closed (what is left stays unsent)."""
        while not self._items:
            if self._closed:
                return None
            if self._pages is not None:
                page = await anyio.to_thread.run_sync(_next_page, self._pages)
                if not page:
                    self._pages = None
                self._items.extend(page)
                continue
            self._ready = anyio.Event()
            await self._ready.wait()
        if self._closed:
            return None
        return self._items.popleft()


class BatchRun:
    """One run of a batch over an open manifest."""

    def __init__(
        self,
        client: BatchClient,
        manifest: Manifest,
        *,
        request_data: str,
        limits: GroupLimits,
        output_dir: str | None,
        launch_interval: float | None,
        running_jobs: int | None,
        max_concurrent_uploads: int,
        wait: bool,
        wait_timeout: float | None,
        poll_interval: float,
        clock_skew: timedelta,
        reconcile_grace: float,
        max_submit_attempts: int,
        observer: BatchObserver,
    ) -> None:
        self.client = client
        self.m = manifest
        self.request_data = request_data
        self.limits = limits
        self.out = output_dir
        self.pacer = LaunchPacer(launch_interval, client.clock)
        self.uploads = anyio.Semaphore(max_concurrent_uploads)
        # Jobs created and not finished, at most (when waiting for them): enough to keep the
        # service's running slots busy, without queueing the whole batch on the server.
        backlog = None if running_jobs is None else BATCH_BACKLOG_PER_RUNNING * running_jobs
        self.backlog = anyio.Semaphore(backlog) if wait and backlog is not None else None
        self.downloads = anyio.Semaphore(BATCH_MAX_CONCURRENT_DOWNLOADS)
        self.wait = wait
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.skew = clock_skew
        self.grace = reconcile_grace
        self.max_attempts = max_submit_attempts
        self.observer = observer
        self.attempts: dict[int, int] = defaultdict(int)  # sends that proved no job exists
        self.rate_limited: dict[int, int] = defaultdict(int)  # 429s met
        self.rng = random.Random()
        # server time - local time, as last measured from a created job (see _list_jobs).
        self.created_offset: timedelta | None = None
        self.used_names: set[str] = set()
        self.outstanding = 0
        self.queue = _Queue(iter(()))
        self.tg: TaskGroup | None = None
        self.watcher: JobWatcher | None = None
        # Set, before the upload slot is freed, by an answer that ends the batch (401, 402,
        # 403, a 404 on the jobs collection): no create starts after it, however fast.
        self.stopping = False
        # Creates in flight: a batch that stops lets them finish (their outcome is then known)
        # instead of cancelling them into "a job may exist" for the next run to reconcile.
        self.in_flight = 0
        self.flight_changed = anyio.Event()
        # Splitting refused groups: the smallest file size the server refused as too large
        # (larger files are not sent again this run), refused single files and created jobs
        # (several single files refused and no job created: the request itself is refused,
        # splitting stops).
        self.too_large: int | None = None
        self.refused_alone = 0
        self.created = 0

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking manifest call in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def _unsent(self, group_id: int, error: str | None) -> None:
        """Put back to pending a group certainly not created. Shielded: the batch stopping (a
        cancellation) must not leave it ``submitting``, which the next run would reconcile as
        if its request had left."""
        with anyio.CancelScope(shield=True):
            await self.db(self.m.group_unsent, group_id, error)

    # -- preparation ---------------------------------------------------------------------------

    async def run(self, *, retry_failed: bool) -> None:
        """Reconcile, group, send, wait and download until this run's work is done."""
        m = self.m
        await self.db(form_groups, m, self.limits, retry_failed=retry_failed)
        used = await self.db(m.used_outputs)
        self.used_names = {os.path.basename(p) for p in used}
        await self._remove_stale_parts(used)
        await self._reconcile_leftovers()
        # The groups to send are counted in SQL and read a page at a time (`_GroupQueue`).
        to_send, files_to_send, bytes_to_send = await self.db(m.send_totals)
        waiting = await self.db(m.groups_to_wait) if self.wait else []
        self.observer.on_start(
            jobs=to_send + len(waiting),
            files=files_to_send + sum(len(g.files) for g in waiting),
            upload_bytes=bytes_to_send,
        )
        self.queue = _Queue(m.iter_groups_to_send())
        self.outstanding = to_send
        if not to_send:
            self.queue.close()
        try:
            async with anyio.create_task_group() as tg:
                self.tg = tg
                self.watcher = JobWatcher(
                    self._list_status,
                    self.client.get_job,
                    self.client.clock,
                    interval=self.poll_interval,
                    start=tg.start_soon,
                    files=self._files_progress(),
                )
                for group in waiting:
                    tg.start_soon(self._wait_group, group)
                await self._launch()
        except Exception as exc:
            error = _unwrap(exc)
            raise error from error.__cause__
        finally:
            self.queue.close()

    def _files_progress(self) -> tuple[ReadFiles, OnFiles, float] | None:
        """What the watcher reads running jobs' files' states with, if the observer asks."""
        every = self.observer.file_status_every
        if every is None:
            return None
        return self.client.get_job_file_status, self.observer.on_job_files, every

    async def _list_status(self, status: str) -> list[JobInformation]:
        return await self.client.list_jobs(status=status)

    async def _remove_stale_parts(self, outputs: set[str]) -> None:
        """Temporary files that downloads killed in an earlier run left beside our outputs."""
        from .._files.downloads import remove_stale_parts  # aiohttp: not for a dry run or `--help`

        by_folder: dict[str, set[str]] = defaultdict(set)
        for path in outputs:
            by_folder[os.path.dirname(path)].add(os.path.basename(path))
        for folder, names in by_folder.items():
            removed = await self.db(remove_stale_parts, folder, names)
            if removed:
                log.info("removed %d temporary file(s) left in %s", len(removed), folder)

    async def _list_jobs(self) -> tuple[list[JobInformation], timedelta]:
        """Every job, and the server's clock offset (server time - local time) measured now.

        The offset comes from the listing's ``Date`` header: the server wrote it before we got
        the answer, so ``Date - now`` never exceeds the true offset (it is low by at most the
        round trip and the header's one-second precision). Without the header: the offset
        measured on the last job this run created, else 0 (the clocks are assumed to agree).
        """
        raw = await self.client.with_raw_response.list_jobs()
        received_at = _now()
        jobs: list[JobInformation] = raw.parse()
        offset = server_offset(raw.headers.get("Date"), received_at)
        if offset is None:
            offset = self.created_offset or timedelta(0)
        return jobs, offset

    async def _reconcile_leftovers(self) -> None:
        """Groups left ``submitting`` by a run that died: adopt their job or send them again."""
        leftovers = await self.db(self.m.groups_to_reconcile)
        if not leftovers:
            return
        try:
            jobs, offset = await self._list_jobs()
        except _WRONG_SERVER:
            raise
        except UnstructuredJobsError as exc:
            for group in leftovers:
                why = f"cannot check whether its job exists ({_short(exc)}); run again"
                await self.db(self.m.group_error, group.id, why)
            return
        for group in leftovers:
            await self._adopt_or_release(group, jobs, offset, requeue=False)

    async def _adopt_or_release(
        self,
        group: GroupRow,
        jobs: Sequence[JobInformation],
        offset: timedelta,
        *,
        requeue: bool,
    ) -> bool:
        claimed = await self.db(self.m.claimed_job_ids)
        sent_at = datetime.fromisoformat(group.sent_at or _now().isoformat())
        job = match_job(group.names, sent_at, jobs, claimed, self.skew, offset)
        if job is None:
            if not requeue:
                await self._unsent(group.id, None)
            return False
        log.info("group %d: found job %s created before the answer was lost", group.id, job.id)
        await self.db(self.m.group_created, group.id, job.id, str(job.status))
        return True

    # -- sending -------------------------------------------------------------------------------

    async def _launch(self) -> None:
        """Every job-creating request of the batch leaves from here, one per launch slot."""
        assert self.tg is not None
        while True:
            # A backlog place, a free upload slot, then the group and the launch slot: two
            # slots freed together must not launch two jobs in the same instant.
            if self.backlog is not None:
                await self.backlog.acquire()
            await self.uploads.acquire()
            group = None if self.stopping else await self.queue.get()
            if group is not None and not self.stopping:
                marking = group
                try:
                    # Recorded while the launch slot is still ahead: the wait hides its cost.
                    group = await self._mark_sending(group)
                except BaseException as exc:
                    self._release()
                    if isinstance(exc, anyio.get_cancelled_exc_class()):
                        # The batch stops while the worker thread marked it: nothing was sent,
                        # so it must not stay ``submitting`` (to be reconciled next run).
                        await self._unsent(marking.id, None)
                    raise
                if not group.files:  # every file was taken out
                    self._release()
                    self._settle(Outcome(Settled.REFUSED))
                    continue
            try:
                launch = None if group is None or self.stopping else await self.pacer.slot()
            except BaseException:  # cancelled (the batch stops): the group was not sent
                self._release()
                if group is not None:
                    await self._unsent(group.id, None)
                raise
            if group is None or launch is None or self.stopping:
                self._release()
                if group is not None:  # the batch stops: the group stays pending, unsent
                    await self._unsent(group.id, None)
                return
            self.tg.start_soon(self._send_group, group, launch)

    def _release(self) -> None:
        """Give back the upload slot and the backlog place of a group not sent."""
        self.uploads.release()
        if self.backlog is not None:
            self.backlog.release()

    async def _mark_sending(self, group: GroupRow) -> GroupRow:
        """Mark the group ``submitting`` (before its request can leave), without the files
        that are too large for the server; a manifest that cannot be written stops the batch
        (it never makes the group look refused)."""
        group = await self._drop_too_large(group)
        if not group.files:
            return group
        sent_at = _now().isoformat()
        await self.db(self.m.group_sending, group.id, sent_at)
        return attrs.evolve(group, sent_at=sent_at)

    async def _send_group(self, group: GroupRow, launch: Launch) -> None:
        """Send one group; settle its outcome (always, once); wait for its job if created."""
        outcome = _STOPPED
        try:
            try:
                outcome = await self._submit(group, launch)
            finally:
                self._settle(outcome)
            if outcome.job is not None:
                adopted = outcome.job
                assert adopted.job_id is not None
                self.observer.on_job_submitted(adopted.job_id, len(adopted.files))
                if self.wait:
                    await self._wait_group(adopted)
        finally:
            if self.backlog is not None:
                self.backlog.release()

    def _settle(self, outcome: Outcome) -> None:
        """The one place where a send's outcome is settled: requeue its groups (now or after
        `Outcome.delay`), or count the group done; the queue closes when none is left."""
        again = outcome.groups if outcome.how is Settled.AGAIN else ()
        self.outstanding += len(again) - 1
        if again:
            if outcome.delay > 0 and self.tg is not None:
                self.tg.start_soon(self._requeue_later, again, outcome.delay)
            else:
                self._requeue(again)
        if self.outstanding == 0:
            self.queue.close()
            if self.watcher is not None:  # the last jobs' ends decide the batch's: look closer
                self.watcher.interval = self.poll_interval / 2

    def _requeue(self, groups: Sequence[GroupRow]) -> None:
        # Once the batch stops the queue is closed: the groups stay ``new`` (pending).
        self.queue.put_front(groups)

    async def _requeue_later(self, groups: Sequence[GroupRow], delay: float) -> None:
        await self.client.clock.sleep(delay)
        self._requeue(groups)

    def _notify(self, files: Sequence[FileRow], state: FileState) -> None:
        for f in files:
            self.observer.on_file(f.path, state)

    async def _again_or_pending(self, group: GroupRow, error: str, delay: float) -> Outcome:
        """Certainly not created: send the group again (after `delay`), or (attempts spent)
        leave it pending for the next run."""
        if self.attempts[group.id] < self.max_attempts and not self.stopping:
            await self._unsent(group.id, error)
            return Outcome(Settled.AGAIN, (group,), delay)
        await self._unsent(group.id, f"{error}; run again to send it")
        self._notify(group.files, FileState.PENDING)
        return Outcome(Settled.PENDING)

    async def _refused(self, group: GroupRow, error: str) -> Outcome:
        """Refused for good (no job): the group's files failed."""
        await self.db(self.m.group_refused, group.id, error)
        self._notify(group.files, FileState.FAILED)
        return Outcome(Settled.REFUSED)

    async def _drop_too_large(self, group: GroupRow) -> GroupRow:
        """Files at least as large as one the server refused as too large (413) in this run:
        failed without sending them again."""
        limit = self.too_large
        if limit is None:
            return group
        big = [f for f in group.files if f.size >= limit]
        if not big:
            return group
        why = (
            f"not sent: the server refused a file of {limit} bytes as too large (413) in this "
            f"batch, and this one is {{size}} bytes; {_SIZE_ADVICE}"
        )
        await self.db(self.m.drop_from_group, {f.id: why.format(size=f.size) for f in big})
        self._notify(big, FileState.FAILED)
        return attrs.evolve(group, files=tuple(f for f in group.files if f not in big))

    async def _submit(self, group: GroupRow, launch: Launch) -> Outcome:
        sent = 0
        whole = sum(f.size for f in group.files)

        def progress(delta: int) -> None:
            nonlocal sent
            sent += delta
            if sent >= whole:  # the body is sent: the launch has arrived, or is about to
                launch.started()
            self.observer.on_upload(delta)

        if self.stopping:  # the batch ends: this group stays pending, unsent
            self.uploads.release()
            launch.finish()
            await self._unsent(group.id, None)
            return Outcome(Settled.PENDING)
        try:  # a file refused as too large while this group waited for its slot
            group = await self._drop_too_large(group)
        except BaseException:
            self.uploads.release()
            launch.finish()
            raise
        if not group.files:
            self.uploads.release()
            launch.finish()
            await self.db(self.m.group_refused, group.id, "its files were not sent")
            return Outcome(Settled.REFUSED)
        files = [InputFile(f.path, filename=f.upload_name) for f in group.files]
        try:
            self.in_flight += 1
            try:
                # No retries in the client: every new attempt goes through the launch slots.
                job = await self.client.create_job(
                    request_data=self.request_data,
                    input_files=files,
                    on_upload_progress=progress,
                    max_retries=0,
                )
            except _WRONG_SERVER:
                self.stopping = True
                raise
            finally:
                self.in_flight -= 1
                changed, self.flight_changed = self.flight_changed, anyio.Event()
                changed.set()  # every waiter wakes and looks again
                self.uploads.release()
                launch.finish()
            self.created_offset = job.created_at - _now()
        except (AmbiguousRequestError, ResponseValidationError) as exc:
            # The job may exist: never send again before looking for it.
            self.observer.on_upload(-sent)
            return await self._reconcile(group, exc)
        except _WRONG_SERVER as exc:
            await self._unsent(group.id, _short(exc))
            while self.in_flight:  # the creates already sent settle first (nothing new leaves)
                await self.flight_changed.wait()
            raise
        except InputFileError as exc:
            self.observer.on_upload(-sent)
            return await self._drop_unreadable(group, exc)
        except RateLimitError as exc:
            self.observer.on_upload(-sent)
            return await self._rate_limited(group, exc)
        except (InternalServerError, APIConnectionError) as exc:
            # Certainly not created (503, nothing or part of the body sent): again, later.
            self.observer.on_upload(-sent)
            self.attempts[group.id] += 1
            delay = backoff_delay(self.attempts[group.id] - 1, self.rng)
            if isinstance(exc, APIStatusError):
                hint = parse_retry_after(
                    next((v for k, v in exc.headers.items() if k.lower() == "retry-after"), None)
                )
                if hint is not None:
                    self.pacer.hold(hint)
                    delay = 0.0
            log.info("group %d not created (%s); sending it again", group.id, _short(exc))
            return await self._again_or_pending(group, _short(exc), delay)
        except _SPLIT as exc:
            self.observer.on_upload(-sent)
            return await self._split(group, exc)
        except UnstructuredJobsError as exc:  # refused for good (409, 4xx, ...): no job
            self.observer.on_upload(-sent)
            return await self._refused(group, _short(exc))
        self.pacer.accepted()
        self.created += 1
        await self.db(self.m.group_created, group.id, job.id, str(job.status))
        return await self._created(group)

    async def _created(self, group: GroupRow) -> Outcome:
        adopted = await self.db(self.m.submitted_group, group.id)
        if adopted is None or adopted.job_id is None:
            return Outcome(Settled.CREATED)
        return Outcome(Settled.CREATED, job=adopted)

    async def _rate_limited(self, group: GroupRow, exc: RateLimitError) -> Outcome:
        """429: the launch takes its turn again once the server's ``Retry-After`` is over."""
        delay = self.pacer.refused(exc.retry_after)
        self.rate_limited[group.id] += 1
        self.observer.on_paced(f"HTTP {exc.status}", delay)
        log.debug("group %d rate limited; launches wait %.2fs", group.id, delay)
        if self.rate_limited[group.id] > BATCH_MAX_RATE_LIMITED or self.stopping:
            why = f"rate limited {self.rate_limited[group.id]} times ({_short(exc)})"
            await self._unsent(group.id, f"{why}; run again to send it")
            self._notify(group.files, FileState.PENDING)
            return Outcome(Settled.PENDING)
        await self._unsent(group.id, None)
        return Outcome(Settled.AGAIN, (group,))

    async def _split(self, group: GroupRow, exc: APIStatusError) -> Outcome:
        """A refusal that may be about one file: send the group's files apart to find it.

        413: the largest file goes alone, the others in two halves; 400/422: two halves. A
        file refused alone fails with the server's reason. When several files were refused
        alone and no job was created, the request itself is refused (a wrong template):
        groups stop splitting and fail whole, as the server refuses them.
        """
        too_large = isinstance(exc, RequestTooLargeError)
        files = list(group.files)
        if len(files) == 1:
            self.refused_alone += 1
            only = files[0]
            if too_large:
                self.too_large = min(self.too_large or only.size, only.size)
                why = (
                    f"refused by the server as too large ({exc.status}: "
                    f"{_detail(exc)}); the file is {only.size} bytes; {_SIZE_ADVICE}"
                )
            else:
                why = f"refused by the server ({exc.status}: {_detail(exc)})"
            return await self._refused(group, why)
        if self.refused_alone >= BATCH_SPLIT_BREAKER and self.created == 0:
            return await self._refused(group, _short(exc))
        if too_large:
            largest = max(files, key=lambda f: f.size)
            rest = [f for f in files if f is not largest]
            parts = [[largest], *_halves(rest)]
        else:
            parts = _halves(files)
        log.info(
            "group %d refused (%s): its %d files are sent in %d parts to find the cause",
            group.id,
            _short(exc),
            len(files),
            len(parts),
        )
        why = f"its group was refused ({exc.status}): sent apart to find the cause"
        ids = await self.db(self.m.split_group, group.id, [[f.id for f in p] for p in parts], why)
        groups = tuple(
            GroupRow(gid, GroupState.NEW, None, None, tuple(attrs.evolve(f, error=why) for f in p))
            for gid, p in zip(ids, parts, strict=True)
        )
        return Outcome(Settled.AGAIN, groups)

    async def _leave_for_next_run(self, group: GroupRow, why: str) -> Outcome:
        """Keep the group ``submitting`` (never resent blindly); the next run reconciles it."""
        await self.db(self.m.group_error, group.id, why)
        self._notify(group.files, FileState.SUBMITTING)
        return Outcome(Settled.UNSURE)

    async def _reconcile(self, group: GroupRow, exc: UnstructuredJobsError) -> Outcome:
        """After a lost answer: the job when found and recorded, else what to do next."""
        for look in range(2):
            try:
                jobs, offset = await self._list_jobs()
            except _WRONG_SERVER:
                raise
            except UnstructuredJobsError as list_exc:
                why = (
                    f"answer lost ({_short(exc)}) and jobs could not be listed "
                    f"({_short(list_exc)}); run again to reconcile"
                )
                return await self._leave_for_next_run(group, why)
            if await self._adopt_or_release(group, jobs, offset, requeue=True):
                return await self._created(group)
            if look == 0 and self.grace > 0:
                await self.client.clock.sleep(self.grace)
            else:
                break
        cause = getattr(exc, "cause", None)
        if isinstance(cause, APITimeoutError) and cause.phase == "read":
            # The server got the whole request and may still be creating the job: sending the
            # group again now could make a second one. The next run reconciles it.
            why = f"answer timed out ({_short(exc)}) and no job is listed yet; run again"
            return await self._leave_for_next_run(group, why)
        self.attempts[group.id] += 1
        why = f"answer lost, no job was created ({_short(exc)})"
        return await self._again_or_pending(group, why, 0.0)

    async def _drop_unreadable(self, group: GroupRow, exc: InputFileError) -> Outcome:
        reasons = dict(exc.problems)
        bad = [f for f in group.files if f.upload_name in reasons or f.path in reasons]
        errors = {f.id: reasons.get(f.upload_name) or reasons.get(f.path) or str(exc) for f in bad}
        if errors:
            await self.db(self.m.drop_from_group, errors)
            self._notify(bad, FileState.FAILED)
        rest = tuple(f for f in group.files if f not in bad)
        if not rest or not bad:
            return await self._refused(attrs.evolve(group, files=rest), _short(exc))
        return await self._again_or_pending(attrs.evolve(group, files=rest), _short(exc), 0.0)

    # -- waiting and downloading ---------------------------------------------------------------

    async def _wait_group(self, group: GroupRow) -> None:
        job_id = group.job_id
        assert job_id is not None and self.watcher is not None
        try:
            job = await self.watcher.wait(job_id, self.wait_timeout)
        except _FATAL:
            raise
        except NotFoundError:
            # Files already done keep their outputs; the others failed, so that a run with
            # retry_failed sends only them again.
            why = (
                f"job {job_id} no longer exists on the server (404); run again with "
                "retry_failed=True (command line: --retry-failed) to send this file again"
            )
            await self.db(self.m.group_job_missing, group.id, why)
            self._notify([f for f in group.files if f.state != FileState.DONE], FileState.FAILED)
            return
        except (WaitTimeoutError, UnstructuredJobsError) as exc:
            await self.db(self.m.group_error, group.id, f"{_short(exc)}; run again to wait")
            self._notify(group.files, FileState.SUBMITTED)
            return
        status = str(job.status)
        self.observer.on_job_finished(job.id, status)
        failed: dict[str, str] = {}
        if status in (JobStatus.COMPLETED, JobStatus.FAILED):
            try:
                report = await self.client.get_job_failed_files(job.id)
                failed = {x.document: x.error for x in report.failed_files}
            except _FATAL:
                raise
            except UnstructuredJobsError as exc:
                log.warning("job %s: cannot read failed files: %s", job.id, _short(exc))
        finished = True
        for position, f in enumerate(group.files):
            if f.state in (FileState.DONE, FileState.FAILED):
                continue
            file_id = _file_id(job, f, position)
            if status != JobStatus.COMPLETED:
                why = failed.get(f.upload_name) or failed.get(file_id) or f"job ended {status}"
                await self._record(f, FileState.FAILED, status, None, why)
            elif f.upload_name in failed or file_id in failed:
                why = failed.get(f.upload_name) or failed[file_id]
                await self._record(f, FileState.FAILED, status, None, why)
            elif self.out is None:
                await self._record(f, FileState.DONE, status, None, None)
            else:
                finished &= await self._download(job, f, file_id)
        if finished:
            await self.db(self.m.group_finished, group.id, status)

    async def _download(self, job: JobInformation, f: FileRow, file_id: str) -> bool:
        assert self.out is not None
        status = str(job.status)
        try:
            target = f.output_path or self._claim(file_id)
            output_path_inside(self.out, os.path.basename(target))
        except UnsafePathError as exc:
            await self._record(f, FileState.FAILED, status, None, str(exc))
            return True
        if f.output_path is None:  # recorded first: a later run knows its .part files
            await self.db(self.m.claim_output, f.id, target)
        try:
            async with self.downloads:
                await self.client.download_job_output_to(job.id, target, file_id=file_id)
        except _FATAL:
            raise
        except LocalFileError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS:
                # Every other output would fail the same way: stop, the next run resumes.
                reason = cause.strerror or str(cause)
                raise write_error(
                    Path(target), f"cannot write the output {target}", reason, full=True
                ) from cause
            why = f"download failed ({_short(exc)}); run again to retry"
            await self._record(f, FileState.SUBMITTED, status, target, why)
            return False
        except UnstructuredJobsError as exc:
            why = f"download failed ({_short(exc)}); run again to retry"
            await self._record(f, FileState.SUBMITTED, status, target, why)
            return False
        await self._record(f, FileState.DONE, status, target, None)
        return True

    def _claim(self, file_id: str) -> str:
        assert self.out is not None
        name = unique_name(safe_output_name(file_id) + ".json", self.used_names)
        path = str(output_path_inside(self.out, name))
        self.used_names.add(name)
        return path

    async def _record(
        self, f: FileRow, state: FileState, status: str, output: str | None, error: str | None
    ) -> None:
        await self.db(
            self.m.file_outcome,
            f.id,
            state=state,
            job_status=status,
            output_path=output,
            error=error,
        )
        self.observer.on_file(f.path, state)


def _file_id(job: JobInformation, f: FileRow, position: int) -> str:
    """The server's id of a file of the job: its upload name, as listed in input_file_ids."""
    ids = list(job.input_file_ids or ())
    for name in (f.upload_name, name_as_sent(f.upload_name)):
        if name in ids:
            return name
    return ids[position] if position < len(ids) else name_as_sent(f.upload_name)


def _unwrap(exc: BaseException) -> BaseException:
    """One error for a task group's exception group: our first one, else its first one.

    Never the bare group: several tasks failing at once (a full disk hits every writer) is one
    problem to the user. The others are noted on the one raised (shown in its traceback).
    """
    leaves: list[BaseException] = []
    stack = [exc]
    while stack:
        item = stack.pop(0)
        if isinstance(item, BaseExceptionGroup):
            stack.extend(item.exceptions)
        else:
            leaves.append(item)
    if not leaves:
        return exc
    ours = [e for e in leaves if isinstance(e, UnstructuredJobsError)]
    chosen = (ours or leaves)[0]
    if len(leaves) > 1:
        others = sorted({type(e).__name__ for e in leaves if e is not chosen})
        chosen.add_note(f"{len(leaves) - 1} other task(s) of the batch failed too: {others}")
    return chosen


_SIZE_ADVICE = (
    "sending it again will not help: lower max_file_bytes (command line --max-file-size; "
    "ServiceLimits.bytes_per_file) to the server's limit so that such files are refused "
    "before sending, or make the file smaller"
)


def _halves(files: Sequence[FileRow]) -> list[list[FileRow]]:
    """`files` in two halves (in order), leaving out an empty one."""
    middle = (len(files) + 1) // 2
    return [part for part in (list(files[:middle]), list(files[middle:])) if part]


def _detail(exc: APIStatusError) -> str:
    """The server's reason, short: its ``detail`` when it gave one, else the message's end."""
    detail = exc.detail
    if isinstance(detail, str) and detail:
        return one_line(detail, 300)  # a manifest reason is one line, whatever the server sent
    text = _short(exc)
    return text.split(": ", 1)[-1][:300]
