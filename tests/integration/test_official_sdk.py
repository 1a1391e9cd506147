"""The official SDK (unstructured-client, pinned in the test extra) pointed at the emulator:
every endpoint it has for jobs, templates and the read side of workflows must keep working, with
its own request shapes (multipart ``input_files[]``, ``sort_by=id``) and its pydantic models
(issue 13, item 6). Over loopback; the SDK's retries are off so a bad answer fails at once."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from unstructured_client import UnstructuredClient
from unstructured_client.models import errors, operations, shared
from unstructured_client.utils import BackoffStrategy, RetryConfig

from unstructured_jobs.testing import Emulator, Schedule

SRC = "f1f7b1b2-8e4b-4a2b-8f1d-3e3c7c9e5a3c"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(schedule=Schedule.manual()).running_in_thread() as emulator:
        yield emulator


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[UnstructuredClient]:
    root = logging.getLogger()
    level = root.level  # the SDK sets the root logger's level when it is made
    http = httpx.Client(trust_env=False)  # loopback: no proxy from the environment
    try:
        yield UnstructuredClient(
            api_key_auth=emu.api_key,
            server_url=emu.url,
            client=http,
            retry_config=RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False),
        )
    finally:
        http.close()
        root.setLevel(level)


def test_templates_through_the_sdk(sdk: UnstructuredClient) -> None:
    listed = sdk.templates.list_templates(request=operations.ListTemplatesRequest())
    assert listed.status_code == 200 and listed.response_list_templates is not None
    ids = [t.id for t in listed.response_list_templates]
    assert {"hi_res_partition", "hi_res_and_enrichment"} <= set(ids)
    one = sdk.templates.get_template(
        request=operations.GetTemplateRequest(template_id="hi_res_and_enrichment")
    )
    assert one.template_detail is not None
    assert one.template_detail.id == "hi_res_and_enrichment" and one.template_detail.nodes
    with pytest.raises(errors.SDKError) as info:
        sdk.templates.get_template(request=operations.GetTemplateRequest(template_id="nope"))
    assert info.value.status_code == 404


def test_workflows_through_the_sdk(emu: Emulator, sdk: UnstructuredClient) -> None:
    wid = emu.add_workflow("invoices", sources=[SRC], schedule=["0 0 * * 0"],
                           workflow_type="advanced")  # fmt: skip
    emu.add_workflow("other", status="inactive")
    listed = sdk.workflows.list_workflows(request=operations.ListWorkflowsRequest())
    assert listed.response_list_workflows is not None
    assert sorted(w.name for w in listed.response_list_workflows) == ["invoices", "other"]
    assert emu.requests[-1].query == {"sort_by": "id"}  # what the SDK always sends
    active = sdk.workflows.list_workflows(
        request=operations.ListWorkflowsRequest(
            status=shared.WorkflowState.ACTIVE,
            page=1,
            page_size=10,
            sort_direction=shared.SortDirection.DESC,
            source_id=SRC,
            show_only_soft_deleted=False,
        )
    )
    assert [w.id for w in active.response_list_workflows or []] == [wid]
    got = sdk.workflows.get_workflow(request=operations.GetWorkflowRequest(workflow_id=wid))
    info = got.workflow_information
    assert info is not None and info.name == "invoices"
    assert info.workflow_type == shared.WorkflowType.ADVANCED
    assert info.schedule is not None and info.schedule.crontab_entries[0].cron_expression
    run = sdk.workflows.run_workflow(
        request=operations.RunWorkflowRequest(
            workflow_id=wid,
            body_run_workflow=shared.BodyRunWorkflow(
                input_files=[shared.BodyRunWorkflowInputFiles(content=b"x", file_name="w.txt")]
            ),
        )
    )
    assert run.status_code == 202 and run.job_information is not None
    assert run.job_information.workflow_name == "invoices"
    assert emu.jobs[run.job_information.id].files[0].field_name == "input_files[]"


def test_jobs_through_the_sdk(emu: Emulator, sdk: UnstructuredClient) -> None:
    created = sdk.jobs.create_job(
        request=operations.CreateJobRequest(
            body_create_job=shared.BodyCreateJob(
                request_data=json.dumps({"template_id": "hi_res_partition"}),
                input_files=[
                    shared.InputFiles(
                        content=b"%PDF-1.7", file_name="a.pdf", content_type="application/pdf"
                    ),
                    shared.InputFiles(content=b"hello", file_name="b.txt"),
                ],
            )
        )
    )
    job = created.job_information
    assert job is not None and job.job_type == shared.WorkflowJobType.TEMPLATE
    (emulated,) = emu.jobs.values()
    assert [(f.field_name, f.filename) for f in emulated.files] == [
        ("input_files[]", "a.pdf"),
        ("input_files[]", "b.txt"),
    ]
    # urlencoded, without files: the SDK's form when input_files is left out
    bare = sdk.jobs.create_job(
        request=operations.CreateJobRequest(
            body_create_job=shared.BodyCreateJob(request_data=json.dumps({"template_id": "t"}))
        )
    )
    assert bare.job_information is not None and bare.job_information.input_file_ids is None
    emu.advance(job.id, steps=2)
    got = sdk.jobs.get_job(request=operations.GetJobRequest(job_id=job.id))
    assert got.job_information is not None
    assert got.job_information.status == shared.JobStatus.COMPLETED
    listed = sdk.jobs.list_jobs(request=operations.ListJobsRequest(status="COMPLETED"))
    assert [j.id for j in listed.response_list_jobs or []] == [job.id]
    details = sdk.jobs.get_job_details(request=operations.GetJobDetailsRequest(job_id=job.id))
    assert details.job_details is not None and details.job_details.node_stats
    failed = sdk.jobs.get_job_failed_files(
        request=operations.GetJobFailedFilesRequest(job_id=job.id)
    )
    assert failed.job_failed_files is not None and failed.job_failed_files.failed_files == []
    output = sdk.jobs.download_job_output(
        request=operations.DownloadJobOutputRequest(job_id=job.id, file_id="a.pdf")
    )
    assert output.status_code == 200 and output.any is not None
    cancelled = sdk.jobs.cancel_job(
        request=operations.CancelJobRequest(job_id=bare.job_information.id)
    )
    assert cancelled.status_code == 200
    assert emu.jobs[bare.job_information.id].status == "STOPPED"


def test_the_sdk_meets_the_published_limits() -> None:
    """Against the limit-enforcing emulator the SDK still works, and sees each refusal as the
    service would send it: 429 with Retry-After, 413 naming the file, 402 for the quota."""
    from unstructured_jobs.testing import EmulatorLimits, FakeClock

    clock = FakeClock(1000.0)
    limits = EmulatorLimits.published(max_file_size=10)
    emulator = Emulator(clock=clock, limits=limits)
    with emulator.running_in_thread() as emu, httpx.Client(trust_env=False) as http:
        root_level = logging.getLogger().level
        sdk = UnstructuredClient(
            api_key_auth=emu.api_key,
            server_url=emu.url,
            client=http,
            retry_config=RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False),
        )
        logging.getLogger().setLevel(root_level)

        def create(*files: tuple[str, bytes]) -> operations.CreateJobResponse:
            body = shared.BodyCreateJob(
                request_data=json.dumps({"template_id": "hi_res_partition"}),
                input_files=[shared.InputFiles(content=c, file_name=n) for n, c in files],
            )
            return sdk.jobs.create_job(request=operations.CreateJobRequest(body_create_job=body))

        assert create(("a.pdf", b"small")).job_information is not None
        with pytest.raises(errors.SDKError) as refused:
            create(("b.pdf", b"small"))
        assert refused.value.status_code == 429
        assert refused.value.raw_response.headers["Retry-After"] == "1"
        clock.advance(1.0)
        with pytest.raises(errors.SDKError) as too_big:
            create(("big.pdf", b"x" * 11))
        assert too_big.value.status_code == 413 and "big.pdf" in too_big.value.body
        assert create(("c.pdf", b"small")).job_information is not None
        emu.set_quota(0)
        clock.advance(1.0)
        with pytest.raises(errors.SDKError) as spent:
            create(("d.pdf", b"small"))
        assert spent.value.status_code == 402
        assert json.loads(spent.value.body) == {"detail": "Insufficient API quota"}
    assert len(emu.jobs) == 2
