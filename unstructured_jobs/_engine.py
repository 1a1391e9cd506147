"""The moving parts of a batch run (see `unstructured_jobs.batch` for the public API)."""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _manifest
from ._constants import BATCH_MAX_CONCURRENT_DOWNLOADS, LOGGER_NAME
from ._downloads import remove_stale_parts
from ._exceptions import (
    AmbiguousRequestError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InputFileError,
    InternalServerError,
    LocalFileError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    UnsafePathError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from ._grouping import GroupLimits, match_job, server_offset
from ._inputs import InputFile
from ._manifest import (
    DISK_FULL_ERRNOS,
    FileRow,
    FileState,
    GroupRow,
    Manifest,
    unique_name,
    write_error,
)
from ._models import JobInformation, JobStatus
from ._paths import name_as_sent, output_path_inside, safe_output_name

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
_FATAL = (AuthenticationError, PermissionDeniedError)
# On the jobs collection itself (create, list), a 404 means a wrong server URL, not a missing
# job: every other group would fail the same way, so the batch stops and keeps them pending.
_WRONG_SERVER = (*_FATAL, NotFoundError)
_NOT_CREATED = (RateLimitError, InternalServerError, APIConnectionError)


class BatchObserver:
    """Progress hooks of a batch; override the ones you need (they do nothing here).

    They are called on the event loop's thread (a `JobsClient`'s loop thread for `run_batch`
    with a client): keep them quick.
    """

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


class _GroupQueue:
    """The groups a run sends, in order: the manifest's ``new`` groups, read a page at a time
    (`Manifest.iter_groups_to_send`: a batch of a million files never has them all in
    memory), then those put back into `receive` to be sent again."""

    def __init__(self, m: Manifest, receive: MemoryObjectReceiveStream[GroupRow]) -> None:
        self.receive = receive
        self.pages: Iterator[GroupRow] | None = m.iter_groups_to_send()
        self.fresh: deque[GroupRow] = deque()

    async def __aenter__(self) -> _GroupQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.receive.aclose()

    def __aiter__(self) -> _GroupQueue:
        return self

    async def __anext__(self) -> GroupRow:
        if not self.fresh and self.pages is not None:
            pages = self.pages
            page = await anyio.to_thread.run_sync(
                lambda: list(itertools.islice(pages, _manifest.GROUP_PAGE))
            )
            self.fresh.extend(page)
            if not page:
                self.pages = None
        if self.fresh:
            return self.fresh.popleft()
        try:
            return await self.receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


def _now() -> datetime:
    return datetime.now(UTC)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class BatchRun:
    """One run of a batch over an open manifest."""

    def __init__(
        self,
        client: Any,
        manifest: Manifest,
        *,
        request_data: str,
        limits: GroupLimits,
        output_dir: str | None,
        launch_interval: float,
        max_concurrent_uploads: int,
        wait: bool,
        wait_options: dict[str, Any],
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
        self.interval = launch_interval
        self.uploads = anyio.Semaphore(max_concurrent_uploads)
        self.downloads = anyio.Semaphore(BATCH_MAX_CONCURRENT_DOWNLOADS)
        self.wait = wait
        self.wait_options = wait_options
        self.skew = clock_skew
        self.grace = reconcile_grace
        self.max_attempts = max_submit_attempts
        self.observer = observer
        self.attempts: dict[int, int] = {}
        # server time - local time, as last measured from a created job (see _list_jobs).
        self.created_offset: timedelta | None = None
        self.used_names: set[str] = set()
        self.next_launch = 0.0
        self.outstanding = 0
        self.send: MemoryObjectSendStream[GroupRow] | None = None
        self.tg: TaskGroup | None = None
        # Set, before the upload slot is freed, by an answer that ends the batch (401, 403, a
        # 404 on the jobs collection): no create starts after it, however fast it could start.
        self.stopping = False

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking manifest call in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

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
        send, receive = anyio.create_memory_object_stream[GroupRow](math.inf)
        with send, receive:  # closed however the run ends (never left to the GC)
            self.send, self.outstanding = send, to_send
            queue = _GroupQueue(m, receive)
            if not to_send:
                send.close()
            try:
                async with anyio.create_task_group() as tg:
                    self.tg = tg
                    for group in waiting:
                        tg.start_soon(self._wait_group, group)
                    await self._launch(queue)
            except Exception as exc:
                error = _unwrap(exc)
                raise error from error.__cause__

    async def _remove_stale_parts(self, outputs: set[str]) -> None:
        """Temporary files that downloads killed in an earlier run left beside our outputs."""
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
                await self.db(self.m.group_unsent, group.id, None)
            return False
        log.info("group %d: found job %s created before the answer was lost", group.id, job.id)
        await self.db(self.m.group_created, group.id, job.id, str(job.status))
        return True

    # -- sending -------------------------------------------------------------------------------

    async def _launch(self, receive: _GroupQueue) -> None:
        assert self.tg is not None
        async with receive:
            async for group in receive:
                # A free upload slot first, then the launch time: two slots freed together
                # must not launch two jobs in the same instant.
                await self.uploads.acquire()
                if self.stopping:
                    self.uploads.release()
                    return
                now = self.client.clock.now()
                start = max(now, self.next_launch)
                self.next_launch = start + self.interval
                if start > now:
                    await self.client.clock.sleep(start - now)
                self.tg.start_soon(self._submit, group)

    def _settled(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self.send is not None:
            self.send.close()

    def _notify(self, files: Sequence[FileRow], state: FileState) -> None:
        for f in files:
            self.observer.on_file(f.path, state)

    async def _requeue_or_settle(self, group: GroupRow, error: str) -> None:
        """Not created: send the group again now, or (attempts spent) leave it pending."""
        if self.attempts.get(group.id, 0) < self.max_attempts and self.send is not None:
            await self.db(self.m.group_unsent, group.id, error)
            self.send.send_nowait(group)
        else:
            await self.db(self.m.group_unsent, group.id, f"{error}; run again to send it")
            self._notify(group.files, FileState.PENDING)
            self._settled()

    async def _refused(self, group: GroupRow, error: str) -> None:
        """Refused for good (no job): the group's files failed."""
        await self.db(self.m.group_refused, group.id, error)
        self._notify(group.files, FileState.FAILED)
        self._settled()

    async def _submit(self, group: GroupRow) -> None:
        self.attempts[group.id] = self.attempts.get(group.id, 0) + 1
        sent = 0

        def progress(delta: int) -> None:
            nonlocal sent
            sent += delta
            self.observer.on_upload(delta)

        sent_at = _now().isoformat()
        try:
            # Outside the try below: a manifest that cannot be written stops the batch, it
            # never makes the group look refused.
            await self.db(self.m.group_sending, group.id, sent_at)
        except BaseException:
            self.uploads.release()
            raise
        if self.stopping:  # the batch ends: this group stays pending, unsent
            self.uploads.release()
            await self.db(self.m.group_unsent, group.id, None)
            return
        group = attrs.evolve(group, sent_at=sent_at)
        files = [InputFile(f.path, filename=f.upload_name) for f in group.files]
        try:
            try:
                job = await self.client.create_job(
                    request_data=self.request_data, input_files=files, on_upload_progress=progress
                )
            except _WRONG_SERVER:
                self.stopping = True
                raise
            finally:
                self.uploads.release()
            self.created_offset = job.created_at - _now()
        except (AmbiguousRequestError, ResponseValidationError) as exc:
            # The job may exist: never send again before looking for it.
            self.observer.on_upload(-sent)
            if not await self._reconcile(group, exc):
                return
        except _WRONG_SERVER as exc:
            await self.db(self.m.group_unsent, group.id, _short(exc))
            self._settled()
            raise
        except InputFileError as exc:
            self.observer.on_upload(-sent)
            await self._drop_unreadable(group, exc)
            return
        except _NOT_CREATED as exc:
            self.observer.on_upload(-sent)
            await self._requeue_or_settle(group, _short(exc))
            return
        except UnstructuredJobsError as exc:  # refused for good (400, 422, ...): no job
            self.observer.on_upload(-sent)
            await self._refused(group, _short(exc))
            return
        else:
            await self.db(self.m.group_created, group.id, job.id, str(job.status))
        self._settled()
        adopted = await self.db(self.m.submitted_group, group.id)
        if adopted is None or adopted.job_id is None:
            return
        self.observer.on_job_submitted(adopted.job_id, len(adopted.files))
        if self.wait:
            await self._wait_group(adopted)

    async def _leave_for_next_run(self, group: GroupRow, why: str) -> bool:
        """Keep the group ``submitting`` (never resent blindly); the next run reconciles it."""
        await self.db(self.m.group_error, group.id, why)
        self._notify(group.files, FileState.SUBMITTING)
        self._settled()
        return False

    async def _reconcile(self, group: GroupRow, exc: UnstructuredJobsError) -> bool:
        """After a lost answer: True when the job was found and recorded."""
        for look in range(2):
            try:
                jobs, offset = await self._list_jobs()
            except _WRONG_SERVER:
                self._settled()
                raise
            except UnstructuredJobsError as list_exc:
                why = (
                    f"answer lost ({_short(exc)}) and jobs could not be listed "
                    f"({_short(list_exc)}); run again to reconcile"
                )
                return await self._leave_for_next_run(group, why)
            if await self._adopt_or_release(group, jobs, offset, requeue=True):
                return True
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
        await self._requeue_or_settle(group, f"answer lost, no job was created ({_short(exc)})")
        return False

    async def _drop_unreadable(self, group: GroupRow, exc: InputFileError) -> None:
        reasons = dict(exc.problems)
        bad = [f for f in group.files if f.upload_name in reasons or f.path in reasons]
        errors = {f.id: reasons.get(f.upload_name) or reasons.get(f.path) or str(exc) for f in bad}
        if errors:
            await self.db(self.m.drop_from_group, errors)
            self._notify(bad, FileState.FAILED)
        rest = tuple(f for f in group.files if f not in bad)
        if not rest or not bad:
            await self._refused(attrs.evolve(group, files=rest), _short(exc))
            return
        await self._requeue_or_settle(attrs.evolve(group, files=rest), _short(exc))

    # -- waiting and downloading ---------------------------------------------------------------

    async def _wait_group(self, group: GroupRow) -> None:
        job_id = group.job_id
        assert job_id is not None
        try:
            job = await self.client.wait_for_job(job_id, **self.wait_options)
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
