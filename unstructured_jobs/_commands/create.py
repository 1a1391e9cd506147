"""``unstructured-jobs create``: one job from files; ``--wait`` for it, or ``-o DIR`` to wait
and download every file's output (`AsyncJobsClient.run_job`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .._converter import unstructure
from .._exceptions import WaitTimeoutError
from .._exit_codes import ExitCode
from .._models import JobFileStatus, JobInformation
from . import _common
from ._progress import Mode, StatusProgress, TransferProgress, mode_of

if TYPE_CHECKING:
    from .._run_job import JobRun  # the run's module imports aiohttp: not for `--help`

NAME = "create"
HELP = "create one job from files (and wait, or wait and download with -o)"
REQUIRED = "(--template-id ID | --job-nodes JSON|@FILE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--template-id``/``--job-nodes``, the files, ``--wait``, ``-o``."""
    _common.add_job_definition(p)
    p.add_argument("files", nargs="*", help="input files")
    _common.add_wait_options(p, flag=True)
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="wait for the job, then download each file's output into DIR as "
        "<file id>.json (implies --wait)",
    )


def _upload_size(files: list[str]) -> int:
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f))


async def run(args: argparse.Namespace) -> ExitCode:
    """Create the job (and wait for it with ``--wait``, or run it to its outputs with ``-o``)."""
    if args.output is not None:
        return await _run_to_outputs(args)
    total = _upload_size(args.files)
    async with _common.client(args) as client:
        with TransferProgress(mode_of(args), what="upload", total=total) as bar:
            job = await client.create_job(
                template_id=args.template_id,
                job_nodes=args.job_nodes,
                input_files=args.files,
                on_upload_progress=bar.update,
            )
        if args.wait:
            try:
                job = await _common.wait(args, client, job.id)
            except BaseException:
                _say_job_exists(job.id, args.output)
                raise
    _common.show_jobs(args, [job])
    return _common.exit_for(job) if args.wait else ExitCode.OK


def _say_job_exists(job_id: str, output: str | None) -> None:
    """After an error or Ctrl-C once the job exists: which job, and how to go on with it."""
    then = f", then `unstructured-jobs download {job_id} -o {output}`" if output else ""
    print(
        f"unstructured-jobs: job {job_id} was created and goes on (not cancelled): "
        f"`unstructured-jobs wait {job_id}`{then}; running this command again creates "
        "a second job",
        file=sys.stderr,
    )


async def _run_to_outputs(args: argparse.Namespace) -> ExitCode:
    mode = mode_of(args)
    status: StatusProgress | None = None

    def shown(job_id: str) -> StatusProgress:
        nonlocal status
        if status is None:
            status = StatusProgress(mode, job_id)
        return status

    def on_poll(job: JobInformation) -> None:
        shown(job.id)(job)

    def on_files(files: JobFileStatus) -> None:  # read at most every 5 s (12 a minute per job)
        shown(files.id).files(files)

    timeout = _common.wait_timeout(args)
    async with _common.client(args) as client:
        # Created first, then run_job(job_id=): from here on the job's id is known, so an
        # error or Ctrl-C can say which job exists.
        with TransferProgress(mode, what="upload", total=_upload_size(args.files)) as upload:
            created = await client.create_job(
                template_id=args.template_id,
                job_nodes=args.job_nodes,
                input_files=args.files,
                on_upload_progress=upload.update,
            )
        try:
            result = await client.run_job(
                job_id=created.id,
                timeout=timeout,
                poll_interval=args.poll_interval,
                on_poll=on_poll,
                on_files=None if mode is Mode.OFF else on_files,
                output_dir=args.output,
            )
        except WaitTimeoutError as exc:
            job_id = exc.job_id
            print(
                f"unstructured-jobs: error: {exc}; it goes on: `unstructured-jobs wait {job_id}`, "
                f"then `unstructured-jobs download {job_id} -o {args.output}`",
                file=sys.stderr,
            )
            return ExitCode.FAILED
        except BaseException:
            _say_job_exists(created.id, args.output)
            raise
        finally:
            if status is not None:
                status.close()
    return _show_run(args, result)


def _show_run(args: argparse.Namespace, result: JobRun) -> ExitCode:
    files: list[dict[str, Any]] = [
        {
            "file_id": f.file_id,
            "output_path": None if f.path is None else str(f.path),
            "error": f.error,
        }
        for f in result.files
    ]
    rows = [[f.file_id, _common.shown_path(f.path) if f.path else f.error] for f in result.files]
    data = {"job": unstructure(result.job), "files": files}
    _common.show(args, data, ("file_id", "output / error"), rows, shrink=(1,))
    if not args.json and not args.quiet:
        done = len(result.files) - len(result.failed)
        print(f"\njob {result.job.id} {result.job.status}: {done} of {len(result.files)} outputs")
    if result.job.status != "COMPLETED":
        return _common.exit_for(result.job)
    for f in result.failed:
        print(f"unstructured-jobs: error: {f.file_id}: {f.error}", file=sys.stderr)
    return ExitCode.OK if result.ok else ExitCode.FAILED
