"""Mistakes a user's type checker must catch (CI: ``mypy --strict --warn-unused-ignores``).

Each ``type: ignore[code]`` below must be needed: if the package's signatures stopped
catching the mistake, mypy would report the ignore as unused and CI would fail.
"""

from __future__ import annotations

from unstructured_jobs import (
    AsyncJobsClient,
    JobInformation,
    JobRun,
    JobsClient,
    TemplateDetail,
    Workflow,
)
from unstructured_jobs.batch import run_batch, submit_batch


async def a_sync_client_passed_to_submit_batch(client: JobsClient) -> None:
    await submit_batch(client, ["docs/"], template_id="t")  # type: ignore[arg-type]


def a_misspelt_batch_option() -> None:
    run_batch(["docs/"], template_idd="t")  # type: ignore[call-arg]


def a_batch_option_of_the_wrong_type() -> None:
    run_batch(["docs/"], template_id="t", files_per_job="10")  # type: ignore[arg-type]


def a_session_given_to_the_sync_client(session: object) -> None:
    JobsClient(session=session)  # type: ignore[arg-type]


def a_misspelt_client_option() -> None:
    AsyncJobsClient(max_retry=3)  # type: ignore[call-arg]


def what_is_right(client: JobsClient) -> None:
    run_batch(["docs/"], client=client, template_id="t", files_per_job=10, wait=False)
    client.call_async(submit_batch, ["docs/"], template_id="t")


def raw_responses_keep_the_record_type(client: JobsClient) -> None:
    job: JobInformation = client.with_raw_response.get_job("id").parse()
    status: int = client.with_raw_response.get_job("id").status
    wrong: int = client.with_raw_response.get_job("id").parse()  # type: ignore[assignment]
    client.with_raw_response.get_job(job_idd="id")  # type: ignore[call-arg]
    del job, status, wrong


async def async_raw_responses_keep_the_record_type(client: AsyncJobsClient) -> None:
    raw = await client.with_raw_response.list_jobs()
    jobs: list[JobInformation] = raw.parse()
    one: JobInformation = raw.parse()  # type: ignore[assignment]
    del jobs, one


def a_misspelt_option_of_a_copy(client: AsyncJobsClient) -> None:
    client.with_options(max_retry=1)  # type: ignore[call-arg]


def the_new_calls_are_typed_on_the_blocking_client(client: JobsClient) -> None:
    template: TemplateDetail = client.get_template("hi_res_partition")
    workflows: list[Workflow] = client.list_workflows(page=1, sort_direction="desc")
    client.list_workflows(sort_direction="up")  # type: ignore[arg-type]
    client.list_workflows(pagesize=10)  # type: ignore[call-arg]
    run: JobRun = client.run_job(template_id=template.id, input_files=["a.pdf"])
    elements: list[Workflow] = client.run_job(template_id="t")  # type: ignore[assignment]
    del template, workflows, run, elements
