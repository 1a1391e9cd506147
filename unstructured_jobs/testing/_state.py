"""The emulator's job store: lifecycle, schedule, and the contract's JSON shapes.

Every public method takes the store's lock, so the server thread and a test thread can use it
at the same time. Nothing here awaits: the lock is never held across an ``await``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ._outputs import GeneratedOutput, OutputShape
from ._records import (
    JOB_STATUSES,
    TERMINAL_STATUSES,
    EmulatedJob,
    ReceivedFile,
    Schedule,
    iso_duration,
)

Json = dict[str, Any]
INF = float("inf")


@dataclass
class _Node:
    name: str | None
    type: str | None
    subtype: str | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class _Job:
    id: str
    workflow_id: str
    workflow_name: str
    endpoint: str
    request_data: Json | None
    files: list[ReceivedFile]
    nodes: list[_Node]
    created_at: str
    created_t: float
    auto: bool
    status: str = "SCHEDULED"
    started_t: float | None = None
    finished_t: float | None = None
    failed: dict[str, str] = field(default_factory=dict)  # filename -> error
    message: str | None = None
    job_type: str = "ephemeral"
    announced: str | None = None  # the last status told to `JobStore.on_status`


def server_now(offset: float = 0.0) -> datetime:
    """The server's wall-clock time: real UTC time shifted by `offset` seconds."""
    return datetime.now(UTC) + timedelta(seconds=offset)


def _utc_now(offset: float = 0.0) -> str:
    now = server_now(offset)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _nodes_for(request_data: Json | None, given: list[Json] | None = None) -> list[_Node]:
    nodes: list[_Node] = []
    raw = given if given is not None else (request_data or {}).get("job_nodes")
    if isinstance(raw, list):
        for item in raw:
            spec = item if isinstance(item, dict) else {}
            name, type_, subtype = (spec.get(k) for k in ("name", "type", "subtype"))
            nodes.append(
                _Node(
                    name if isinstance(name, str) else None,
                    type_ if isinstance(type_, str) else None,
                    subtype if isinstance(subtype, str) else None,
                )
            )
    else:
        nodes.append(_Node("Partitioner", "partition", "unstructured_api"))
    nodes.append(_Node("Destination", "destination", "local"))
    return nodes


def _elements(job: _Job, received: ReceivedFile) -> list[Json]:
    def element_id(n: int) -> str:
        return hashlib.sha256(f"{job.id}/{received.filename}/{n}".encode()).hexdigest()[:32]

    metadata = {
        "filename": received.filename,
        "filetype": received.content_type,
        "languages": ["eng"],
        "page_number": 1,
        "size": received.size,
        "sha256": received.sha256,
    }
    return [
        {"type": "Title", "element_id": element_id(0), "text": received.filename,
         "metadata": metadata},
        {"type": "NarrativeText", "element_id": element_id(1),
         "text": f"Emulated output of {received.filename} ({received.size} bytes).",
         "metadata": metadata},
    ]  # fmt: skip


class JobStore:
    """All jobs of one emulator, with the lazily applied schedule."""

    def __init__(
        self,
        *,
        schedule: Schedule,
        clock: Callable[[], float],
        max_running: int | None,
        fail_files: Callable[[str], bool] | None,
        output_for: Callable[[ReceivedFile], bytes] | None,
        clock_offset: float = 0.0,
        output_shape: OutputShape | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.output_shape = output_shape
        self.clock_offset = clock_offset
        self.schedule = schedule
        self.clock = clock
        self.max_running = max_running
        self.fail_files = fail_files
        self.output_for = output_for
        self._jobs: dict[str, _Job] = {}
        self._active: dict[str, _Job] = {}  # jobs not yet in a terminal status
        self._sim_t = -INF
        self.on_status: Callable[[Json], None] | None = None
        """Called (under the lock) with a job's JobInformation each time its status changes
        (job events: ``_notifications``); it must not block."""

    def _announce(self, job: _Job) -> None:
        """Tell `on_status` about the job's status, once per change."""
        if job.status != job.announced:
            job.announced = job.status
            if self.on_status is not None:
                self.on_status(self._info(job))

    def refresh(self) -> None:
        """Apply the schedule up to now (statuses change lazily, when the store is read)."""
        with self.lock:
            self._refresh(self.clock())

    # -- lifecycle ---------------------------------------------------------------------------

    def create(
        self,
        *,
        endpoint: str,
        workflow_id: str,
        workflow_name: str,
        request_data: Json | None,
        files: list[ReceivedFile],
        nodes: list[Json] | None = None,
        job_type: str = "ephemeral",
    ) -> Json:
        """Record a new SCHEDULED job and return its JobInformation.

        `nodes` (a template's or workflow's) replace those of ``request_data["job_nodes"]``.
        """
        with self.lock:
            now = self.clock()
            self._refresh(now)
            job = _Job(
                id=str(uuid.uuid4()),
                workflow_id=workflow_id,
                workflow_name=workflow_name,
                endpoint=endpoint,
                request_data=request_data,
                files=list(files),
                nodes=_nodes_for(request_data, nodes),
                created_at=_utc_now(self.clock_offset),
                created_t=now,
                auto=not self.schedule.is_manual,
                job_type=job_type,
            )
            self._jobs[job.id] = self._active[job.id] = job
            self._announce(job)
            return self._info(job)

    def _refresh(self, now: float) -> None:
        """Replay the schedule's start and finish events up to ``now``."""
        sched = self.schedule
        active = self._active
        while True:
            for key in [k for k, j in active.items() if j.status in TERMINAL_STATUSES]:
                del active[key]
            running = [j for j in active.values() if j.status == "IN_PROGRESS"]
            finishing = [j for j in running if j.auto and j.started_t is not None]
            ends = [(j.started_t or 0.0) + sched.run_for for j in finishing]
            next_finish = min(ends, default=INF)
            next_start, starter = INF, None
            if self.max_running is None or len(running) < self.max_running:
                for j in active.values():
                    if j.auto and j.status == "SCHEDULED":
                        t = max(self._sim_t, j.created_t + sched.start_after)
                        if t < next_start:
                            next_start, starter = t, j
            if min(next_finish, next_start) > now:
                break
            if next_finish <= next_start:
                self._sim_t = next_finish
                for j in finishing:
                    if j.started_t is not None and j.started_t + sched.run_for <= next_finish:
                        self._finish(j, next_finish)
            elif starter is not None:
                self._sim_t = next_start
                starter.status, starter.started_t = "IN_PROGRESS", next_start
                self._announce(starter)
        self._sim_t = max(self._sim_t, now)

    def _finish(self, job: _Job, t: float, forced: str | None = None) -> None:
        job.finished_t = t
        if job.started_t is None:
            job.started_t = t
        predicate = self.fail_files
        job.failed = {
            f.filename: "Partitioner: unable to process the document (emulated failure)"
            for f in job.files
            if predicate is not None and predicate(f.filename)
        }
        if forced == "FAILED" and not job.failed:
            job.failed = {f.filename: "Job failed" for f in job.files}
        all_failed = bool(job.files) and len(job.failed) == len(job.files)
        status = forced or ("FAILED" if all_failed else "COMPLETED")
        job.status = status
        if status == "FAILED":
            job.message = "All files failed" if all_failed else "Job failed"
        elif job.failed:
            job.message = f"{len(job.failed)} of {len(job.files)} files failed"
        self._announce(job)

    def _get(self, job_id: str) -> _Job | None:
        job = self._jobs.get(job_id)
        if job is not None:
            self._refresh(self.clock())
        return job

    def advance(self, job_id: str | None = None, steps: int = 1) -> None:
        """Move one job (or every unfinished one) ``steps`` steps along its lifecycle."""
        with self.lock:
            now = self.clock()
            self._refresh(now)
            jobs = list(self._jobs.values()) if job_id is None else [self._require(job_id)]
            for job in jobs:
                job.auto = False
                for _ in range(steps):
                    if job.status == "SCHEDULED":
                        job.status, job.started_t = "IN_PROGRESS", now
                        self._announce(job)
                    elif job.status == "IN_PROGRESS":
                        self._finish(job, now)

    def set_status(self, job_id: str, status: str) -> None:
        """Force a job's status; the job leaves the automatic schedule."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {JOB_STATUSES}")
        with self.lock:
            now = self.clock()
            self._refresh(now)
            job = self._require(job_id)
            job.auto = False
            job.failed, job.message = {}, None
            if status == "SCHEDULED":
                job.started_t = job.finished_t = None
            elif status == "IN_PROGRESS":
                job.started_t, job.finished_t = now, None
            elif status == "STOPPED":
                job.finished_t, job.message = now, "Job was stopped"
            else:
                self._finish(job, now, forced=status)
            job.status = status
            self._announce(job)
            if status not in TERMINAL_STATUSES:
                self._active[job.id] = job

    def cancel(self, job_id: str) -> Json | None:
        """Stop a job unless it already ended; None if unknown."""
        with self.lock:
            job = self._get(job_id)
            if job is None:
                return None
            if job.status in TERMINAL_STATUSES:
                message = f"Job already finished with status {job.status}; nothing to cancel"
            else:
                job.status, job.auto = "STOPPED", False
                job.finished_t = self.clock()
                job.message = message = "Job was stopped"
                self._announce(job)
            return {"id": job.id, "status": job.status, "message": message}

    def _require(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no such job: {job_id}") from None

    def clear(self) -> None:
        """Forget every job."""
        with self.lock:
            self._jobs.clear()
            self._active.clear()
            self._sim_t = -INF

    # -- JSON views --------------------------------------------------------------------------

    def _runtime(self, job: _Job) -> str | None:
        if job.status not in TERMINAL_STATUSES or job.started_t is None:
            return None
        return iso_duration((job.finished_t or job.started_t) - job.started_t)

    def _info(self, job: _Job) -> Json:
        last = job.nodes[-1]
        outputs = None
        if job.status == "COMPLETED":
            outputs = [
                {"node_id": last.id, "file_id": f"{f.filename}.json",
                 "node_type": last.type or "destination", "node_subtype": last.subtype or "local"}
                for f in job.files
                if f.filename not in job.failed
            ]  # fmt: skip
        return {
            "id": job.id,
            "workflow_id": job.workflow_id,
            "workflow_name": job.workflow_name,
            "status": job.status,
            "created_at": job.created_at,
            "runtime": self._runtime(job),
            "input_file_ids": [f.filename for f in job.files] if job.files else None,
            "output_node_files": outputs,
            "job_type": job.job_type,
        }

    def info(self, job_id: str) -> Json | None:
        """JobInformation of one job, or None."""
        with self.lock:
            job = self._get(job_id)
            return None if job is None else self._info(job)

    def list(self, workflow_id: str | None, status: str | None) -> list[Json]:
        """JobInformation of every job matching the filters, oldest first."""
        with self.lock:
            self._refresh(self.clock())
            return [
                self._info(j)
                for j in self._jobs.values()
                if (workflow_id is None or j.workflow_id == workflow_id)
                and (status is None or j.status == status)
            ]

    def details(self, job_id: str) -> Json | None:
        """JobDetails of one job, or None."""
        with self.lock:
            job = self._get(job_id)
            if job is None:
                return None
            n, failed = len(job.files), len(job.failed)
            processing = {"COMPLETED": "COMPLETED_WITH_ERRORS" if failed else "SUCCESS"}.get(
                job.status, job.status
            )
            stats = []
            for i, node in enumerate(job.nodes):
                counts = {"ready": 0, "in_progress": 0, "success": 0, "failure": 0}
                if job.status in ("SCHEDULED", "STOPPED"):
                    counts["ready"] = n
                elif job.status == "IN_PROGRESS":
                    counts["in_progress"] = n
                else:
                    counts["success"] = n - failed
                    counts["failure"] = failed if i == 0 else 0
                stats.append(
                    {"node_name": node.name, "node_type": node.type, "node_subtype": node.subtype}
                    | counts
                )
            states = [state for state, _ in self._file_states(job)]
            return {
                "id": job.id,
                "processing_status": processing,
                "node_stats": stats,
                "message": job.message,
                "summary": {
                    "total_docs": n,
                    "total_docs_succeeded": states.count("SUCCESS"),
                    "total_docs_failed": states.count("FAILURE"),
                },
            }

    def _file_states(self, job: _Job) -> Sequence[tuple[str, str | None]]:
        """Each file's (status, error): READY while the job waits, IN_PROGRESS while it runs,
        SUCCESS or FAILURE (with its error) once it ended; a job stopped while running fails
        its files, one stopped before it started leaves them READY."""
        if job.status == "SCHEDULED" or (job.status == "STOPPED" and job.started_t is None):
            return [("READY", None)] * len(job.files)
        if job.status == "IN_PROGRESS":
            return [("IN_PROGRESS", None)] * len(job.files)
        if job.status == "STOPPED":
            return [("FAILURE", "Job was stopped before the file was processed")] * len(job.files)
        failed = job.failed
        return [
            ("FAILURE", failed[f.filename]) if f.filename in failed else ("SUCCESS", None)
            for f in job.files
        ]

    def file_status(self, job_id: str) -> Json | None:
        """The per-file status answer of one job, or None (see ``_file_states``)."""
        with self.lock:
            job = self._get(job_id)
            if job is None:
                return None
            now = self.clock()
            first, last = job.nodes[0], job.nodes[-1]
            ran = None if job.started_t is None else (job.finished_t or now) - job.started_t
            files = []
            for index, (received, (state, error)) in enumerate(
                zip(job.files, self._file_states(job), strict=True)
            ):
                node = None
                if state != "READY":
                    at = first if state in ("IN_PROGRESS", "FAILURE") else last
                    node = {"id": at.id, "status": state, "tries": 1, "time_elapsed": ran}
                files.append(
                    {
                        "record_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job.id}/{index}")),
                        "document": received.filename,
                        "status": state,
                        "error": error,
                        "time_elapsed": ran if state in ("SUCCESS", "FAILURE") else None,
                        "current_node": node,
                        "discovered_by_node_id": None,
                    }
                )
            return {
                "id": job.id,
                "files": files,
                "truncated": False,
                "index_finished": True,
                "generated_at": _utc_now(self.clock_offset),
            }

    def active_run(self, workflow_id: str) -> str | None:
        """The id of a job of `workflow_id` started by run-workflow that has not ended, or None."""
        with self.lock:
            self._refresh(self.clock())
            for job in self._active.values():
                if (
                    job.workflow_id == workflow_id
                    and job.endpoint == "run_workflow"
                    and job.status not in TERMINAL_STATUSES
                ):
                    return job.id
            return None

    def failed_files(self, job_id: str) -> Json | None:
        """JobFailedFiles of one job, or None."""
        with self.lock:
            job = self._get(job_id)
            if job is None:
                return None
            return {"failed_files": [{"document": k, "error": v} for k, v in job.failed.items()]}

    def download(
        self, job_id: str, file_id: str, node_id: str | None
    ) -> tuple[int, bytes | GeneratedOutput]:
        """The (status, JSON body) answer of the download endpoint (a `GeneratedOutput`, to
        stream, when the store has an `output_shape`)."""
        with self.lock:
            job = self._get(job_id)
            if job is None:
                return 404, b'{"detail": "Job not found"}'
            if job.status != "COMPLETED":
                detail = (
                    "Job output is not ready"
                    if job.status not in TERMINAL_STATUSES
                    else f"Job has no output: it ended {job.status}"
                )
                return 409, json.dumps({"detail": detail}).encode()
            last = job.nodes[-1]
            node_ids = [n.id for n in job.nodes]
            target: ReceivedFile | None = None
            for f in job.files:
                if f.filename in job.failed:
                    continue
                as_input = f.filename == file_id and node_id in (None, *node_ids)
                as_output = f"{f.filename}.json" == file_id and node_id in (None, last.id)
                if as_input or as_output:
                    target = f
                    break
            if target is None:
                return 404, b'{"detail": "File not found"}'
            if self.output_for is not None:
                return 200, self.output_for(target)
            if self.output_shape is not None:
                return 200, self.output_shape.output(job.id, target.filename, target.content_type)
            return 200, json.dumps(_elements(job, target)).encode()

    def snapshot(self) -> dict[str, EmulatedJob]:
        """Copies of every job, in creation order."""
        with self.lock:
            self._refresh(self.clock())
            return {
                j.id: EmulatedJob(
                    id=j.id,
                    workflow_id=j.workflow_id,
                    workflow_name=j.workflow_name,
                    status=j.status,
                    created_at=j.created_at,
                    endpoint=j.endpoint,
                    request_data=None if j.request_data is None else dict(j.request_data),
                    files=list(j.files),
                    runtime=self._runtime(j),
                    failed_files=list(j.failed),
                    job_type=j.job_type,
                )
                for j in self._jobs.values()
            }
