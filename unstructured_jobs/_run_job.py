"""`run_job`: from files to their elements in one call, made of the client's own calls.

``create_job`` -> ``wait_for_job`` -> ``get_job_failed_files`` -> ``download_job_output`` (or
``download_job_output_to`` with `output_dir`) for each input file: no second code path, so the
retries, validation and errors are those of each call. Its result is a `JobRun`.

An output larger than `spill_bytes` is never held in memory: the download (the request of
``download_job_output``, with its retries and errors) is streamed to a temporary file (a private
folder per `JobRun`) and parsed only when the user reads ``f.elements``; the folder is removed
by `JobRun.close` or once neither the run nor any of its `FileOutput`s is referenced any more. A
run pickled to another process carries the paths, not the files: save them first (`to_dir`).
"""

from __future__ import annotations

import html
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs

from ._constants import LOGGER_NAME
from ._exceptions import InvalidInputError, LocalFileError, UnstructuredJobsError
from ._files.elements import iter_elements
from ._files.inputs import InputFileLike
from ._files.multipart import ProgressCallback
from ._models import JobInformation, JobStatus
from .paths import output_path_inside, safe_output_name

if TYPE_CHECKING:
    from ._client import AsyncJobsClient, FilesCallback, PollCallback

__all__ = ["DEFAULT_SPILL_BYTES", "DOWNLOADS_AT_ONCE", "FileOutput", "JobRun", "run_job"]

log = logging.getLogger(LOGGER_NAME)
DOWNLOADS_AT_ONCE = 4
"""Outputs of one job downloaded at the same time."""
DEFAULT_SPILL_BYTES = 16 * 1024 * 1024
"""`run_job` keeps an output of at most this many bytes in memory (parsed, 2-3x more); a larger
one goes to a temporary file, read on demand. With `DOWNLOADS_AT_ONCE` downloads, a run holds at
most about 4 x 16 MiB of JSON and its parsed copies, whatever the outputs' sizes."""


class _SpillFolder:
    """The temporary folder (0700) of one run's spilled outputs, made on first use.

    Removed by `remove`, or when this object is collected: each spilled `FileOutput` and the
    `JobRun` refer to it, so it lives as long as any of them.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def file(self, name: str) -> Path:
        """The path `name` inside the folder, creating the folder if needed (blocking)."""
        with self._lock:
            if self.path is None:
                self.path = Path(tempfile.mkdtemp(prefix="unstructured-jobs-"))
                self._finalizer = weakref.finalize(
                    self, shutil.rmtree, str(self.path), ignore_errors=True
                )
            return self.path / name

    def remove(self) -> None:
        """Remove the folder and the outputs in it (blocking)."""
        if self._finalizer is not None:
            self._finalizer()

    def __reduce__(self) -> tuple[type[_SpillFolder], tuple[()]]:
        # A copy sent to another process (pickle) owns nothing: the folder stays this one's.
        return _SpillFolder, ()


def _spilled_away(file_id: str) -> InvalidInputError:
    return InvalidInputError(
        f"{file_id}: its output was in a temporary file, removed when the JobRun was closed; "
        "pass output_dir= to run_job, or save it with to_dir() before closing"
    )


@attrs.frozen(repr=False)
class FileOutput:
    """What became of one input file of a `run_job`: its output, or why it has none."""

    file_id: str
    """The file's id in the job (its name as uploaded, from ``job.input_file_ids``)."""
    _elements: Any = attrs.field(default=None, alias="elements")
    path: Path | None = None
    """Where the output was written (``output_dir=``), else None."""
    error: str | None = None
    """Why there is no output: the server's error for this file (``/failed-files``), the
    status the job ended in, or the download's error. None when it succeeded."""
    exception: UnstructuredJobsError | None = attrs.field(default=None, eq=False, repr=False)
    """The download's error itself, when that is what failed."""
    spilled: Path | None = attrs.field(default=None, kw_only=True)
    """The temporary file holding an output larger than run_job's `spill_bytes`, which
    `elements` reads on first use; None for an output kept in memory or saved to `path`. It is
    removed by `JobRun.close` (or once the run and its files are no longer referenced)."""
    _spill: _SpillFolder | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False, alias="spill"
    )

    @property
    def elements(self) -> Any:
        """The output parsed from JSON (usually a list of element dicts); None when it failed,
        or when it was streamed to `path` instead (``run_job(output_dir=...)``).

        An output run_job spilled to disk (`spilled`) is parsed from its file on first use
        (blocking) and kept; `iter_elements` goes through it without loading it whole.
        """
        if self._elements is None and self.spilled is not None:
            if not self.spilled.exists():
                raise _spilled_away(self.file_id)
            with open(self.spilled, "rb") as fh:
                object.__setattr__(self, "_elements", json.load(fh))
        return self._elements

    @property
    def ok(self) -> bool:
        """True when the file has an output."""
        return self.error is None

    @property
    def outcome(self) -> str:
        """``"failed"``, ``"saved"`` (in `path`), ``"spilled"`` (in a temporary file, read on
        demand) or ``"in memory"``."""
        if self.error is not None:
            return "failed"
        if self.path is not None:
            return "saved"
        if self.spilled is not None and self._elements is None:
            return "spilled"
        return "in memory"

    def _summary(self) -> str:
        """What the output is, in a few words, without reading a file."""
        if self.error is not None:
            return self.error
        if self.path is not None:
            return str(self.path)
        if self.spilled is not None and self._elements is None:
            return f"in {self.spilled}, read on first use"
        data = self._elements
        return f"{len(data)} elements" if isinstance(data, list) else type(data).__name__

    def __repr__(self) -> str:
        # Never the elements: a list of thousands of dicts is no way to show one file.
        if self.error is not None:
            what = f"error={self.error!r}"
        elif self.path is not None:
            what = f"path={str(self.path)!r}"
        elif self.spilled is not None and self._elements is None:
            what = f"spilled={str(self.spilled)!r}"
        elif isinstance(self._elements, list):
            what = f"elements={len(self._elements)}"
        else:
            what = f"elements=<{type(self._elements).__name__}>"
        return f"FileOutput({self.file_id!r}, {what})"

    def read_elements(self) -> Any:
        """The output: `elements`, or the JSON read back from `path` (blocking)."""
        if self.error is not None:
            raise InvalidInputError(f"{self.file_id} has no output: {self.error}")
        if self.path is not None and self._elements is None:
            with open(self.path, "rb") as fh:
                return json.load(fh)
        return self.elements

    def iter_elements(self) -> Iterator[Any]:
        """Each element of the output, one at a time: from memory, or parsed incrementally
        from `path` or `spilled` without loading the file whole (see `iter_elements`).
        Blocking when it reads a file. `InvalidInputError` when the file has no output, or
        its output is not a JSON list."""
        if self.error is not None:
            raise InvalidInputError(f"{self.file_id} has no output: {self.error}")
        if self._elements is not None:
            if not isinstance(self._elements, list):
                raise InvalidInputError(f"{self.file_id}: the output is not a JSON list")
            return iter(self._elements)
        source = self.path if self.path is not None else self.spilled
        if source is None:
            return iter(())
        if self.path is None and not source.exists():
            raise _spilled_away(self.file_id)
        return iter_elements(source)


@attrs.frozen(repr=False)
class JobRun:
    """The result of `run_job`: the final job, and each input file's output or failure."""

    job: JobInformation
    """The job as last read: COMPLETED, FAILED or STOPPED."""
    files: tuple[FileOutput, ...]
    """One entry per input file, in the job's ``input_file_ids`` order."""
    _spill: _SpillFolder | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False, alias="spill"
    )

    def close(self) -> None:
        """Remove the temporary files of spilled outputs (`FileOutput.spilled`); blocking.

        Without it they are removed once the run and its files are no longer referenced, or
        at exit. ``with await client.run_job(...) as run:`` closes it at the block's end.
        Elements already read stay readable; outputs in `output_dir` are never touched.
        """
        if self._spill is not None:
            self._spill.remove()

    def __enter__(self) -> JobRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ok(self) -> bool:
        """True when the job COMPLETED and every file has an output."""
        return self.job.status == JobStatus.COMPLETED and all(f.ok for f in self.files)

    @property
    def failed(self) -> tuple[FileOutput, ...]:
        """The files without an output, each with its `error`."""
        return tuple(f for f in self.files if not f.ok)

    def outcomes(self) -> dict[str, int]:
        """How many files had each `FileOutput.outcome` (``{"in memory": 8, "failed": 2}``)."""
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.outcome] = counts.get(f.outcome, 0) + 1
        return counts

    def __repr__(self) -> str:
        # The job and a count per outcome, never the elements (print run.files for each file).
        counts = ", ".join(f"{n} {outcome}" for outcome, n in self.outcomes().items())
        job = self.job
        return (
            f"JobRun(job={job.id!r}, status={job.status.value}, "
            f"files={len(self.files)}{': ' + counts if counts else ''})"
        )

    def _repr_html_(self) -> str:
        """A table for Jupyter: one row per file with its outcome, and its elements count (or
        where its output is, or its error). Everything the server said is escaped."""
        rows = "".join(
            f"<tr><td>{html.escape(f.file_id)}</td><td>{html.escape(f.outcome)}</td>"
            f"<td>{html.escape(f._summary())}</td></tr>"
            for f in self.files
        )
        caption = html.escape(repr(self))
        return (
            f"<table><caption>{caption}</caption>"
            "<thead><tr><th>file</th><th>outcome</th><th>elements / error</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )

    def to_dir(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write each output to `folder` as ``<file id>.json`` and return the paths.

        Names are made safe (`safe_output_name`: a server's name never leaves the folder), and
        two files with one name get ``name (2).json``. Existing files of those names are
        replaced, each only once complete. Blocking: from async code, pass ``output_dir=`` to
        `run_job` instead (it streams), or run this in a thread. Failed files are skipped.
        """
        base = _check_folder(folder)
        base.mkdir(parents=True, exist_ok=True)
        names = output_names([f.file_id for f in self.files if f.ok])
        written = []
        for f, name in zip([f for f in self.files if f.ok], names, strict=True):
            target = output_path_inside(base, name)
            source = f.path if f.path is not None else f.spilled
            if f._elements is None and source is not None:
                if f.path is None and not source.exists():
                    raise _spilled_away(f.file_id)
                if Path(source).resolve() != target.resolve():
                    _replace(target, lambda tmp, src=source: shutil.copyfile(src, tmp))
            else:
                data = f.elements
                _replace(target, lambda tmp, data=data: Path(tmp).write_text(json.dumps(data)))
            written.append(target)
        return written


def _check_folder(folder: object) -> Path:
    if not isinstance(folder, (str, os.PathLike)) or not os.fspath(folder):
        raise InvalidInputError(f"the output folder must be a path, got {folder!r:.60}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"the output folder {str(path)!r} exists and is not a folder")
    return path


def output_names(file_ids: Sequence[str]) -> list[str]:
    """One output file name per file id (``<safe name>.json``), all distinct: ids that map to
    the same safe name (``a/b.pdf`` and ``a_b.pdf``) get ``a_b.pdf (2).json``."""
    from ._batch.manifest import unique_name  # the batch's own rule; sqlite3 only when used

    taken: set[str] = set()
    names = []
    for file_id in file_ids:
        name = unique_name(safe_output_name(file_id) + ".json", taken)
        taken.add(name)
        names.append(name)
    return names


def _replace(target: Path, write: Any) -> None:
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LocalFileError(f"cannot write {target}: {exc.strerror or exc}", path=target) from exc


async def run_job(
    client: AsyncJobsClient,
    *,
    template_id: str | None,
    job_nodes: Sequence[dict[str, Any]] | None,
    request_data: dict[str, Any] | str | None,
    input_files: Iterable[InputFileLike],
    on_upload_progress: ProgressCallback | None,
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    on_poll: PollCallback | None,
    output_dir: str | os.PathLike[str] | None,
    spill_bytes: int = DEFAULT_SPILL_BYTES,
    job_id: str | None = None,
    progress: bool = False,
    on_files: FilesCallback | None = None,
) -> JobRun:
    """See `AsyncJobsClient.run_job`."""
    if isinstance(spill_bytes, bool) or not isinstance(spill_bytes, int) or spill_bytes < 0:
        raise InvalidInputError(f"spill_bytes must be an int >= 0, got {spill_bytes!r:.40}")
    if job_id is not None and (
        template_id is not None
        or job_nodes is not None
        or request_data is not None
        or not isinstance(input_files, Sized)
        or len(input_files)
    ):
        raise InvalidInputError(
            "job_id= resumes a job that exists: pass no template_id, job_nodes, request_data "
            "or input_files with it"
        )
    base = None
    if output_dir is not None:
        base = _check_folder(output_dir)
        try:  # before the upload: a folder we cannot make must not cost a job
            await anyio.to_thread.run_sync(lambda: base.mkdir(parents=True, exist_ok=True))
        except OSError as exc:
            raise LocalFileError(f"cannot create {base}: {exc.strerror or exc}", path=base) from exc
    if job_id is None:
        created = await client.create_job(
            template_id=template_id,
            job_nodes=job_nodes,
            request_data=request_data,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
        )
        job_id = created.id
    try:
        job = await client.wait_for_job(
            job_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_poll=on_poll,
            progress=progress,
            on_files=on_files,
        )
        return await _outputs(client, job, base, spill_bytes, progress)
    except BaseException as exc:  # an error, a cancel, Ctrl-C: each says which job exists
        exc.add_note(job_exists_note(job_id))
        raise


def job_exists_note(job_id: str) -> str:
    """The note an error or interrupt after the job was created carries (see `run_job`)."""
    return (
        f"job {job_id} exists on the server and goes on (it was not cancelled); running "
        f"this again would create a second job. Resume with run_job(job_id={job_id!r}), "
        f"or wait for it with wait_for_job({job_id!r})"
    )


async def _outputs(
    client: AsyncJobsClient,
    job: JobInformation,
    base: Path | None,
    spill_bytes: int,
    progress: bool = False,
) -> JobRun:
    file_ids = list(job.input_file_ids or ())
    failed: dict[str, str] = {}
    try:
        report = await client.get_job_failed_files(job.id)
        failed = {f.document: f.error for f in report.failed_files}
    except UnstructuredJobsError as exc:
        log.warning("job %s: cannot read its failed files: %s", job.id, exc)
    results: list[FileOutput | None] = [None] * len(file_ids)
    todo = []
    for i, file_id in enumerate(file_ids):
        if file_id in failed:
            results[i] = FileOutput(file_id, error=failed[file_id])
        elif job.status != JobStatus.COMPLETED:
            results[i] = FileOutput(file_id, error=f"the job ended {job.status}")
        else:
            todo.append(i)
    names = output_names([file_ids[i] for i in todo])
    gate = anyio.Semaphore(DOWNLOADS_AT_ONCE)
    spill = _SpillFolder()

    async def fetch(i: int, name: str) -> None:
        file_id = file_ids[i]
        async with gate:
            try:
                if base is None:
                    data, spilled = await client._download_spooled(
                        job.id, file_id, spill_bytes, lambda: spill.file(name)
                    )
                    if spilled is None:
                        results[i] = FileOutput(file_id, elements=data)
                    else:
                        results[i] = FileOutput(file_id, spilled=spilled, spill=spill)
                else:
                    target = output_path_inside(base, name)
                    path = await client.download_job_output_to(job.id, target, file_id=file_id)
                    results[i] = FileOutput(file_id, path=path)
            except UnstructuredJobsError as exc:
                results[i] = FileOutput(file_id, error=f"download failed: {exc}", exception=exc)

    bar = None
    if progress and todo:  # the outputs fetched, as the command line shows downloads
        from ._bars import Mode, TransferProgress

        bar = TransferProgress(Mode.AUTO, what="outputs", total=len(todo), unit="file")

    async def fetch_one(i: int, name: str) -> None:
        await fetch(i, name)
        if bar is not None:
            bar.update(1)

    try:
        async with anyio.create_task_group() as group:
            for i, name in zip(todo, names, strict=True):
                group.start_soon(fetch_one, i, name)
    finally:
        if bar is not None:
            bar.close()
    files = tuple(r for r in results if r is not None)
    return JobRun(job=job, files=files, spill=spill if spill.path is not None else None)
