"""unstructured-jobs: an async-first client for the jobs endpoints of the Unstructured Platform API.

>>> from unstructured_jobs import AsyncJobsClient, JobsClient
>>> async with AsyncJobsClient() as client:                       # doctest: +SKIP
...     job = await client.create_job(template_id="...", input_files=["a.pdf"])
...     job = await client.wait_for_job(job.id)

`JobsClient` is the same client for synchronous code. `unstructured_jobs.testing.Emulator` is a
local server that behaves like the API, for tests and demos without an account.
"""

from ._client import AsyncJobsClient, PollCallback
from ._exceptions import (
    AmbiguousRequestError,
    AnswerTooLargeError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CertificateVerifyError,
    ClientClosedError,
    ConflictError,
    ForkedProcessError,
    InputFileError,
    InsecureTransportError,
    InternalServerError,
    InvalidIdError,
    InvalidInputError,
    JobMayExistError,
    LocalFileError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    SyncInAsyncContextError,
    UnprocessableEntityError,
    UnsafePathError,
    UnstructuredJobsError,
    WaitTimeoutError,
)
from ._inputs import InputFile, InputFileLike
from ._loop_thread import EventLoopThread
from ._models import (
    CancelJobResult,
    CronTabEntry,
    FailedFile,
    JobDetails,
    JobFailedFiles,
    JobInformation,
    JobNodeDetails,
    JobProcessingStatus,
    JobStatus,
    NodeFileMetadata,
    Template,
    TemplateDetail,
    TemplateNode,
    ValidationErrorDetail,
    Workflow,
    WorkflowJobType,
    WorkflowNode,
    WorkflowSchedule,
    WorkflowState,
    WorkflowType,
)
from ._multipart import ProgressCallback
from ._options import RetryConfig, Timeout
from ._run import FileOutput, JobRun
from ._sync import JobsClient
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousRequestError",
    "AnswerTooLargeError",
    "AsyncJobsClient",
    "AuthenticationError",
    "BadRequestError",
    "CancelJobResult",
    "CertificateVerifyError",
    "ClientClosedError",
    "ConflictError",
    "CronTabEntry",
    "EventLoopThread",
    "FailedFile",
    "FileOutput",
    "ForkedProcessError",
    "InputFile",
    "InputFileError",
    "InputFileLike",
    "InsecureTransportError",
    "InternalServerError",
    "InvalidIdError",
    "InvalidInputError",
    "JobDetails",
    "JobFailedFiles",
    "JobInformation",
    "JobMayExistError",
    "JobNodeDetails",
    "JobProcessingStatus",
    "JobRun",
    "JobStatus",
    "JobsClient",
    "LocalFileError",
    "NodeFileMetadata",
    "NotFoundError",
    "PermissionDeniedError",
    "PollCallback",
    "ProgressCallback",
    "RateLimitError",
    "ResponseValidationError",
    "RetryConfig",
    "SyncInAsyncContextError",
    "Template",
    "TemplateDetail",
    "TemplateNode",
    "Timeout",
    "UnprocessableEntityError",
    "UnsafePathError",
    "UnstructuredJobsError",
    "ValidationErrorDetail",
    "WaitTimeoutError",
    "Workflow",
    "WorkflowJobType",
    "WorkflowNode",
    "WorkflowSchedule",
    "WorkflowState",
    "WorkflowType",
    "__version__",
]
