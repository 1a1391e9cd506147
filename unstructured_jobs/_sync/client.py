"""`JobsClient` and its `with_raw_response` view, generated from `AsyncJobsClient`.

Do not edit: ``python scripts/generate_sync.py`` writes this file from the methods of
`AsyncJobsClient` (``_client.py``), and tests/unit/test_generated.py fails when it is stale.
What every method goes through (the event loop thread, forks, closing) is in ``_sync/blocking.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .. import _run_job
from .._client import AsyncJobsClient, AsyncRawResponses, FilesCallback, PollCallback
from .._clock import Clock
from .._constants import (
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_WAIT_TIMEOUT,
)
from .._files.inputs import InputFileLike
from .._files.multipart import ProgressCallback
from .._http.hooks import EventHooks
from .._http.response import RawResponse
from .._http.tls import SSLOption
from .._http.transport import SessionFactory
from .._models import (
    CancelJobResult,
    ChannelType,
    JobDetails,
    JobEventType,
    JobFailedFiles,
    JobFileStatus,
    JobInformation,
    JobStatus,
    MarkReadResult,
    NotificationChannel,
    NotificationEvent,
    NotificationPage,
    Template,
    TemplateDetail,
    UnreadCount,
    Workflow,
    WorkflowState,
)
from .._options import RetryConfig, ServiceLimits, Timeout
from .._run_job import JobRun
from .._secret import Secret
from .._sync.blocking import BlockingClient


class JobsClient(BlockingClient):
    """The blocking client: every method of `AsyncJobsClient`, without ``await``.

    Takes the same arguments as `AsyncJobsClient` (see its docstring), except that `session`
    must stay None: an aiohttp session belongs to one event loop, and this client's loop lives
    in its own thread (`session_factory` builds one inside it).

    - One event loop per client, in a daemon thread, for the client's whole life; the aiohttp
      session is created and closed inside it.
    - Calls from any number of threads are safe, including a thread that runs an event loop of
      its own (a Jupyter cell, a sync helper called from async code): the call blocks that
      thread, as ``requests`` does. Only a call from inside the client's own loop (a callback
      calling back) raises `SyncInAsyncContextError`.
    - Ctrl-C during a call cancels the request inside the loop before `KeyboardInterrupt`
      reaches you.
    - Callbacks you pass (`on_upload_progress`, `on_poll`) run in the loop's thread: keep them
      quick and do not call the client from them.
    - After ``os.fork()`` the child's first call starts a fresh loop and session of its own.
    - An error of this package raised by a call shows your call and the error, not the frames
      inside the loop; set the ``unstructured_jobs`` logger to DEBUG to keep every frame.

    Use ``with JobsClient() as client:`` or call `close()`; a client that is never closed is
    closed at garbage collection or interpreter exit, best effort.
    """

    def __init__(
        self,
        api_key: str | None = None,
        server_url: str | None = None,
        *,
        timeout: Timeout | float = Timeout(),
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        session: None = None,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        ssl: SSLOption = True,
        session_factory: SessionFactory | None = None,
        clock: Clock | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        event_hooks: EventHooks | None = None,
        limits: ServiceLimits = ServiceLimits(),
        max_download_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        key = Secret.of(api_key)  # never a plain local
        del api_key
        self._start(
            key,
            server_url,
            timeout=timeout,
            max_retries=max_retries,
            retry_budget=retry_budget,
            max_connections=max_connections,
            session=session,
            allow_insecure_http=allow_insecure_http,
            trust_env=trust_env,
            ssl=ssl,
            session_factory=session_factory,
            clock=clock,
            max_answer_bytes=max_answer_bytes,
            event_hooks=event_hooks,
            limits=limits,
            max_download_bytes=max_download_bytes,
        )

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
        retry_budget: float | None = None,
        event_hooks: EventHooks | None = None,
        limits: ServiceLimits | None = None,
    ) -> JobsClient:
        """A copy of this client with other settings, sharing its connection pool.

        >>> fast = client.with_options(timeout=5, max_retries=0)   # doctest: +SKIP
        >>> fast.get_job(job_id)                             # doctest: +SKIP

        Arguments left None keep this client's value. `max_retries` may be a
        `RetryConfig(max_retries, budget)`, as the request methods take, instead of
        `max_retries` and `retry_budget` (not both). The copy is cheap (no new connections)
        and lives as long as this client: closing either closes both. `api_key` lets one pool
        serve several keys (a web server acting for several accounts). `event_hooks`
        replaces this client's hooks in the copy (``{}``: none); `limits` its `ServiceLimits`.
        """
        key = Secret.of(api_key)  # never a plain local
        del api_key
        return self._with_options(
            api_key=key,
            timeout=timeout,
            max_retries=max_retries,
            retry_budget=retry_budget,
            event_hooks=event_hooks,
            limits=limits,
        )

    @property
    def with_raw_response(self) -> RawResponses:
        """Each request method, returning a `RawResponse` (status, headers, request id,
        elapsed, retries taken) instead of the record; ``.parse()`` gives the record.

        >>> raw = client.with_raw_response.get_job(job_id)   # doctest: +SKIP
        >>> raw.status, raw.request_id, raw.parse().status         # doctest: +SKIP
        """
        return RawResponses(self)

    def create_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Create an on-demand job from a template or custom nodes, uploading `input_files`.

        Pass `template_id` (see `list_templates`), `job_nodes`, or both (sent together, as
        the vendor's REST collection does; which one the server runs is the server's choice),
        or else `request_data` alone (a dict or its JSON).
        Every local file is checked before anything is sent; files are streamed from disk one at
        a time. The request is retried only where the server cannot have created the job; after
        an ambiguous failure `JobMayExistError` is raised instead. More files than
        ``limits.files_per_job`` or one larger than ``limits.bytes_per_file`` raise
        `ServiceLimitError` before sending; a 413 answer is a `RequestTooLargeError` naming
        the files.
        """
        return self._call(
            AsyncJobsClient.create_job,
            template_id=template_id,
            job_nodes=job_nodes,
            request_data=request_data,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            max_retries=max_retries,
        )

    def run_workflow(
        self,
        workflow_id: str,
        *,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Run a long-lived workflow (a new job, answered with 202), optionally with files.

        The service runs a workflow only when no job of it is active: otherwise it starts none
        and says so, and `WorkflowBusyError` is raised (with the running job's id when the
        server gives it); wait for that job or cancel it, then run again.
        The files are checked against `limits` as `create_job` checks them.
        """
        return self._call(
            AsyncJobsClient.run_workflow,
            workflow_id,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_jobs(
        self,
        *,
        workflow_id: str | None = None,
        status: JobStatus | str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[JobInformation]:
        """List jobs, optionally only those of one workflow and/or in one status."""
        return self._call(
            AsyncJobsClient.list_jobs,
            workflow_id=workflow_id,
            status=status,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobInformation:
        """Get one job."""
        return self._call(AsyncJobsClient.get_job, job_id, timeout=timeout, max_retries=max_retries)

    def get_job_details(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobDetails:
        """Get a job's processing status and per-node file counters."""
        return self._call(
            AsyncJobsClient.get_job_details, job_id, timeout=timeout, max_retries=max_retries
        )

    def get_job_failed_files(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobFailedFiles:
        """Get the input files of a job that failed, with their errors."""
        return self._call(
            AsyncJobsClient.get_job_failed_files, job_id, timeout=timeout, max_retries=max_retries
        )

    def get_job_file_status(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> JobFileStatus:
        """Get every file of a job with its status: READY, IN_PROGRESS, SUCCESS or FAILURE
        (`FileProcessingStatus`), its error, time taken and current node.

        The service allows 12 calls per minute for each job (and API key). The client keeps to
        it by waiting, not failing: a 13th call for the same job within a minute waits its turn,
        on the client's clock, until the oldest of the last 12 is a minute (and half a second)
        old; turns go in call order, concurrent calls and ``with_options`` copies included.
        A 429 that comes anyway (another process polling the same job with the same key) is
        retried as any read is, after the server's ``Retry-After``.

        The job's own status (`get_job`) says whether it has finished; see `JobFileStatus`.
        """
        return self._call(
            AsyncJobsClient.get_job_file_status, job_id, timeout=timeout, max_retries=max_retries
        )

    def cancel_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> CancelJobResult:
        """Cancel a job. Not retried after an ambiguous failure (`AmbiguousRequestError`)."""
        return self._call(
            AsyncJobsClient.cancel_job, job_id, timeout=timeout, max_retries=max_retries
        )

    def download_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Any:
        """Download one output of a completed job, parsed from JSON (usually a list of elements).

        `file_id` comes from the job's `input_file_ids`, or from `output_node_files` together
        with its `node_id`. The output is held in memory, up to the client's
        `max_download_bytes` (default 1 GiB; past it, `AnswerTooLargeError`):
        `download_job_output_to` streams any size to disk instead, and `iter_elements` reads
        a saved output one element at a time.
        """
        return self._call(
            AsyncJobsClient.download_job_output,
            job_id,
            file_id=file_id,
            node_id=node_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def download_job_output_to(
        self,
        job_id: str,
        destination: str | os.PathLike[str],
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Path:
        """Stream one output to the file `destination`, in constant memory; return its path.

        The bytes go to a temporary file in the same folder (created if missing), renamed into
        place only once complete, so a failed download never leaves a truncated file behind.
        `destination` is used as given: build it with `unstructured_jobs.paths.safe_output_name`
        when it comes from server data.
        """
        return self._call(
            AsyncJobsClient.download_job_output_to,
            job_id,
            destination,
            file_id=file_id,
            node_id=node_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def iter_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Iterator[Any]:
        """Yield the elements of one output one at a time, in constant memory, whatever its size.

        The output is first streamed to a temporary file (`download_job_output_to`, with its
        retries: an output cut short is fetched again, so no element is ever yielded twice),
        then parsed incrementally (`iter_elements`) in a worker thread, a few elements per
        trip. The file is removed when the iteration ends, breaks or fails. The output must
        be a JSON list (`InvalidInputError` otherwise). To keep the file, use
        `download_job_output_to` and `iter_elements` yourself.
        """
        return self._iterate(
            AsyncJobsClient.iter_job_output,
            job_id,
            file_id=file_id,
            node_id=node_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_templates(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[Template]:
        """List the job templates: their `id` is what create_job takes as `template_id`."""
        return self._call(AsyncJobsClient.list_templates, timeout=timeout, max_retries=max_retries)

    def get_template(
        self,
        template_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> TemplateDetail:
        """Get one template with its nodes. Template ids are names (``hi_res_partition``),
        not UUIDs; an unknown one raises `NotFoundError`."""
        return self._call(
            AsyncJobsClient.get_template, template_id, timeout=timeout, max_retries=max_retries
        )

    def list_workflows(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: WorkflowState | str | None = None,
        name: str | None = None,
        source_id: str | None = None,
        destination_id: str | None = None,
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: str | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        show_only_soft_deleted: bool | None = None,
        show_recommender_workflows: bool | None = None,
        dag_node_configuration_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[Workflow]:
        """List workflows (one page of them when `page`/`page_size` are given).

        Every filter is optional and sent only when given: `status` (``active``,
        ``inactive``), `name`, a connector (`source_id`, `destination_id`), creation time
        (`created_since`, `created_before`: datetimes, naive ones taken as UTC), order
        (`sort_by` a field name, `sort_direction` ``asc``/``desc``), `page` (from 1) and
        `page_size`. Creating, updating and deleting workflows is not part of this client.
        """
        return self._call(
            AsyncJobsClient.list_workflows,
            page=page,
            page_size=page_size,
            status=status,
            name=name,
            source_id=source_id,
            destination_id=destination_id,
            created_since=created_since,
            created_before=created_before,
            sort_by=sort_by,
            sort_direction=sort_direction,
            show_only_soft_deleted=show_only_soft_deleted,
            show_recommender_workflows=show_recommender_workflows,
            dag_node_configuration_id=dag_node_configuration_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_workflow(
        self,
        workflow_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> Workflow:
        """Get one workflow (its nodes, connectors, schedule); run it with `run_workflow`."""
        return self._call(
            AsyncJobsClient.get_workflow, workflow_id, timeout=timeout, max_retries=max_retries
        )

    def create_notification_channel(
        self,
        *,
        event_types: Sequence[JobEventType | str],
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Create a channel that receives job events: a webhook (`url`, ``https://``, with an
        optional signing `secret` of 24-75 ASCII characters) or an email channel
        (`recipient_email`, optional `cc` and `reply_to`; it stays disabled until
        `verify_notification_channel`).

        Scoped to the workspace, or to one workflow with `workflow_id`. The secret is
        write-only (never returned, never shown in reprs, logs or errors). Not retried after
        an ambiguous failure (`AmbiguousRequestError`): list the channels to see whether it
        was created.
        """
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return self._call(
            AsyncJobsClient.create_notification_channel,
            event_types=event_types,
            url=url,
            secret=hidden,
            recipient_email=recipient_email,
            cc=cc,
            reply_to=reply_to,
            description=description,
            enabled=enabled,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_notification_channels(
        self,
        *,
        channel_type: ChannelType | str,
        enabled: bool | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> list[NotificationChannel]:
        """List the workspace's channels of one type (``webhook`` or ``email``: the service
        requires it), or those of one workflow with `workflow_id`; `enabled` filters."""
        return self._call(
            AsyncJobsClient.list_notification_channels,
            channel_type=channel_type,
            enabled=enabled,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Get one channel (of the workspace, or of the workflow `workflow_id`)."""
        return self._call(
            AsyncJobsClient.get_notification_channel,
            channel_id,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def update_notification_channel(
        self,
        channel_id: str,
        *,
        event_types: Sequence[JobEventType | str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationChannel:
        """Change a channel: only the arguments given are sent (PATCH). ``secret=""`` removes
        a webhook's custom signing secret; any other secret is checked as on create."""
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return self._call(
            AsyncJobsClient.update_notification_channel,
            channel_id,
            event_types=event_types,
            enabled=enabled,
            description=description,
            url=url,
            secret=hidden,
            recipient_email=recipient_email,
            cc=cc,
            reply_to=reply_to,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def delete_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> None:
        """Delete a channel. Not retried after an ambiguous failure (a second delete would
        answer 404): `AmbiguousRequestError` then."""
        return self._call(
            AsyncJobsClient.delete_notification_channel,
            channel_id,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def verify_notification_channel(
        self,
        channel_id: str,
        code: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> None:
        """Verify an email channel with the 6-digit `code` the service emailed (webhook
        channels need no verification). Not retried after an ambiguous failure."""
        return self._call(
            AsyncJobsClient.verify_notification_channel,
            channel_id,
            code,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        unread_only: bool | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationPage:
        """One page of the job-event feed, newest first: the events and the `next_cursor` to
        pass back for the next page (None on the last). Filters: `workflow_id`, `event_types`,
        `since` (a datetime; naive is UTC), `unread_only`; `limit` 1-100 (server default 50).
        `iter_notifications` follows the cursors for you."""
        return self._call(
            AsyncJobsClient.list_notifications,
            workflow_id=workflow_id,
            event_types=event_types,
            since=since,
            limit=limit,
            cursor=cursor,
            unread_only=unread_only,
            timeout=timeout,
            max_retries=max_retries,
        )

    def iter_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        unread_only: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[NotificationEvent]:
        """Yield every event of the feed that matches, newest first, page after page
        (`list_notifications` with each `next_cursor`, `page_size` events a page). A server
        that hands back a cursor already followed raises `ResponseValidationError` instead of
        looping for ever."""
        return self._iterate(
            AsyncJobsClient.iter_notifications,
            workflow_id=workflow_id,
            event_types=event_types,
            since=since,
            unread_only=unread_only,
            page_size=page_size,
        )

    def get_unread_notification_count(
        self,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> UnreadCount:
        """How many events of the feed the current user (API key) has not marked read,
        optionally of one workflow: ``.unread_count``."""
        return self._call(
            AsyncJobsClient.get_unread_notification_count,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def mark_notifications_read(
        self,
        *,
        notification_ids: Sequence[str] | None = None,
        before: datetime | None = None,
        mark_all: bool = False,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> MarkReadResult:
        """Mark events read for the current user: exactly one of `notification_ids` (at most
        100), `before` (every event created before that time) or ``mark_all=True``;
        `workflow_id` narrows `before`/`mark_all` to one workflow. Returns ``.marked_count``.
        Not retried after an ambiguous failure (its count would be wrong)."""
        return self._call(
            AsyncJobsClient.mark_notifications_read,
            notification_ids=notification_ids,
            before=before,
            mark_all=mark_all,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_notification(
        self,
        notification_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> NotificationEvent:
        """Get one event of the feed by its id."""
        return self._call(
            AsyncJobsClient.get_notification,
            notification_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def watch_job(
        self,
        job_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_files: FilesCallback | None = None,
    ) -> Iterator[JobInformation]:
        """Yield the job each time its status changes, until it reaches a terminal status.

        Polls `get_job` with an interval that grows by 1.5x from `poll_interval` up to
        `max_poll_interval`. The first state is always yielded.

        `on_files` is called with the job's files' states (`JobFileStatus`: how many are
        READY, IN_PROGRESS, SUCCESS, FAILURE, ``status.count("SUCCESS")``), read after a poll
        that finds the job not finished, at most every `FILE_STATUS_EVERY` (5) seconds, and
        once more when it has finished if they were read before: within the service's 12 calls
        a minute per job, which the client also enforces (`get_job_file_status`). A file status
        that cannot be read is skipped (logged at DEBUG), never an error of the watch.
        """
        return self._iterate(
            AsyncJobsClient.watch_job,
            job_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_files=on_files,
        )

    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_poll: PollCallback | None = None,
        progress: bool = False,
        on_files: FilesCallback | None = None,
    ) -> JobInformation:
        """Poll until the job is COMPLETED, FAILED or STOPPED and return it.

        `timeout` is the whole wait in seconds (None waits for ever); past it,
        `WaitTimeoutError` is raised carrying the last job seen. `on_poll` is called with every
        state read. A FAILED or STOPPED job is returned, not raised: check `job.status`.

        ``progress=True`` shows the job's status and a bar of its files done, with each file
        state's count (READY, IN_PROGRESS, SUCCESS, FAILURE: `get_job_file_status`, read at
        most every `FILE_STATUS_EVERY` seconds, within the service's 12 calls a minute) through
        ``tqdm.auto``: a widget in Jupyter, a bar on stderr elsewhere. Nothing is shown by
        default. A file status that cannot be read only leaves the bar as it was.

        `on_files` (with or without `progress`) is called with the files' states
        (`JobFileStatus`) as `watch_job` reads them: after a poll that finds the job not
        finished, at most every `FILE_STATUS_EVERY` (5) seconds (12 a minute, the service's
        limit per job, which `get_job_file_status` also keeps to), and once more at the end
        if they were read before; never past `timeout`.
        """
        return self._call(
            AsyncJobsClient.wait_for_job,
            job_id,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_poll=on_poll,
            progress=progress,
            on_files=on_files,
        )

    def run_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        on_poll: PollCallback | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        spill_bytes: int = _run_job.DEFAULT_SPILL_BYTES,
        job_id: str | None = None,
        progress: bool = False,
        on_files: FilesCallback | None = None,
    ) -> JobRun:
        """Create a job, wait for it, and fetch every input file's output: a `JobRun`.

        Takes create_job's inputs, and wait_for_job's `timeout` (the whole wait, seconds;
        `WaitTimeoutError` past it, carrying the last job seen), `poll_interval`,
        `max_poll_interval` and `on_poll`. Built from those calls, so each request keeps its
        validation, retries and typed errors; per-request settings come from the client
        (`with_options(timeout=..., max_retries=...)`).

        ``run.files`` has one `FileOutput` per input file: its parsed `elements`, or its
        `error` (from the job's failed files, the status a FAILED or STOPPED job ended in, or a
        failed download). With `output_dir`, outputs are streamed to ``<file id>.json`` files
        there (safe names) and `FileOutput.path` is set instead of `elements`;
        ``run.to_dir(path)`` writes in-memory outputs the same way.

        No output is refused for its size. One of at most `spill_bytes` (default 16 MiB) is
        parsed into memory; a larger one is streamed to a temporary file (`FileOutput.spilled`)
        and parsed only when ``f.elements`` is first read, or gone through one element at a
        time with ``f.iter_elements()``. ``run.close()`` (or ``with run:``) removes those
        files; so does dropping the run and its files. ``spill_bytes=0`` spills every output.

        An error or an interrupt after the job was created (a wait timeout, a lost connection,
        Ctrl-C, a cancel) carries a note (``add_note``) with the job's id: the job exists on
        the server and is not cancelled. Do not run the same call again (that creates a second
        job): pass ``job_id=`` instead, which waits for that job and fetches its outputs, with
        no template, nodes or files.

        ``progress=True`` shows the wait as `wait_for_job` does (the job's status, its files'
        states), then the outputs fetched, through ``tqdm.auto``; nothing is shown by default.
        `on_files` gets the files' states while waiting, as in `wait_for_job`.
        """
        return self._call(
            AsyncJobsClient.run_job,
            template_id=template_id,
            job_nodes=job_nodes,
            request_data=request_data,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            on_poll=on_poll,
            output_dir=output_dir,
            spill_bytes=spill_bytes,
            job_id=job_id,
            progress=progress,
            on_files=on_files,
        )


class RawResponses:
    """Each method that sends one request, returning a `RawResponse`."""

    def __init__(self, client: BlockingClient) -> None:
        self._client = client

    def create_job(
        self,
        *,
        template_id: str | None = None,
        job_nodes: Sequence[dict[str, Any]] | None = None,
        request_data: dict[str, Any] | str | None = None,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`JobsClient.create_job`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.create_job,
            template_id=template_id,
            job_nodes=job_nodes,
            request_data=request_data,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            max_retries=max_retries,
        )

    def run_workflow(
        self,
        workflow_id: str,
        *,
        input_files: Iterable[InputFileLike] = (),
        on_upload_progress: ProgressCallback | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`JobsClient.run_workflow`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.run_workflow,
            workflow_id,
            input_files=input_files,
            on_upload_progress=on_upload_progress,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_jobs(
        self,
        *,
        workflow_id: str | None = None,
        status: JobStatus | str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[JobInformation]]:
        """`JobsClient.list_jobs`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.list_jobs,
            workflow_id=workflow_id,
            status=status,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobInformation]:
        """`JobsClient.get_job`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_job, job_id, timeout=timeout, max_retries=max_retries
        )

    def get_job_details(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobDetails]:
        """`JobsClient.get_job_details`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_job_details, job_id, timeout=timeout, max_retries=max_retries
        )

    def get_job_failed_files(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobFailedFiles]:
        """`JobsClient.get_job_failed_files`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_job_failed_files, job_id, timeout=timeout, max_retries=max_retries
        )

    def get_job_file_status(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[JobFileStatus]:
        """`JobsClient.get_job_file_status`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_job_file_status, job_id, timeout=timeout, max_retries=max_retries
        )

    def cancel_job(
        self,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[CancelJobResult]:
        """`JobsClient.cancel_job`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.cancel_job, job_id, timeout=timeout, max_retries=max_retries
        )

    def download_job_output(
        self,
        job_id: str,
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Any]:
        """`JobsClient.download_job_output`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.download_job_output,
            job_id,
            file_id=file_id,
            node_id=node_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def download_job_output_to(
        self,
        job_id: str,
        destination: str | os.PathLike[str],
        *,
        file_id: str,
        node_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Path]:
        """`JobsClient.download_job_output_to`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.download_job_output_to,
            job_id,
            destination,
            file_id=file_id,
            node_id=node_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_templates(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[Template]]:
        """`JobsClient.list_templates`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.list_templates, timeout=timeout, max_retries=max_retries
        )

    def get_template(
        self,
        template_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[TemplateDetail]:
        """`JobsClient.get_template`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_template, template_id, timeout=timeout, max_retries=max_retries
        )

    def list_workflows(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: WorkflowState | str | None = None,
        name: str | None = None,
        source_id: str | None = None,
        destination_id: str | None = None,
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        sort_by: str | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        show_only_soft_deleted: bool | None = None,
        show_recommender_workflows: bool | None = None,
        dag_node_configuration_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[Workflow]]:
        """`JobsClient.list_workflows`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.list_workflows,
            page=page,
            page_size=page_size,
            status=status,
            name=name,
            source_id=source_id,
            destination_id=destination_id,
            created_since=created_since,
            created_before=created_before,
            sort_by=sort_by,
            sort_direction=sort_direction,
            show_only_soft_deleted=show_only_soft_deleted,
            show_recommender_workflows=show_recommender_workflows,
            dag_node_configuration_id=dag_node_configuration_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_workflow(
        self,
        workflow_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[Workflow]:
        """`JobsClient.get_workflow`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_workflow, workflow_id, timeout=timeout, max_retries=max_retries
        )

    def create_notification_channel(
        self,
        *,
        event_types: Sequence[JobEventType | str],
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`JobsClient.create_notification_channel`, returning a `RawResponse` of its result."""
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return self._client._call_raw(
            AsyncRawResponses.create_notification_channel,
            event_types=event_types,
            url=url,
            secret=hidden,
            recipient_email=recipient_email,
            cc=cc,
            reply_to=reply_to,
            description=description,
            enabled=enabled,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_notification_channels(
        self,
        *,
        channel_type: ChannelType | str,
        enabled: bool | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[list[NotificationChannel]]:
        """`JobsClient.list_notification_channels`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.list_notification_channels,
            channel_type=channel_type,
            enabled=enabled,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`JobsClient.get_notification_channel`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_notification_channel,
            channel_id,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def update_notification_channel(
        self,
        channel_id: str,
        *,
        event_types: Sequence[JobEventType | str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        url: str | None = None,
        secret: str | Secret | None = None,
        recipient_email: str | None = None,
        cc: Sequence[str] | None = None,
        reply_to: str | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationChannel]:
        """`JobsClient.update_notification_channel`, returning a `RawResponse` of its result."""
        hidden = Secret.of(secret)  # never a plain local
        del secret
        return self._client._call_raw(
            AsyncRawResponses.update_notification_channel,
            channel_id,
            event_types=event_types,
            enabled=enabled,
            description=description,
            url=url,
            secret=hidden,
            recipient_email=recipient_email,
            cc=cc,
            reply_to=reply_to,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def delete_notification_channel(
        self,
        channel_id: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[None]:
        """`JobsClient.delete_notification_channel`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.delete_notification_channel,
            channel_id,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def verify_notification_channel(
        self,
        channel_id: str,
        code: str,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[None]:
        """`JobsClient.verify_notification_channel`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.verify_notification_channel,
            channel_id,
            code,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def list_notifications(
        self,
        *,
        workflow_id: str | None = None,
        event_types: Sequence[JobEventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        unread_only: bool | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationPage]:
        """`JobsClient.list_notifications`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.list_notifications,
            workflow_id=workflow_id,
            event_types=event_types,
            since=since,
            limit=limit,
            cursor=cursor,
            unread_only=unread_only,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_unread_notification_count(
        self,
        *,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[UnreadCount]:
        """`JobsClient.get_unread_notification_count`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_unread_notification_count,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def mark_notifications_read(
        self,
        *,
        notification_ids: Sequence[str] | None = None,
        before: datetime | None = None,
        mark_all: bool = False,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[MarkReadResult]:
        """`JobsClient.mark_notifications_read`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.mark_notifications_read,
            notification_ids=notification_ids,
            before=before,
            mark_all=mark_all,
            workflow_id=workflow_id,
            timeout=timeout,
            max_retries=max_retries,
        )

    def get_notification(
        self,
        notification_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | RetryConfig | None = None,
    ) -> RawResponse[NotificationEvent]:
        """`JobsClient.get_notification`, returning a `RawResponse` of its result."""
        return self._client._call_raw(
            AsyncRawResponses.get_notification,
            notification_id,
            timeout=timeout,
            max_retries=max_retries,
        )
