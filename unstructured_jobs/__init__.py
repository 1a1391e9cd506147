"""unstructured-jobs: an async-first client for the jobs endpoints of the Unstructured Platform API.

>>> from unstructured_jobs import AsyncJobsClient, JobsClient
>>> async with AsyncJobsClient() as client:                       # doctest: +SKIP
...     job = await client.create_job(template_id="...", input_files=["a.pdf"])
...     job = await client.wait_for_job(job.id)

`JobsClient` is the same client for synchronous code. `unstructured_jobs.testing.Emulator` is a
local server that behaves like the API, for tests and demos without an account.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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
        QuotaExceededError,
        RateLimitError,
        RequestTooLargeError,
        ResponseValidationError,
        ServiceLimitError,
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
    from ._options import RetryConfig, ServiceLimits, Timeout
    from ._run import FileOutput, JobRun
    from ._sync import JobsClient

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
    "QuotaExceededError",
    "RateLimitError",
    "RequestTooLargeError",
    "ResponseValidationError",
    "RetryConfig",
    "ServiceLimitError",
    "ServiceLimits",
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


_HOMES = {
    "APIConnectionError": "._exceptions",
    "APIError": "._exceptions",
    "APIStatusError": "._exceptions",
    "APITimeoutError": "._exceptions",
    "AmbiguousRequestError": "._exceptions",
    "AnswerTooLargeError": "._exceptions",
    "AsyncJobsClient": "._client",
    "AuthenticationError": "._exceptions",
    "BadRequestError": "._exceptions",
    "CancelJobResult": "._models",
    "CertificateVerifyError": "._exceptions",
    "ClientClosedError": "._exceptions",
    "ConflictError": "._exceptions",
    "CronTabEntry": "._models",
    "EventLoopThread": "._loop_thread",
    "FailedFile": "._models",
    "FileOutput": "._run",
    "ForkedProcessError": "._exceptions",
    "InputFile": "._inputs",
    "InputFileError": "._exceptions",
    "InputFileLike": "._inputs",
    "InsecureTransportError": "._exceptions",
    "InternalServerError": "._exceptions",
    "InvalidIdError": "._exceptions",
    "InvalidInputError": "._exceptions",
    "JobDetails": "._models",
    "JobFailedFiles": "._models",
    "JobInformation": "._models",
    "JobMayExistError": "._exceptions",
    "JobNodeDetails": "._models",
    "JobProcessingStatus": "._models",
    "JobRun": "._run",
    "JobStatus": "._models",
    "JobsClient": "._sync",
    "LocalFileError": "._exceptions",
    "NodeFileMetadata": "._models",
    "NotFoundError": "._exceptions",
    "PermissionDeniedError": "._exceptions",
    "PollCallback": "._client",
    "ProgressCallback": "._multipart",
    "QuotaExceededError": "._exceptions",
    "RateLimitError": "._exceptions",
    "RequestTooLargeError": "._exceptions",
    "ResponseValidationError": "._exceptions",
    "RetryConfig": "._options",
    "ServiceLimitError": "._exceptions",
    "ServiceLimits": "._options",
    "SyncInAsyncContextError": "._exceptions",
    "Template": "._models",
    "TemplateDetail": "._models",
    "TemplateNode": "._models",
    "Timeout": "._options",
    "UnprocessableEntityError": "._exceptions",
    "UnsafePathError": "._exceptions",
    "UnstructuredJobsError": "._exceptions",
    "ValidationErrorDetail": "._models",
    "WaitTimeoutError": "._exceptions",
    "Workflow": "._models",
    "WorkflowJobType": "._models",
    "WorkflowNode": "._models",
    "WorkflowSchedule": "._models",
    "WorkflowState": "._models",
    "WorkflowType": "._models",
}


def __getattr__(name: str) -> Any:
    """Import the public names when first used: ``import unstructured_jobs.cli`` (the command
    line) starts without aiohttp, so that Ctrl-C in its first half second is handled."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
