"""What ``import unstructured_jobs`` offers: the names in public signatures, public class names."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import pytest

import unstructured_jobs
from unstructured_jobs import (
    AsyncJobsClient,
    Clock,
    InvalidInputError,
    JobsClient,
    NotFoundError,
    RawResponse,
    RetryConfig,
    SessionFactory,
    SSLOption,
)


def test_every_public_name_imports() -> None:
    for name in unstructured_jobs.__all__:
        assert getattr(unstructured_jobs, name) is not None, name


def test_the_types_in_the_clients_signatures_are_exported() -> None:
    assert {"Clock", "SSLOption", "SessionFactory", "RawResponse", "RetryConfig"} <= set(
        unstructured_jobs.__all__
    )
    init = inspect.signature(AsyncJobsClient.__init__).parameters
    assert init["clock"].annotation == "Clock | None"
    assert init["ssl"].annotation == "SSLOption" and init["session_factory"].annotation == (
        "SessionFactory | None"
    )
    assert SSLOption is not None and SessionFactory is not None and Clock is not None
    assert RawResponse.__name__ == "RawResponse"


def test_the_loop_thread_is_not_public() -> None:
    assert "EventLoopThread" not in unstructured_jobs.__all__
    with pytest.raises(AttributeError):
        unstructured_jobs.EventLoopThread  # noqa: B018


def test_public_classes_print_with_the_package_name() -> None:
    for cls in (NotFoundError, JobsClient, AsyncJobsClient, RetryConfig, RawResponse):
        assert cls.__module__ == "unstructured_jobs", cls
    assert repr(NotFoundError) == "<class 'unstructured_jobs.NotFoundError'>"
    error = NotFoundError("gone", method="GET", url="u", status=404, body={}, headers={})
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is NotFoundError and back.args == error.args and back.status == 404


def test_an_error_prints_with_the_package_name_before_it_is_imported_from_it() -> None:
    """A traceback names the class before any user code imports it from the package."""
    code = (
        "import unstructured_jobs._exceptions as e\n"
        "import unstructured_jobs\n"
        "print(e.NotFoundError.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "unstructured_jobs"


def test_the_path_helpers_have_a_public_module() -> None:
    from unstructured_jobs import batch, paths

    assert paths.safe_output_name("../../etc/passwd") == "etc_passwd"
    assert batch.safe_output_name is paths.safe_output_name  # the old import still works
    assert batch.output_path_inside is paths.output_path_inside


async def test_with_options_takes_a_retry_config() -> None:
    async with AsyncJobsClient("k", "http://127.0.0.1:9") as client:
        copy = client.with_options(max_retries=RetryConfig(0, 1.5))
        assert copy._transport.retries == RetryConfig(0, 1.5)
        kept = client.with_options(max_retries=1)
        assert kept._transport.retries == RetryConfig(1, client._transport.retries.budget)
        with pytest.raises(InvalidInputError, match="not both"):
            client.with_options(max_retries=RetryConfig(0, 1.5), retry_budget=3)
