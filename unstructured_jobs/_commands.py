"""The subcommands of ``unstructured-jobs`` (parsing and errors live in `cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from tqdm import tqdm

from ._client import AsyncJobsClient
from ._constants import CLI_BATCH_MANIFEST, DEFAULT_WAIT_TIMEOUT
from ._converter import unstructure
from ._demo import demo_workdir, run_demo
from ._exceptions import WaitTimeoutError
from ._exit_codes import ExitCode
from ._manifest import display_path
from ._models import JobInformation
from ._options import Timeout
from ._output import print_json, print_table
from ._paths import output_path_inside, safe_output_name
from .batch import BatchObserver, BatchReport, submit_batch

Command = Callable[[argparse.Namespace], Awaitable[ExitCode]]
"""One subcommand: parsed arguments in, exit status out (errors are raised, `cli` maps them)."""

JOB_COLUMNS = ("id", "status", "created_at", "workflow_name", "files")


def _bars_enabled(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncJobsClient]:
    options: dict[str, Any] = {}
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.request_timeout is not None:
        options["timeout"] = Timeout.coerce(args.request_timeout)
    if args.ca_bundle is not None:
        options["ssl"] = args.ca_bundle
    if args.no_proxy_env:
        options["trust_env"] = False
    async with AsyncJobsClient(api_key=args.api_key, server_url=args.server_url, **options) as c:
        yield c


def _job_row(job: JobInformation) -> list[object]:
    files = len(job.input_file_ids or ())
    return [
        job.id,
        job.status,
        job.created_at.isoformat(timespec="seconds"),
        job.workflow_name,
        files,
    ]


def _show_jobs(args: argparse.Namespace, jobs: list[JobInformation]) -> None:
    if args.json:
        print_json(unstructure(jobs))
    else:
        print_table(JOB_COLUMNS, [_job_row(j) for j in jobs])


def _byte_bar(args: argparse.Namespace, total: int | None, desc: str = "upload") -> tqdm[Any]:
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        disable=not _bars_enabled(args),
        leave=False,
    )


def _exit_for(job: JobInformation) -> ExitCode:
    return ExitCode.OK if str(job.status) == "COMPLETED" else ExitCode.FAILED


async def _create_or_run(args: argparse.Namespace) -> ExitCode:
    total = sum(os.path.getsize(f) for f in args.files if os.path.isfile(f))
    async with _client(args) as client:
        with _byte_bar(args, total) as bar:
            if args.command == "create":
                job = await client.create_job(
                    template_id=args.template_id,
                    job_nodes=args.job_nodes,
                    input_files=args.files,
                    on_upload_progress=bar.update,
                )
            else:
                job = await client.run_workflow(
                    args.workflow_id, input_files=args.files, on_upload_progress=bar.update
                )
        if args.wait:
            job = await _wait(args, client, job.id)
    _show_jobs(args, [job])
    return _exit_for(job) if args.wait else ExitCode.OK


async def _wait(args: argparse.Namespace, client: AsyncJobsClient, job_id: str) -> JobInformation:
    try:
        timeout = DEFAULT_WAIT_TIMEOUT if args.timeout is None else args.timeout
        return await client.wait_for_job(job_id, timeout=timeout, poll_interval=args.poll_interval)
    except WaitTimeoutError as exc:
        if exc.last_job is None:
            raise
        print(f"unstructured-jobs: {exc}", file=sys.stderr)
        return exc.last_job


async def _list(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        jobs = await client.list_jobs(workflow_id=args.workflow_id, status=args.status)
    _show_jobs(args, jobs)
    return ExitCode.OK


async def _get(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        job = await client.get_job(args.job_id)
    _show_jobs(args, [job])
    return ExitCode.OK


async def _details(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        details = await client.get_job_details(args.job_id)
    if args.json:
        print_json(unstructure(details))
        return ExitCode.OK
    print(
        f"job {details.id}: {details.processing_status}"
        + (f" ({details.message})" if details.message else "")
    )
    rows = [
        [n.node_name, n.node_type, n.ready, n.in_progress, n.success, n.failure]
        for n in details.node_stats
    ]
    print_table(("node", "type", "ready", "in_progress", "success", "failure"), rows)
    return ExitCode.OK


async def _failed_files(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        failed = await client.get_job_failed_files(args.job_id)
    if args.json:
        print_json(unstructure(failed))
    else:
        print_table(("document", "error"), [[f.document, f.error] for f in failed.failed_files])
    return ExitCode.OK


async def _cancel(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        result = await client.cancel_job(args.job_id)
    if args.json:
        print_json(dict(result.raw))
    else:
        print_table(("id", "status", "message"), [[result.id, result.status, result.message]])
    return ExitCode.OK


async def _wait_cmd(args: argparse.Namespace) -> ExitCode:
    async with _client(args) as client:
        job = await _wait(args, client, args.job_id)
    _show_jobs(args, [job])
    return _exit_for(job)


async def _download(args: argparse.Namespace) -> ExitCode:
    os.makedirs(args.output, exist_ok=True)
    rows: list[dict[str, Any]] = []
    async with _client(args) as client:
        file_ids = args.file_id or list((await client.get_job(args.job_id)).input_file_ids or ())
        for file_id in file_ids:
            target = output_path_inside(args.output, safe_output_name(file_id) + ".json")
            await client.download_job_output_to(
                args.job_id, target, file_id=file_id, node_id=args.node_id
            )
            rows.append({"file_id": file_id, "output_path": str(target)})
    if args.json:
        print_json(rows)
    else:
        print_table(("file_id", "output_path"), [list(r.values()) for r in rows])
    return ExitCode.OK


class _Bars(BatchObserver):
    """tqdm bars on stderr: bytes uploaded and jobs finished."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.upload: tqdm[Any] | None = None
        self.jobs: tqdm[Any] | None = None

    def on_start(self, *, jobs: int, files: int, upload_bytes: int) -> None:
        """Open the bars."""
        common: dict[str, Any] = {"file": sys.stderr, "disable": not self.enabled}
        self.upload = tqdm(
            total=upload_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="upload",
            position=0,
            **common,
        )
        self.jobs = tqdm(total=jobs, unit="job", desc="jobs", position=1, **common)

    def on_upload(self, delta: int) -> None:
        """Move the byte bar."""
        if self.upload is not None:
            self.upload.update(delta)

    def on_job_finished(self, job_id: str, status: str) -> None:
        """Move the jobs bar."""
        if self.jobs is not None:
            self.jobs.update(1)

    def close(self) -> None:
        """Close the bars."""
        for bar in (self.upload, self.jobs):
            if bar is not None:
                bar.close()


def _shown(text: str | None) -> str | None:
    return None if text is None else display_path(text)


def _report(args: argparse.Namespace, report: BatchReport, wait: bool) -> ExitCode:
    bad = {"failed", "pending", "submitting"} | ({"submitted"} if wait else set())
    # Paths that are not UTF-8 (caf\xe9.pdf from an old archive) are shown with their bytes
    # escaped: printing them raw would fail on a UTF-8 terminal or pipe.
    if args.json:
        files = [
            {
                k: _shown(getattr(f, k)) if k in ("path", "output_path", "error") else getattr(f, k)
                for k in ("path", "state", "job_id", "job_status", "output_path", "error")
            }
            for f in report.files
        ]
        manifest = _shown(report.manifest)
        print_json({"manifest": manifest, "counts": report.counts(), "files": files})
    else:
        rows = [
            [
                display_path(os.path.relpath(f.path) if os.path.isabs(f.path) else f.path),
                f.state,
                f.job_id,
                _shown(f.output_path or f.error),
            ]
            for f in report.files
        ]
        print_table(("file", "state", "job", "output / error"), rows)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(report.counts().items()))
        print(
            f"\n{len(report.files)} files: {summary}"
            + (f" (manifest: {_shown(report.manifest)})" if report.manifest else "")
        )
    for step in report.next_steps():  # on stderr, also with --json: advice, not data
        print(step, file=sys.stderr)
    return ExitCode.FAILED if any(f.state in bad for f in report.files) else ExitCode.OK


async def _batch(args: argparse.Namespace) -> ExitCode:
    manifest = args.manifest
    if manifest is None and args.output is None:
        manifest = CLI_BATCH_MANIFEST
    bars = _Bars(_bars_enabled(args))
    try:
        async with _client(args) as client:
            report = await submit_batch(
                client,
                args.inputs,
                template_id=args.template_id,
                job_nodes=args.job_nodes,
                output_dir=args.output,
                manifest=manifest,
                files_per_job=args.files_per_job,
                max_file_bytes=args.max_file_size,
                max_job_bytes=args.max_job_size,
                launch_rate=args.launch_rate or None,
                max_concurrent_uploads=args.concurrency,
                wait=not args.no_wait,
                wait_timeout=args.timeout,
                poll_interval=args.poll_interval,
                retry_failed=args.retry_failed,
                include_hidden=args.include_hidden,
                observer=bars,
            )
    finally:
        bars.close()
    return _report(args, report, not args.no_wait)


async def _demo(args: argparse.Namespace) -> ExitCode:
    workdir = demo_workdir(args.workdir)
    bars = _Bars(_bars_enabled(args))
    try:
        report = await run_demo(workdir, files=args.files, observer=bars)
    finally:
        bars.close()
    code = _report(args, report, True)
    if not args.json:
        print(f"inputs and outputs are in {workdir}")
        print("next: unstructured-jobs batch FOLDER --template-id ID -o OUT (with an API key)")
    return code


COMMANDS: dict[str, Command] = {
    "create": _create_or_run,
    "run": _create_or_run,
    "list": _list,
    "get": _get,
    "details": _details,
    "failed-files": _failed_files,
    "cancel": _cancel,
    "wait": _wait_cmd,
    "download": _download,
    "batch": _batch,
    "demo": _demo,
}
