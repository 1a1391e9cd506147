"""OpenTelemetry spans (the ``otel`` extra), recorded by the SDK's in-memory exporter, against
the emulator over loopback: one span per call, retries inside it, errors, job ids, the blocking
client's loop thread, never the key; and the package without OpenTelemetry at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from unstructured_jobs import AsyncJobsClient, JobsClient, NotFoundError
from unstructured_jobs.testing import Emulator, FakeClock, Fault

KEY = "otel-test-secret-key-4242"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Sequence[ReadableSpan]]]:
    """A tracer provider exporting to memory, as the global one for this test only (the API
    lets a process set its provider once; `get_tracer_provider` is what the package reads)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter.get_finished_spans
    provider.shutdown()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as emulator:
        yield emulator


def ours(finished: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith("unstructured_jobs.")]


def assert_no_key(finished: Sequence[ReadableSpan]) -> None:
    """Nowhere: not in a name, an attribute, an event or a status."""
    for span in finished:
        texts = [span.name, str(span.status.description)]
        texts += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            texts.append(event.name)
            texts += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
        assert not [t for t in texts if KEY in t], span.name
        assert not [k for k in span.attributes or {} if "header" in k], span.name


async def test_a_call_is_one_client_span_with_the_http_attributes(
    emu: Emulator, spans: Callable[[], Sequence[ReadableSpan]]
) -> None:
    async with AsyncJobsClient(KEY, emu.url) as client:
        assert await client.list_jobs(status="COMPLETED") == []
    (span,) = ours(spans())
    port = int(emu.url.rsplit(":", 1)[1])
    assert span.name == "unstructured_jobs.list_jobs"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    attributes.pop("unstructured_jobs.request_id", None)  # when the server sent one
    assert attributes == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port,
        "url.full": f"{emu.url}/api/v1/jobs/?status=COMPLETED",
        "http.response.status_code": 200,
        "http.request.resend_count": 0,
    }
    (attempt,) = span.events
    assert attempt.name == "unstructured_jobs.attempt"
    assert attempt.attributes is not None
    assert attempt.attributes["unstructured_jobs.attempt"] == 1
    assert attempt.attributes["http.response.status_code"] == 200
    assert_no_key(spans())


async def test_retries_stay_inside_the_one_span_and_are_counted(
    emu: Emulator, spans: Callable[[], Sequence[ReadableSpan]]
) -> None:
    emu.inject(Fault.status(429, retry_after="3"), method="GET", path="/api/v1/jobs/")
    clock = FakeClock()
    async with AsyncJobsClient(KEY, emu.url, clock=clock) as client:
        await client.list_jobs()
    (span,) = ours(spans())
    assert clock.sleeps == [3.0]
    assert span.attributes is not None
    assert span.attributes["http.request.resend_count"] == 1
    assert span.attributes["http.response.status_code"] == 200  # the last answer's
    assert span.status.status_code is StatusCode.UNSET
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    assert [name for name, _ in events] == [
        "unstructured_jobs.attempt",
        "unstructured_jobs.retry",
        "unstructured_jobs.attempt",
    ]
    assert events[0][1]["http.response.status_code"] == 429
    assert events[1][1]["unstructured_jobs.retry_delay_s"] == 3.0
    assert events[1][1]["unstructured_jobs.retry_reason"] == "HTTP 429"
    second = events[2][1]
    assert (second["unstructured_jobs.attempt"], second["http.response.status_code"]) == (2, 200)
    assert_no_key(spans())


async def test_a_failed_call_has_an_error_status_and_its_class(
    emu: Emulator, spans: Callable[[], Sequence[ReadableSpan]]
) -> None:
    async with AsyncJobsClient(KEY, emu.url) as client:
        with pytest.raises(NotFoundError):
            await client.get_job(MISSING)
    (span,) = ours(spans())
    assert span.name == "unstructured_jobs.get_job"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "unstructured_jobs.NotFoundError"
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["unstructured_jobs.job_id"] == MISSING
    assert span.attributes["http.request.resend_count"] == 0  # a 404 is not retried
    assert span.events[-1].name == "exception"
    assert span.events[-1].attributes is not None
    assert span.events[-1].attributes["exception.type"] == "unstructured_jobs.NotFoundError"
    assert_no_key(spans())


async def test_a_connection_error_is_an_error_without_a_status_code(
    spans: Callable[[], Sequence[ReadableSpan]],
) -> None:
    clock = FakeClock()
    async with AsyncJobsClient(KEY, "http://127.0.0.1:9", clock=clock, max_retries=1) as client:
        with pytest.raises(Exception) as caught:
            await client.get_job(MISSING)
    (span,) = ours(spans())
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["http.request.resend_count"] == 1
    assert span.attributes["error.type"].endswith(type(caught.value).__qualname__)
    attempts = [e for e in span.events if e.name == "unstructured_jobs.attempt"]
    assert [dict(e.attributes or {}).get("error.type") is not None for e in attempts] == [
        True,
        True,
    ]
    assert_no_key(spans())


async def test_create_job_span_carries_the_new_jobs_id_and_later_calls_nest(
    emu: Emulator, spans: Callable[[], Sequence[ReadableSpan]], tmp_path: Path
) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4 tracing")
    tracer = trace.get_tracer_provider().get_tracer("the-application")
    async with AsyncJobsClient(KEY, emu.url) as client:
        with tracer.start_as_current_span("handle-upload") as parent:
            job = await client.create_job(template_id="hi_res", input_files=[doc])
            await client.get_job_details(job.id)
    created, details, outer = spans()
    assert (created.name, details.name) == (
        "unstructured_jobs.create_job",
        "unstructured_jobs.get_job_details",
    )
    assert created.attributes is not None and details.attributes is not None
    assert created.attributes["unstructured_jobs.job_id"] == job.id
    assert created.attributes["http.request.method"] == "POST"
    assert details.attributes["unstructured_jobs.job_id"] == job.id
    for span in (created, details):
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
    assert outer.name == "handle-upload"
    assert_no_key(spans())


def test_the_blocking_client_parents_its_spans_to_the_callers_span(
    spans: Callable[[], Sequence[ReadableSpan]],
) -> None:
    """The loop thread runs each call in a copy of the caller's context: the current span
    crosses over, so spans made there are children of the caller's."""
    tracer = trace.get_tracer_provider().get_tracer("the-application")
    with Emulator(api_key=KEY).running_in_thread() as emu:
        emu.inject(Fault.status(503, retry_after="0"), method="GET", path="/api/v1/jobs/")
        with JobsClient(KEY, emu.url) as client:
            with tracer.start_as_current_span("request-handler") as parent:
                client.list_jobs()
                with pytest.raises(NotFoundError):
                    client.get_job(MISSING)
            client.list_templates()  # outside it: a root span
    listed, got, handler, templates = spans()
    assert [s.name for s in (listed, got, templates)] == [
        "unstructured_jobs.list_jobs",
        "unstructured_jobs.get_job",
        "unstructured_jobs.list_templates",
    ]
    trace_id = parent.get_span_context().trace_id
    for span in (listed, got):
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context is not None and span.context.trace_id == trace_id
    assert handler.name == "request-handler"
    assert templates.parent is None
    assert listed.attributes is not None and listed.attributes["http.request.resend_count"] == 1
    assert got.status.status_code is StatusCode.ERROR
    assert_no_key(spans())


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_works_when_opentelemetry_cannot_be_imported() -> None:
    result = run_python(
        """
        import sys

        sys.modules["opentelemetry"] = None  # any `import opentelemetry...` raises ImportError
        from unstructured_jobs import JobsClient, NotFoundError
        from unstructured_jobs.testing import Emulator

        with Emulator(api_key="k").running_in_thread() as emu, JobsClient("k", emu.url) as c:
            assert c.list_jobs() == []
            try:
                c.get_job("00000000-0000-4000-8000-000000000000")
            except NotFoundError:
                pass
            else:
                raise AssertionError("no NotFoundError")
        assert not [m for m in sys.modules if m.startswith("opentelemetry.")]
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_nothing_is_traced_until_a_provider_is_set_and_then_everything_is() -> None:
    """The real global provider, in a process of its own (it can be set once per process)."""
    result = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
        from unstructured_jobs import JobsClient
        from unstructured_jobs.testing import Emulator

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with Emulator(api_key="k").running_in_thread() as emu, JobsClient("k", emu.url) as c:
            c.list_jobs()  # no provider yet: no span anywhere (the proxy's tracer is a no-op)
            trace.set_tracer_provider(provider)
            c.list_jobs()
            c.list_templates()
        print(",".join(s.name for s in exporter.get_finished_spans()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "unstructured_jobs.list_jobs,unstructured_jobs.list_templates"


def test_every_operation_path_has_its_name() -> None:
    from unstructured_jobs._http.tracing import operation_of

    job = "0f8e1c2a-0000-4000-8000-000000000001"
    cases: dict[tuple[str, str], tuple[str, Any]] = {
        ("POST", "/api/v1/jobs/"): ("create_job", None),
        ("GET", "/api/v1/jobs/"): ("list_jobs", None),
        ("GET", f"/api/v1/jobs/{job}"): ("get_job", job),
        ("GET", f"/api/v1/jobs/{job}/file-status"): ("get_job_file_status", job),
        ("POST", f"/api/v1/jobs/{job}/cancel"): ("cancel_job", job),
        ("GET", f"/api/v1/jobs/{job}/download"): ("download_job_output", job),
        ("POST", "/api/v1/workflows/w1/run"): ("run_workflow", None),
        ("GET", "/api/v1/templates/hi_res"): ("get_template", None),
        ("PATCH", "/api/v1/workflows/w1/notifications/channels/c1"): (
            "update_notification_channel",
            None,
        ),
        ("POST", "/api/v1/notifications/channels/c1/verify"): (
            "verify_notification_channel",
            None,
        ),
        ("GET", "/api/v1/notifications/unread-count"): ("get_unread_notification_count", None),
        ("GET", "/api/v1/notifications/n1"): ("get_notification", None),
        ("PUT", "/api/v1/somewhere/else"): ("request", None),
    }
    for (method, path), expected in cases.items():
        assert operation_of(method, path) == expected, (method, path)


def test_every_span_name_is_a_method_users_call() -> None:
    from unstructured_jobs._http.tracing import _OPERATIONS

    for name in _OPERATIONS.values():
        assert callable(getattr(AsyncJobsClient, name, None)), name
        assert callable(getattr(JobsClient, name, None)), name
