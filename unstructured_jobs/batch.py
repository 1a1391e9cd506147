"""The batch engine: many files -> jobs of a few files each, resumable and exactly-once.

>>> async with AsyncJobsClient() as client:                       # doctest: +SKIP
...     report = await submit_batch(
...         client, ["docs/", "more/*.pdf"], template_id="...",
...         output_dir="out", manifest="out/batch.sqlite")
...     for f in report.files:
...         print(f.path, f.state, f.job_id, f.output_path or f.error)

Synchronous code calls `run_batch` (same arguments, plus an optional `JobsClient`).

How it works: inputs are expanded (folders recursively, globs), recorded in a SQLite manifest
(see `unstructured_jobs._batch.manifest`) and grouped into jobs by file count and bytes. Files over
`max_file_bytes` are refused before anything is sent. Each group is marked ``submitting`` in
the manifest *before* its create-job request leaves; when the answer is lost (`JobMayExistError`)
or the process died meanwhile, the engine lists the jobs and adopts the one whose
`input_file_ids` equal the group's names as the server stores them (control characters
percent-encoded, bytes that are not UTF-8 as U+FFFD), created at or after the recorded send
time, before it would ever send the group again. The send time is read on the server's clock:
the listing's ``Date`` header tells how far our clock is from the server's, so a local clock
hours ahead or behind still finds the job; `clock_skew` is an extra tolerance on top. Each file
gets a name unique within the batch (``report (2).pdf`` for a second ``report.pdf``), so that
match is unambiguous. Running the same batch again skips finished files and resumes waiting on
submitted jobs.

A file reached by several paths (symbolic links) is sent once, and a ``**`` glob enters each
folder once, so a link to an ancestor folder cannot repeat files. When the disk fills up (the
manifest's or the outputs'), the batch stops with one `LocalFileError` that names the file
system and says to run again; a damaged manifest is an `InvalidInputError` naming it.
Temporary ``.part`` files that a killed run left beside its outputs are removed by the next.
When a job is gone from the server (404) while the batch waits for it, its files already done
stay done; the others fail, and ``retry_failed`` sends only those again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import anyio
import anyio.to_thread
import attrs

from ._batch.engine import BatchObserver, BatchRun
from ._batch.grouping import GroupLimits
from ._batch.manifest import (
    DISK_FULL_ERRNOS,
    FileState,
    GroupState,
    Manifest,
    display_path,
    write_error,
)
from ._batch.options import FROM_LIMITS, _FromLimits, options_of
from ._batch.paths import output_path_inside, path_filter, safe_output_name
from ._batch.plan import BatchPlan, PlannedAction, PlannedFile, make_plan, record_walk
from ._batch.walk import Walk
from ._constants import (
    BATCH_CLOCK_SKEW,
    BATCH_MANIFEST_NAME,
    BATCH_MAX_CONCURRENT_UPLOADS,
    BATCH_MAX_SUBMIT_ATTEMPTS,
    BATCH_RECONCILE_GRACE,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from ._exceptions import InvalidInputError, UnsafePathError
from ._files.inputs import request_data_json
from ._options import ServiceLimits

if TYPE_CHECKING:
    from ._client import AsyncJobsClient
    from ._sync.client import JobsClient

__all__ = [
    "FROM_LIMITS",
    "BatchObserver",
    "BatchOptions",
    "BatchPlan",
    "BatchReport",
    "FileResult",
    "FileState",
    "GroupState",
    "PlannedAction",
    "PlannedFile",
    "UnsafePathError",
    "output_path_inside",
    "plan_batch",
    "run_batch",
    "safe_output_name",
    "submit_batch",
]


@attrs.frozen
class FileResult:
    """The outcome of one input file.

    `state` is a `FileState`: ``done``, ``failed``, ``submitted`` (its job has not finished yet,
    or its output could not be downloaded: run the batch again), ``submitting`` (unknown whether
    its job exists: run again to reconcile) or ``pending`` (not sent yet: run again). A
    `FileState` is a string, so ``result.state == "done"`` works too.
    """

    path: str
    state: FileState = attrs.field(converter=FileState)
    job_id: str | None = None
    job_status: str | None = None
    output_path: str | None = None
    error: str | None = None
    upload_name: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file was processed (and downloaded, when asked)."""
        return self.state == FileState.DONE


@attrs.frozen
class BatchReport:
    """Every file of the batch (the whole manifest, plus inputs that matched nothing).

    `refusals` counts the launches the service refused by its rate limit (429) in this run,
    and `paced_seconds` the seconds they held the launches back: pacing, not errors (each
    refused launch was sent again in its turn).
    """

    files: tuple[FileResult, ...]
    manifest: str | None = None
    refusals: int = 0
    """Launches the service refused (429) in this run; each was sent again after waiting."""
    paced_seconds: float = 0.0
    """Seconds this run waited because of those refusals."""

    @property
    def ok(self) -> bool:
        """True when every file is done."""
        return all(f.ok for f in self.files)

    @property
    def job_ids(self) -> list[str]:
        """The distinct job ids, in file order."""
        return list(dict.fromkeys(f.job_id for f in self.files if f.job_id))

    def counts(self) -> dict[str, int]:
        """Number of files per state (the keys are `FileState`s, which are strings)."""
        out: dict[str, int] = {}
        for f in self.files:
            out[f.state] = out.get(f.state, 0) + 1
        return out

    def next_steps(self) -> list[str]:
        """What to do about the files that are not done (empty when all are)."""
        counts = self.counts()
        steps = []
        causes = [_failure_cause(f.error) for f in self.files if f.state == FileState.FAILED]
        if over := causes.count("over_limit"):
            steps.append(
                f"{over} file(s) are over the size limit and were not sent: if your server "
                "accepts larger files, raise max_file_bytes (command line: --max-file-size) "
                "and run the same batch again"
            )
        if too_large := causes.count("too_large"):
            steps.append(
                f"{too_large} file(s) are too large for the server (413): sending them again "
                "will not help; make them smaller, and set max_file_bytes (command line: "
                "--max-file-size) to the server's limit so that such files are refused before "
                "sending"
            )
        if failed := causes.count("other"):
            steps.append(
                f"{failed} file(s) failed: fix the cause shown for each, then run the same batch "
                "again with retry_failed=True (command line: --retry-failed) to send them again"
            )
        unsettled = (FileState.PENDING, FileState.SUBMITTING, FileState.SUBMITTED)
        if unfinished := sum(counts.get(s, 0) for s in unsettled):
            steps.append(
                f"{unfinished} file(s) are not finished: run the same batch again (same "
                "manifest) to send, reconcile or wait for them; nothing is sent twice"
            )
        return steps


def _failure_cause(error: str | None) -> str:
    """Why a file failed, for the advice: over our size limit, too large for the server, other."""
    text = error or ""
    if text.startswith("file is ") and "bytes per file" in text:
        return "over_limit"
    if "as too large (413)" in text or "too large (413" in text:
        return "too_large"
    return "other"


@attrs.frozen
class _Setup:
    """The checked arguments of a batch, shared by `submit_batch` and `plan_batch`."""

    inputs: list[str | os.PathLike[str]]
    request_data: str
    output_dir: str | None
    manifest: str | os.PathLike[str] | None
    keep: Callable[[str], bool] | None
    """The include/exclude filter; None when no pattern is given."""

    @classmethod
    def check(
        cls,
        inputs: Iterable[str | os.PathLike[str]],
        template_id: str | None,
        job_nodes: list[dict[str, Any]] | None,
        output_dir: str | os.PathLike[str] | None,
        manifest: str | os.PathLike[str] | None,
        files_per_job: int,
        include: Sequence[str],
        exclude: Sequence[str],
    ) -> _Setup:
        if isinstance(inputs, (str, bytes, os.PathLike)):
            raise InvalidInputError(
                "inputs must be a list of files, folders or globs, not one path"
            )
        if files_per_job < 1:
            raise InvalidInputError("files_per_job must be >= 1")
        for patterns in (include, exclude):
            if isinstance(patterns, str) or not all(isinstance(p, str) and p for p in patterns):
                raise InvalidInputError("include and exclude must be lists of glob patterns")
        try:
            request_data = request_data_json(
                template_id=template_id, job_nodes=job_nodes, request_data=None
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        out = None if output_dir is None else os.path.abspath(output_dir)
        if manifest is None and out is not None:
            manifest = os.path.join(out, BATCH_MANIFEST_NAME)
        keep = path_filter(include, exclude) if include or exclude else None
        return cls(list(inputs), request_data, out, manifest, keep)

    def walk(self, *, include_hidden: bool) -> Walk:
        """The input files, as a stream for `Manifest.add_files` (see `Walk`)."""
        # The manifest's SQLite side files and lock must never be taken as inputs either.
        skip = [self.output_dir] if self.output_dir is not None else []
        if self.manifest is not None:
            base = os.fspath(self.manifest)
            skip += [base] + [base + s for s in ("-wal", "-shm", "-journal", ".lock")]
        return Walk(self.inputs, exclude=skip, include_hidden=include_hidden, keep=self.keep)


async def submit_batch(
    client: AsyncJobsClient,
    inputs: Iterable[str | os.PathLike[str]],
    *,
    template_id: str | None = None,
    job_nodes: list[dict[str, Any]] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    files_per_job: int | _FromLimits = FROM_LIMITS,
    max_file_bytes: int | _FromLimits | None = FROM_LIMITS,
    max_job_bytes: int | None = None,
    launch_rate: float | _FromLimits | None = FROM_LIMITS,
    max_concurrent_uploads: int = BATCH_MAX_CONCURRENT_UPLOADS,
    wait: bool = True,
    wait_timeout: float | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    clock_skew: float = BATCH_CLOCK_SKEW,
    reconcile_grace: float = BATCH_RECONCILE_GRACE,
    max_submit_attempts: int = BATCH_MAX_SUBMIT_ATTEMPTS,
    retry_failed: bool = False,
    include_hidden: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    observer: BatchObserver | None = None,
    progress: bool = False,
) -> BatchReport:
    """Send files as jobs, wait for them and download their outputs; return a `BatchReport`.

    Args:
        client: an `AsyncJobsClient`.
        inputs: files, folders (recursive; hidden entries skipped unless `include_hidden`) and
            glob patterns (``**`` allowed).
        template_id, job_nodes: what every job runs (one of them, or both: the server decides).
        output_dir: where to download each file's output (``<file id>.json``); None: no
            download (files are ``done`` when their job completes).
        manifest: the SQLite manifest path; reuse it to resume. None: ``output_dir/
            .unstructured-jobs.sqlite`` when `output_dir` is given, else a temporary file
            deleted at the end (not resumable).
        files_per_job, max_job_bytes: group size limits (default: the client's
            ``limits.files_per_job``, 10; no byte limit). Given here, `files_per_job`,
            `max_file_bytes` and `launch_rate` override the client's limits for this batch.
        max_file_bytes: larger files are reported failed and never sent (default: the
            client's ``limits.bytes_per_file``, 50 MB; None: no limit). A file the server
            refuses as too large (413) fails alone, its group-mates are sent, and files at
            least as large are not sent again in the run.
        launch_rate: job launches per second at most (default: one per the client's
            ``limits.launch_interval``, 1 s; None or 0: unpaced, as the CLI's ``--launch-rate 0``).
            Every job-creating request, a retry included, takes a launch slot, a little over the
            interval after the previous one's body was sent; a 429 holds every launch for its
            ``Retry-After`` and widens the margin (`BatchObserver.on_paced`,
            `BatchReport.refusals`). The client's ``limits.running_jobs`` (5) bounds the jobs
            created and not finished to twice as many, when waiting.
        max_concurrent_uploads: create-job requests in flight at once.
        wait: wait for the jobs (False: submit, record and return; run again to wait).
        wait_timeout: seconds to wait for each job; a job still running after it leaves its
            files ``submitted``.
        poll_interval: seconds between two looks at the batch's jobs (default 1). A look is
            two listings (the account's SCHEDULED and IN_PROGRESS jobs), whatever the number
            of jobs, plus one `get_job` per job that has ended: a finished job is noticed
            within `poll_interval` and a round trip (half of it once nothing is left to send).
        max_poll_interval: not used by batches (kept for compatibility).
        clock_skew: seconds of tolerance when matching a possibly created job to a group,
            on top of the difference between our clock and the server's, which is measured
            (from the ``Date`` header of the job listing). It covers a server whose ``Date``
            and ``created_at`` come from clocks that disagree (a proxy adding ``Date``).
        reconcile_grace: seconds to wait before listing jobs a second time when a lost answer's
            job is not found at once (0: list once).
        max_submit_attempts: sends of one group per run after errors that prove no job was
            created (503, a refused connection; default 5), with a backoff between them. The
            client's own retries are not used for job-creating requests: each send takes a
            launch slot. 429s do not count: the group takes its turn again after the wait.
        retry_failed: send again the files whose job failed in an earlier run.
        include_hidden: also take the hidden files and folders (names starting with a dot)
            found in the folders given (a hidden file named in `inputs` is always taken).
        include, exclude: glob patterns (`unstructured_jobs._batch.paths.path_filter`): a file
            found in `inputs` is added when it matches an `include` pattern (if any is given)
            and no `exclude` pattern. ``*.pdf`` matches names, ``drafts/**`` the end of paths.
            Files already in the manifest that the patterns leave out are taken out of the
            batch, unless a job holds them.
        observer: a `BatchObserver` told about progress (upload bytes, jobs, files).
        progress: show bars (bytes uploaded, jobs finished) with ``tqdm.auto``: a widget in
            Jupyter, a bar on stderr elsewhere. Off by default; not with `observer`.

    Raises `InvalidInputError` for bad arguments, a manifest of another batch, a damaged one
    (``the manifest ... is damaged``) or one in use by another batch process (``... is in use
    by another batch process``), `LocalFileError` when the manifest or an output cannot be
    written (a full disk: ``the file system at /mnt/x is full``; run again once fixed), and
    `AuthenticationError`/`PermissionDeniedError`, `QuotaExceededError` (402: the account's
    quota is spent), or `NotFoundError` when the jobs endpoint itself is missing (a wrong
    server URL): the batch stops, unsent files stay pending; run again once fixed (each is
    then sent exactly once).
    Every other per-job error is recorded on the files, not raised.
    """
    if progress and observer is not None:
        raise InvalidInputError("pass progress=True or an observer, not both")
    bars = None
    if progress:  # the command line's bars, through tqdm.auto
        from ._bars import BatchProgress, Mode

        observer = bars = BatchProgress(Mode.AUTO)
    service = client.limits
    if launch_rate is FROM_LIMITS:
        launch_interval = service.launch_interval
    elif launch_rate is not None and not launch_rate >= 0:
        raise InvalidInputError("launch_rate must be >= 0 (0 or None: no limit)")
    else:
        launch_interval = 1.0 / launch_rate if launch_rate else None
    if files_per_job is FROM_LIMITS:
        files_per_job = service.files_per_job or _NO_LIMIT
    if max_file_bytes is FROM_LIMITS:
        max_file_bytes = service.bytes_per_file
    if max_concurrent_uploads < 1 or max_submit_attempts < 1:
        raise InvalidInputError("max_concurrent_uploads and max_submit_attempts must be >= 1")
    setup = _Setup.check(
        inputs, template_id, job_nodes, output_dir, manifest, files_per_job, include, exclude
    )
    request_data, out, manifest = setup.request_data, setup.output_dir, setup.manifest
    # The batch's own options win over the client's limits (e.g. --max-file-size 100MB for a
    # server known to take it): its jobs are checked against them.
    client = client._with_limits(
        attrs.evolve(
            service,
            files_per_job=None if files_per_job >= _NO_LIMIT else files_per_job,
            bytes_per_file=max_file_bytes,
        )
    )
    if out is not None:
        try:
            await anyio.to_thread.run_sync(lambda: os.makedirs(out, exist_ok=True))
        except OSError as exc:
            raise write_error(
                Path(out),
                f"cannot create the output folder {display_path(out)}",
                exc.strerror or str(exc),
                full=exc.errno in DISK_FULL_ERRNOS,
            ) from exc
    store = await anyio.to_thread.run_sync(Manifest, manifest)
    try:
        await anyio.to_thread.run_sync(store.check_request_data, request_data)
        if setup.keep is not None:  # include/exclude also take out files the manifest holds
            await anyio.to_thread.run_sync(store.take_out, setup.keep)
        walk = setup.walk(include_hidden=include_hidden)
        await anyio.to_thread.run_sync(lambda: store.add_files(walk))
        problems = walk.problems
        run = BatchRun(
            client,
            store,
            request_data=request_data,
            limits=GroupLimits(files_per_job, max_file_bytes, max_job_bytes),
            output_dir=out,
            launch_interval=launch_interval,
            running_jobs=service.running_jobs,
            max_concurrent_uploads=max_concurrent_uploads,
            wait=wait,
            wait_timeout=wait_timeout,
            poll_interval=poll_interval,
            clock_skew=timedelta(seconds=clock_skew),
            reconcile_grace=reconcile_grace,
            max_submit_attempts=max_submit_attempts,
            observer=observer or BatchObserver(),
        )
        await run.run(retry_failed=retry_failed)
        rows = await anyio.to_thread.run_sync(store.all_files)
    finally:
        await anyio.to_thread.run_sync(store.close)
        if bars is not None:
            bars.close()
    results = [
        FileResult(
            path=r.path,
            state=r.state,
            job_id=r.job_id,
            job_status=r.job_status,
            output_path=r.output_path,
            error=r.error,
            upload_name=r.upload_name,
        )
        for r in sorted(rows, key=lambda r: r.path)
    ]
    results += [FileResult(path=p, state=FileState.FAILED, error=why) for p, why in problems]
    shown = None if manifest is None else os.fspath(manifest)
    pacer = run.pacer
    return BatchReport(tuple(results), shown, pacer.refusals, pacer.paced_seconds)


_NO_LIMIT = 2**31  # files per job when the limit is lifted


def plan_batch(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    template_id: str | None = None,
    job_nodes: list[dict[str, Any]] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    files_per_job: int | _FromLimits = FROM_LIMITS,
    max_file_bytes: int | _FromLimits | None = FROM_LIMITS,
    max_job_bytes: int | None = None,
    wait: bool = True,
    retry_failed: bool = False,
    include_hidden: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    limits: ServiceLimits | None = None,
) -> BatchPlan:
    """What `submit_batch` would send, wait for and skip with these arguments: a dry run.

    Nothing is sent (no client is needed) and nothing is written: the inputs are expanded and
    grouped exactly as `submit_batch` does, on a temporary copy of the manifest when one
    exists (files done in an earlier run are skipped, jobs already sent are waited for), so
    the plan is the one a real run would follow, as far as it can be known without asking the
    server. Raises `InvalidInputError` as `submit_batch` would (bad arguments, a manifest of
    another batch). Blocking: from async code, run it in a worker thread.

    At any size: the walk streams into the copy (a temporary file, deleted when the plan is
    collected or its ``files.close()`` is called), the counts, `BatchPlan.jobs` and
    `BatchPlan.upload_bytes` come from SQL, and `BatchPlan.files` is read a page at a time
    as it is iterated; a million files are planned in bounded memory.

    `files_per_job` and `max_file_bytes` default, as in `submit_batch`, to the limits: here
    `limits` (the `ServiceLimits` of the client the batch will use), else `ServiceLimits()`'s
    published values (10 files per job, 50 MB per file).
    """
    service = ServiceLimits() if limits is None else limits
    if files_per_job is FROM_LIMITS:
        files_per_job = service.files_per_job or _NO_LIMIT
    if max_file_bytes is FROM_LIMITS:
        max_file_bytes = service.bytes_per_file
    setup = _Setup.check(
        inputs, template_id, job_nodes, output_dir, manifest, files_per_job, include, exclude
    )
    path = setup.manifest
    exists = path is not None and os.path.exists(path)
    store = Manifest.copy_of(path) if exists and path is not None else Manifest(None)
    try:
        store.check_request_data(setup.request_data)
        walk = setup.walk(include_hidden=include_hidden)
        record_walk(store, walk)
        return make_plan(
            store,
            GroupLimits(files_per_job, max_file_bytes, max_job_bytes),
            wait=wait,
            retry_failed=retry_failed,
            problems=walk.problems,
            excluded=walk.excluded,
            manifest=None if path is None else os.fspath(path),
        )  # the plan keeps the store (its files are read from it) and closes it
    except BaseException:
        store.close()
        raise


class BatchOptions(TypedDict, total=False):
    """The keyword options of `submit_batch` and `run_batch`, as a dict's type (see
    `submit_batch` for each): ``run_batch(inputs, **options)`` with ``options: BatchOptions``."""

    template_id: str | None
    job_nodes: list[dict[str, Any]] | None
    output_dir: str | os.PathLike[str] | None
    manifest: str | os.PathLike[str] | None
    files_per_job: int | _FromLimits
    max_file_bytes: int | _FromLimits | None
    max_job_bytes: int | None
    launch_rate: float | _FromLimits | None
    max_concurrent_uploads: int
    wait: bool
    wait_timeout: float | None
    poll_interval: float
    max_poll_interval: float
    clock_skew: float
    reconcile_grace: float
    max_submit_attempts: int
    retry_failed: bool
    include_hidden: bool
    include: Sequence[str]
    exclude: Sequence[str]
    observer: BatchObserver | None
    progress: bool


def run_batch(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    client: JobsClient | None = None,
    api_key: str | None = None,
    server_url: str | None = None,
    template_id: str | None = None,
    job_nodes: list[dict[str, Any]] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    files_per_job: int | _FromLimits = FROM_LIMITS,
    max_file_bytes: int | _FromLimits | None = FROM_LIMITS,
    max_job_bytes: int | None = None,
    launch_rate: float | _FromLimits | None = FROM_LIMITS,
    max_concurrent_uploads: int = BATCH_MAX_CONCURRENT_UPLOADS,
    wait: bool = True,
    wait_timeout: float | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    clock_skew: float = BATCH_CLOCK_SKEW,
    reconcile_grace: float = BATCH_RECONCILE_GRACE,
    max_submit_attempts: int = BATCH_MAX_SUBMIT_ATTEMPTS,
    retry_failed: bool = False,
    include_hidden: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    observer: BatchObserver | None = None,
    progress: bool = False,
) -> BatchReport:
    """`submit_batch` for synchronous code (a script, a notebook cell, a sync web handler).

    Takes the same options as `submit_batch` (see it for each). With a `JobsClient` as
    `client`, the batch runs in that client's event loop; otherwise a temporary `JobsClient`
    is made from `api_key`/`server_url` (or the environment) and closed at the end. Either way
    the call blocks, and works from a thread that runs an event loop of its own (a notebook
    cell) too; Ctrl-C cancels the batch (run it again to resume).
    `observer` callbacks run in the thread that runs the client's loop (usually the caller's).
    """
    from ._sync.client import JobsClient

    options = options_of(locals())  # every declared option, as given (see _batch_options)
    if client is not None:
        return client.call_async(submit_batch, inputs, **options)
    from ._secret import Secret

    secret = cast("str | None", Secret.of(api_key))  # out of this frame's locals (see _secret)
    del api_key
    with JobsClient(api_key=secret, server_url=server_url) as temporary:
        return temporary.call_async(submit_batch, inputs, **options)
