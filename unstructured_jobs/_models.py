"""The records the API returns, as frozen attrs classes, and its open enums.

Field names and types follow the wire contract. Lists are tuples so that records are immutable
and hashable. Unknown fields in an answer are ignored and unknown enum values are kept (see
`OpenEnum`), so a server that grows keeps working with this client.

Optional fields are lenient: an optional field whose value has a form the contract does not
give (a ``runtime`` of ``"0:02:30"`` or ``""``, a list that is a string) gets its default and
its value as received goes to the record's `unparsed` mapping, keyed by the field's name, so one
odd record never fails a whole list. Required fields stay strict: missing or ill-typed, they
raise `ResponseValidationError` naming the field. Every record has `unparsed` (empty almost
always); it is left out of equality and hashing.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import attrs

#: How many unknown enum values keep their pseudo-member object (all enums together). Past it the
#: least recently used is forgotten (and made again, equal, if it comes back), so a server or a
#: test that sends endless distinct values cannot grow the process: about 0.6 MB at most.
PSEUDO_MEMBERS_KEPT = 1024


class OpenEnum(enum.StrEnum):
    """A string enum that accepts values it does not know.

    ``JobStatus("PAUSED")`` returns a pseudo-member whose `value` is ``"PAUSED"`` and whose
    `is_known` is False, instead of raising: a status added by the server must not break a
    client released before it. Pseudo-members compare equal to their string value (and to each
    other when their values are equal), hash like it, pickle, and keep their class's properties
    (`JobStatus.is_terminal` is False for them). Compare them with ``==``, not ``is``: only the
    most recently seen unknown values (`PSEUDO_MEMBERS_KEPT`) are kept as one object each, so that
    endless distinct values cannot grow memory; the known members are singletons as usual.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        # Not stored in `_value2member_map_`: that map lives as long as the class, and every
        # distinct value kept there stayed for the life of the process (~560 bytes each).
        return _pseudo_member(cls, str.__str__(value))

    @property
    def is_known(self) -> bool:
        """True for the values this release of the client was written for."""
        return type(self).__members__.get(self._name_) is self


@functools.lru_cache(maxsize=PSEUDO_MEMBERS_KEPT)
def _pseudo_member(cls: type[OpenEnum], value: str) -> OpenEnum:
    """The pseudo-member of `cls` for an unknown `value` (bounded cache, thread-safe)."""
    member = str.__new__(cls, value)
    member._name_ = value
    member._value_ = value
    return member


UNPARSED = "unparsed"
"""The name of the field every record keeps odd optional values in (never read from the wire)."""


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping (what `unparsed` holds); compares equal to a dict with its items."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._data,))


NOTHING_UNPARSED = FrozenMap()


class Record:
    """What every record has: a short repr and `to_dict`.

    The repr leaves out each field still at its default (None, an empty `unparsed`, ...), shows
    enums as ``JobStatus.COMPLETED`` and datetimes in ISO 8601, so a list of jobs in a notebook
    reads as a list of jobs.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        parts = []
        fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cast(Any, type(self)))
        for field in fields:
            value = getattr(self, field.name)
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()  # type: ignore[union-attr]
            if not field.repr or (default is not attrs.NOTHING and _same(value, default)):
                continue
            parts.append(f"{field.name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict of plain values, for pandas and JSON.

        Enums become their string values, nested records dicts and tuples lists;
        datetimes stay timezone-aware `datetime` objects and `runtime` a `timedelta`, so
        ``pd.DataFrame([j.to_dict() for j in jobs])`` has ``datetime64[ns, UTC]`` and
        ``timedelta64`` columns (``json.dumps(..., default=str)`` writes them). A value the
        record could not read (`unparsed`) is not in the dict: the field has its default there
        and the raw value stays in ``record.unparsed``.
        """
        from ._converter import to_dict  # the package's one converter (it imports this module)

        return to_dict(self)


def _same(value: object, default: object) -> bool:
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # an odd value is shown, never hidden
        return False


def _short(value: object) -> str:
    if isinstance(value, OpenEnum):
        name = type(value).__name__
        return f"{name}.{value._name_}" if value.is_known else f"{name}({value.value!r})"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return str(value)
    return repr(value)


def _unparsed() -> Any:
    return attrs.field(default=NOTHING_UNPARSED, eq=False, kw_only=True)


class JobStatus(OpenEnum):
    """A job's status. COMPLETED, STOPPED and FAILED are terminal."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change any more."""
        return self.value in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset({"COMPLETED", "STOPPED", "FAILED"})


class JobProcessingStatus(OpenEnum):
    """The processing status reported by the job details endpoint."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class WorkflowJobType(OpenEnum):
    """The kind of workflow behind a job."""

    EPHEMERAL = "ephemeral"
    PERSISTENT = "persistent"
    SCHEDULED = "scheduled"
    TEMPLATE = "template"


@attrs.frozen(repr=False)
class NodeFileMetadata(Record):
    """An output file of a job: pass `file_id` and `node_id` to `download_job_output`."""

    node_id: str
    file_id: str
    node_type: str
    node_subtype: str
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobInformation(Record):
    """A job, as returned by create_job, run_workflow, list_jobs and get_job."""

    id: str
    workflow_id: str
    workflow_name: str
    status: JobStatus
    created_at: datetime
    """Always timezone-aware (UTC when the server says ``Z``)."""
    runtime: timedelta | None = None
    input_file_ids: tuple[str, ...] | None = None
    output_node_files: tuple[NodeFileMetadata, ...] | None = None
    job_type: WorkflowJobType | None = WorkflowJobType.EPHEMERAL
    """Absent: ``ephemeral`` (the contract's default); ``null`` from the server: None."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobNodeDetails(Record):
    """Per-node file counters of a job."""

    ready: int
    in_progress: int
    success: int
    failure: int
    node_name: str | None = None
    node_type: str | None = None
    node_subtype: str | None = None
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobSummary(Record):
    """A job's document counts (`JobDetails.summary`); each is None when the server gives none."""

    total_docs: int | None = None
    total_docs_succeeded: int | None = None
    total_docs_failed: int | None = None
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobDetails(Record):
    """Processing details of a job (get_job_details)."""

    id: str
    processing_status: JobProcessingStatus
    node_stats: tuple[JobNodeDetails, ...]
    message: str | None = None
    summary: JobSummary | None = None
    """Documents in the job, succeeded and failed (None when the server sends none)."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class FailedFile(Record):
    """One input file that failed, with the server's error text."""

    document: str
    error: str
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobFailedFiles(Record):
    """The files of a job that failed (get_job_failed_files)."""

    failed_files: tuple[FailedFile, ...]
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class CancelJobResult(Record):
    """The answer to cancel_job. The spec leaves it untyped; every field is optional and
    `raw` keeps the whole JSON object as received. Any other JSON answer (``null``, a string)
    is a success too: the fields stay None and the value is in ``unparsed["answer"]``."""

    id: str | None = None
    status: JobStatus | None = None
    message: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class ValidationErrorDetail(Record):
    """One item of a 422 answer's ``detail`` list (FastAPI's shape)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str
    input: Any = attrs.field(default=None, hash=False)
    """The value the server refused, as JSON (None when it gives none, or gave ``null``)."""
    ctx: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    """The rule's context (``{"error": "..."}``, ``{"min_length": 1}``), when given."""
    unparsed: Mapping[str, Any] = _unparsed()


# ------------------------------------------------------------------ templates


@attrs.frozen(repr=False)
class TemplateNode(Record):
    """One node of a template: what it does (`type`, `subtype`) and its `settings`."""

    id: str
    name: str
    type: str
    subtype: str
    settings: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    """The node's settings as JSON (None when the server gives none)."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class Template(Record):
    """A job template (list_templates): pass its `id` to create_job as `template_id`.

    Ids are names such as ``hi_res_partition``, not UUIDs.
    """

    id: str
    name: str
    description: str
    version: str
    last_updated: str
    """As the server gives it (the contract types it as a string)."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class TemplateDetail(Template):
    """One template with its nodes (get_template)."""

    nodes: tuple[TemplateNode, ...] = attrs.field(kw_only=True)


# ------------------------------------------------------------------ workflows


class WorkflowState(OpenEnum):
    """Whether a workflow runs (its schedule, run_workflow)."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class WorkflowType(OpenEnum):
    """The kind of a workflow, as the platform's UI makes them."""

    BASIC = "basic"
    ADVANCED = "advanced"
    PLATINUM = "platinum"
    CUSTOM = "custom"


@attrs.frozen(repr=False)
class WorkflowNode(Record):
    """One node of a workflow's DAG."""

    name: str
    type: str
    subtype: str
    id: str | None = None
    settings: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class CronTabEntry(Record):
    """One cron line of a workflow's schedule (``0 0 * * 0``)."""

    cron_expression: str
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class WorkflowSchedule(Record):
    """When a scheduled workflow runs."""

    crontab_entries: tuple[CronTabEntry, ...]
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class Workflow(Record):
    """A long-lived workflow (list_workflows, get_workflow): run it with run_workflow(id).

    `sources` and `destinations` are the ids of its connectors.
    """

    id: str
    name: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    status: WorkflowState
    created_at: datetime
    """Always timezone-aware (UTC when the server says ``Z``)."""
    workflow_nodes: tuple[WorkflowNode, ...]
    reprocess_all: bool = False
    schedule: WorkflowSchedule | None = None
    updated_at: datetime | None = None
    workflow_type: WorkflowType | None = None
    unparsed: Mapping[str, Any] = _unparsed()


# ------------------------------------------------------------------ per-file status


class FileProcessingStatus(OpenEnum):
    """Where one file of a job is (get_job_file_status). SUCCESS and FAILURE are final."""

    READY = "READY"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @property
    def is_terminal(self) -> bool:
        """True when the file will not change any more (SUCCESS or FAILURE)."""
        return self.value in _FILE_TERMINAL_STATUSES


_FILE_TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE"})


@attrs.frozen(repr=False)
class FileNodeStatus(Record):
    """The workflow node a file is at (`FileStatus.current_node`)."""

    id: str
    status: FileProcessingStatus | None = None
    tries: int | None = None
    time_elapsed: float | None = None
    """Seconds spent in this node so far."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class FileStatus(Record):
    """One file of a job and its processing status (`JobFileStatus.files`)."""

    record_id: str
    document: str
    """The file's name or location (``s3://bucket/input/a.pdf``; an upload's file name)."""
    status: FileProcessingStatus
    error: str | None = None
    """Why the file failed (FAILURE), else None."""
    time_elapsed: float | None = None
    """Seconds the file took (None while it is not done)."""
    current_node: FileNodeStatus | None = None
    discovered_by_node_id: str | None = None
    """The source node that found the file (None for uploaded files)."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class JobFileStatus(Record):
    """Every file of a job with its status (get_job_file_status).

    Read the job's own status (`get_job`) to know whether the job has finished: a file list
    can be `truncated`, and a job reading a source may not have found every file yet
    (`index_finished` False).
    """

    id: str
    files: tuple[FileStatus, ...]
    truncated: bool = False
    """True when the server left files out of `files`."""
    index_finished: bool | None = None
    """False while the job's source is still being listed (more files may come)."""
    generated_at: datetime | None = None
    """When the server made this answer (timezone-aware)."""
    unparsed: Mapping[str, Any] = _unparsed()

    def count(self, status: FileProcessingStatus | str) -> int:
        """How many of `files` are in `status`."""
        return sum(1 for f in self.files if f.status == status)


# ------------------------------------------------------------------ job events


class ChannelType(OpenEnum):
    """How a notification channel delivers job events: to a ``webhook`` URL or by ``email``."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class JobEventType(OpenEnum):
    """A job event (the docs' "Event types"): sent to notification channels and kept in the feed.

    ``job.failed``: the job did not initialize or processed no files; ``job.completed``: it
    finished (read `get_job_details` to know whether every file succeeded).
    """

    SCHEDULED = "job.scheduled"
    IN_PROGRESS = "job.in_progress"
    COMPLETED = "job.completed"
    STOPPED = "job.stopped"
    FAILED = "job.failed"


@attrs.frozen(repr=False)
class EmailChannelConfig(Record):
    """Where an email channel sends (`NotificationChannel.email_config`)."""

    recipient_email: str
    provider: str | None = None
    """The platform's email provider (read-only)."""
    cc: tuple[str, ...] | None = None
    reply_to: str | None = None
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class NotificationChannel(Record):
    """A notification channel (webhook or email), workspace- or workflow-scoped.

    A webhook channel's signing secret is write-only: the service never returns it, and this
    record has no field for it. An email channel stays disabled until verified
    (`verify_notification_channel`).
    """

    id: str
    event_types: tuple[JobEventType, ...]
    enabled: bool
    created_at: datetime
    """Always timezone-aware."""
    channel_type: ChannelType | None = None
    updated_at: datetime | None = None
    description: str | None = None
    url: str | None = None
    """The webhook URL (webhook channels)."""
    email_config: EmailChannelConfig | None = None
    """The recipients (email channels)."""
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class NotificationEvent(Record):
    """One job event of the feed (`list_notifications`, `iter_notifications`).

    `payload` is the event's data as the service gives it (``{"job_id": ..., "status": ...}``);
    `job_id` and `job_status` read it.
    """

    id: str
    event_type: JobEventType
    created_at: datetime
    """Always timezone-aware."""
    workflow_id: str | None = None
    """The job's workflow (None: an account-level event)."""
    payload: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    is_read: bool = False
    """Whether the current user (API key) marked it read."""
    unparsed: Mapping[str, Any] = _unparsed()

    @property
    def job_id(self) -> str | None:
        """The job the event is about (``payload["job_id"]``), or None."""
        value = self.payload.get("job_id")
        return value if isinstance(value, str) else None

    @property
    def job_status(self) -> JobStatus | None:
        """The job's status in the event (``payload["status"]``), or None."""
        value = self.payload.get("status")
        return JobStatus(value) if isinstance(value, str) and value else None


@attrs.frozen(repr=False)
class NotificationPage(Record):
    """One page of the feed; pass `next_cursor` back for the next (None: the last page)."""

    events: tuple[NotificationEvent, ...]
    next_cursor: str | None = None
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class UnreadCount(Record):
    """The answer of `get_unread_notification_count`."""

    unread_count: int
    unparsed: Mapping[str, Any] = _unparsed()


@attrs.frozen(repr=False)
class MarkReadResult(Record):
    """The answer of `mark_notifications_read`: how many events were newly marked read."""

    marked_count: int
    unparsed: Mapping[str, Any] = _unparsed()
