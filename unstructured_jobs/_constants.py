"""Every default of the package, on one screen.

Service limits published in the API's docs (10 files per job, 50 MB per file, one job launch per
second, 5 jobs running at once) change over time: they are the defaults of `ServiceLimits`, which
the client checks before sending and the batch engine paces itself by; each can be lifted.
"""

from __future__ import annotations

DEFAULT_SERVER_URL = "https://platform.unstructuredapp.io"
API_PREFIX = "/api/v1"
API_KEY_HEADER = "unstructured-api-key"
ENV_API_KEY = "UNSTRUCTURED_API_KEY"
ENV_SERVER_URL = "UNSTRUCTURED_API_URL"
LOGGER_NAME = "unstructured_jobs"

# Timeouts (seconds). There is deliberately no total timeout: it would count time spent queued
# for a connection and kill long uploads (see README "Timeouts").
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_WRITE_TIMEOUT = 120.0

# Connections to the one API host.
DEFAULT_MAX_CONNECTIONS = 64

# Retries.
DEFAULT_MAX_RETRIES = 4
DEFAULT_RETRY_BUDGET = 120.0  # seconds spent sleeping between attempts, at most
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0  # a server's Retry-After is honoured up to this many seconds

# Uploads.
UPLOAD_CHUNK_SIZE = 256 * 1024
STALL_CHECKS_PER_TIMEOUT = 4  # the stall watchdog looks for progress this often per Timeout.write
# A body this small, all in memory, is written in one piece that the connection takes without
# waiting (asyncio's transports make a writer wait only past 64 KiB buffered): no stall watchdog.
UNWATCHED_BODY = 16 * 1024
WRITER_STOP_GRACE = 5.0  # seconds a failed or cancelled attempt waits for its body to let go
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Answers.
MAX_ERROR_BODY = 1024 * 1024  # bytes of an error answer read for its message and `body`
DOWNLOAD_CHUNK_SIZE = 256 * 1024
BULK_ANSWER = 1024 * 1024  # answers this large are parsed with the cyclic GC paused
# The largest JSON answer read (decompressed). 10,000 listed jobs are about 8 MB, 100,000 about
# 80 MB; downloads streamed to disk are not bounded by it.
DEFAULT_MAX_ANSWER_BYTES = 256 * 1024 * 1024
# The largest output `download_job_output` holds in memory (parsed, it takes 2-3x more); to
# disk (`download_job_output_to`, `run_job`'s spill) there is no bound.
DEFAULT_MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024

# The sync client's loop thread.
CANCEL_GRACE = 5.0  # seconds a call cancelled by Ctrl-C may take to unwind

# wait_for_job polling.
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_MAX_POLL_INTERVAL = 15.0
POLL_BACKOFF = 1.5
DEFAULT_WAIT_TIMEOUT = 600.0

# Published service limits: the defaults of `ServiceLimits` (see its docstring for the pages).
SERVICE_MAX_FILES_PER_JOB = 10
# api-reference/workflow/quickstart/transform (the newer page) says 50 MB; the older
# api-reference/quickstart/transform and the embed quickstart say 10 MB.
SERVICE_MAX_FILE_BYTES = 50 * 1000 * 1000
SERVICE_LAUNCH_INTERVAL = 1.0  # seconds between job launches, at least
SERVICE_LAUNCHES_PER_SECOND = 1.0 / SERVICE_LAUNCH_INTERVAL
SERVICE_RUNNING_JOBS = 5  # on-demand jobs running at once per account; more stay SCHEDULED

# Batch.
BATCH_MAX_CONCURRENT_UPLOADS = 4  # create-job requests in flight at once
BATCH_MAX_CONCURRENT_DOWNLOADS = 8  # output downloads in flight at once
BATCH_MAX_SUBMIT_ATTEMPTS = 5  # sends of one group per run after errors proving no job exists
BATCH_MAX_RATE_LIMITED = 30  # 429s one group may meet in a run before it is left pending
# Launch pacing: a strict limiter counts from the arrival of the last accepted launch, so the
# next one leaves a margin after the previous one's last byte; the margin doubles (plus a
# step) on each 429 and shrinks by LAUNCH_MARGIN_DECAY on each accepted launch.
LAUNCH_MARGIN = 0.01  # seconds, the smallest margin
LAUNCH_MARGIN_STEP = 0.05
LAUNCH_MARGIN_DECAY = 0.9
BATCH_BACKLOG_PER_RUNNING = 2  # jobs created and not finished, per running job allowed
BATCH_SPLIT_BREAKER = 3  # refused single files, with no job accepted, before groups stop splitting
BATCH_CLOCK_SKEW = 300.0  # seconds tolerated between our clock and the server's
BATCH_RECONCILE_GRACE = 2.0  # seconds before listing jobs again after a lost answer
BATCH_MAX_OUTPUT_NAME_BYTES = 200  # an output file name made from a server file id, at most
MAX_FILE_NAME_BYTES = 255  # one path component on common file systems
BATCH_MANIFEST_NAME = ".unstructured-jobs.sqlite"  # in output_dir, when no manifest is given

ERROR_SNIPPET_CHARS = 200
ERROR_MESSAGE_CHARS = 300  # an error answer's message: one line, about this long at most
ERROR_JSON_DEPTH = 64  # an error answer nested deeper is kept as text, not parsed

# Command line.
CLI_BATCH_MANIFEST = "unstructured-jobs-batch.sqlite"  # `batch` without -o: in the current folder
CLI_DEMO_FILES = 7  # sample documents `demo` writes and sends
CLI_LIST_LIMIT = 30  # jobs `list` shows by default (newest first), as `gh run list` does
CLI_PROGRESS_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal

# get_job_file_status: the published limit, kept inside the client (see _pacing).
FILE_STATUS_CALLS = 12  # calls per job ...
FILE_STATUS_WINDOW = 60.0  # ... in any window of this many seconds
FILE_STATUS_MARGIN = 0.5  # seconds added to a wait: the server counts from the call's arrival
