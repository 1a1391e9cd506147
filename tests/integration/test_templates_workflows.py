"""Templates and the read side of workflows (issue 13, items 1, 2 and 6), against the emulator
over loopback: the records, the filters and paging, ids, typed errors, retries, raw responses,
the blocking twins, and the emulator's own answers (driven by raw aiohttp)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from unstructured_jobs import (
    AsyncJobsClient,
    InvalidIdError,
    InvalidInputError,
    JobsClient,
    JobStatus,
    NotFoundError,
    Template,
    TemplateDetail,
    Workflow,
    WorkflowJobType,
    WorkflowState,
    WorkflowType,
)
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

TEMPLATES = "/api/v1/templates/"
WORKFLOWS = "/api/v1/workflows/"
SRC = "f1f7b1b2-8e4b-4a2b-8f1d-3e3c7c9e5a3c"
DST = "aeebecc7-9d8e-4625-bf1d-815c2f084869"
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(schedule=Schedule.manual()) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncJobsClient]:
    async with AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as c:
        yield c


def add_three(emu: Emulator) -> tuple[str, str, str]:
    day = datetime(2026, 3, 1, tzinfo=UTC)
    a = emu.add_workflow("Nightly invoices", sources=[SRC], destinations=[DST], created_at=day,
                         schedule=["0 0 * * *"], workflow_type="advanced")  # fmt: skip
    b = emu.add_workflow("contracts", status="inactive", created_at=day + timedelta(days=1))
    c = emu.add_workflow("Invoices backfill", sources=[SRC], created_at=day + timedelta(days=2),
                         nodes=[{"name": "VLM", "type": "partition", "subtype": "vlm"}])  # fmt: skip
    return a, b, c


# ---------------------------------------------------------------- templates


async def test_list_and_get_templates(emu: Emulator, client: AsyncJobsClient) -> None:
    templates = await client.list_templates()
    assert all(type(t) is Template for t in templates)
    ids = [t.id for t in templates]
    assert {"hi_res_partition", "hi_res_and_enrichment"} <= set(ids)
    first = templates[ids.index("hi_res_partition")]
    assert first.name and first.description and first.version and first.last_updated
    detail = await client.get_template("hi_res_and_enrichment")
    assert isinstance(detail, TemplateDetail) and detail.id == "hi_res_and_enrichment"
    assert detail.nodes[0].type == "partition" and detail.nodes[0].settings is not None
    assert detail.nodes[0].settings["strategy"] == "hi_res"
    assert len(detail.nodes) > 1 and all(n.id and n.subtype for n in detail.nodes)
    assert [r.path for r in emu.requests] == [TEMPLATES, f"{TEMPLATES}hi_res_and_enrichment"]


async def test_an_unknown_template_is_not_found(emu: Emulator, client: AsyncJobsClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.get_template("no_such_template")
    assert info.value.status == 404 and "no_such_template" in str(info.value.detail)


async def test_template_ids_are_percent_encoded_as_one_segment(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    with pytest.raises(NotFoundError):
        await client.get_template("../jobs/x?y=1#z")
    (seen,) = emu.requests
    assert seen.raw_path == "/api/v1/templates/..%2Fjobs%2Fx%3Fy=1%23z"  # "=" needs no escape


@pytest.mark.parametrize("bad", ["", "   ", ".", "..", None, 5])
async def test_bad_template_ids_are_refused_before_sending(
    emu: Emulator, client: AsyncJobsClient, bad: Any
) -> None:
    with pytest.raises(InvalidIdError):
        await client.get_template(bad)
    assert emu.requests == []


async def test_templates_are_read_with_retries_and_in_the_wrapped_form(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    emu.inject(Fault.status(503, retry_after="2"), method="GET", path=TEMPLATES)
    emu.inject(Fault.drop_before(), method="GET", path=f"{TEMPLATES}hi_res_partition")
    assert [t.id for t in await client.list_templates()]
    assert (await client.get_template("hi_res_partition")).nodes
    # Some versions of the API wrap the answer: {"templates": [...]} / {"template": {...}}.
    item = {"id": "x", "name": "X", "description": "", "version": "1", "last_updated": "now"}
    emu.inject(Fault.raw(200, json.dumps({"templates": [item]}).encode()), path=TEMPLATES)
    assert [t.id for t in await client.list_templates()] == ["x"]
    wrapped = {"template": {**item, "nodes": []}}
    emu.inject(Fault.raw(200, json.dumps(wrapped).encode()), path=f"{TEMPLATES}x")
    assert (await client.get_template("x")).nodes == ()


async def test_a_template_job_runs_its_nodes_and_says_template(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    job = await client.create_job(
        template_id="hi_res_and_enrichment", input_files=[("a.pdf", b"%")]
    )
    assert job.job_type is WorkflowJobType.TEMPLATE
    assert job.workflow_name == "High Resolution and Enrichment"
    template = await client.get_template("hi_res_and_enrichment")
    details = await client.get_job_details(job.id)
    assert [n.node_name for n in details.node_stats] == [n.name for n in template.nodes] + [
        "Destination"
    ]
    custom = await client.create_job(job_nodes=[{"name": "P", "type": "partition", "subtype": "x"}])
    assert custom.job_type is WorkflowJobType.EPHEMERAL


# ---------------------------------------------------------------- workflows


async def test_list_and_get_workflows(emu: Emulator, client: AsyncJobsClient) -> None:
    a, b, c = add_three(emu)
    workflows = await client.list_workflows()
    assert sorted(w.id for w in workflows) == sorted([a, b, c])
    nightly = await client.get_workflow(a)
    assert isinstance(nightly, Workflow)
    assert (nightly.id, nightly.name, nightly.status) == (
        a,
        "Nightly invoices",
        WorkflowState.ACTIVE,
    )
    assert (nightly.sources, nightly.destinations) == ((SRC,), (DST,))
    assert nightly.workflow_type is WorkflowType.ADVANCED
    assert nightly.schedule is not None
    assert [e.cron_expression for e in nightly.schedule.crontab_entries] == ["0 0 * * *"]
    assert nightly.created_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert nightly.updated_at is not None and nightly.reprocess_all is False
    assert nightly.workflow_nodes[0].type == "partition" and nightly.workflow_nodes[0].id
    assert (await client.get_workflow(c)).workflow_nodes[0].subtype == "vlm"
    assert nightly in workflows


async def test_workflow_filters_sorting_and_paging(emu: Emulator, client: AsyncJobsClient) -> None:
    a, b, c = add_three(emu)

    async def ids(**filters: Any) -> list[str]:
        return [w.id for w in await client.list_workflows(**filters)]

    assert await ids(status="inactive") == [b]
    assert await ids(status=WorkflowState.ACTIVE, sort_by="created_at") == [a, c]
    assert await ids(name="invoices", sort_by="name") == [c, a]
    assert await ids(source_id=SRC, sort_by="created_at", sort_direction="desc") == [c, a]
    assert await ids(destination_id=DST) == [a]
    since = datetime(2026, 3, 2)  # naive: UTC
    assert await ids(created_since=since, sort_by="created_at") == [b, c]
    assert await ids(created_before=since) == [a]
    assert await ids(sort_by="created_at", page=1, page_size=2) == [a, b]
    assert await ids(sort_by="created_at", page=2, page_size=2) == [c]
    assert await ids(page=3, page_size=2) == []
    assert await ids(show_only_soft_deleted=True) == []
    assert await ids(show_recommender_workflows=False, sort_by="created_at") == [a, b, c]
    node_id = emu.workflows[c]["workflow_nodes"][0]["id"]
    assert await ids(dag_node_configuration_id=node_id) == [c]
    queries = [r.query for r in emu.requests if r.path == WORKFLOWS]
    assert queries[3] == {"source_id": SRC, "sort_by": "created_at", "sort_direction": "desc"}
    assert queries[5]["created_since"] == "2026-03-02T00:00:00Z"
    assert queries[10]["show_only_soft_deleted"] == "true"


@pytest.mark.parametrize(
    "bad",
    [
        {"page": 0},
        {"page": "2"},
        {"page": True},
        {"page_size": -1},
        {"status": ""},
        {"status": 3},
        {"name": ""},
        {"sort_by": ""},
        {"sort_direction": "up"},
        {"source_id": "not-a-uuid"},
        {"destination_id": ""},
        {"created_since": "2026-01-01"},
        {"show_only_soft_deleted": "yes"},
        {"dag_node_configuration_id": " "},
    ],
)
async def test_bad_workflow_filters_are_refused_before_sending(
    emu: Emulator, client: AsyncJobsClient, bad: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError):
        await client.list_workflows(**bad)
    assert emu.requests == []


async def test_workflow_ids_are_checked_and_unknown_ones_not_found(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    with pytest.raises(InvalidIdError):
        await client.get_workflow("../templates/x")
    assert emu.requests == []
    with pytest.raises(NotFoundError) as info:
        await client.get_workflow(MISSING)
    assert info.value.detail == "Workflow not found"


async def test_workflows_are_read_with_retries(emu: Emulator, client: AsyncJobsClient) -> None:
    (a, *_) = add_three(emu)
    emu.inject(Fault.status(502), method="GET", path=WORKFLOWS)
    emu.inject(Fault.status(429, retry_after="1"), method="GET", path=f"{WORKFLOWS}{a}")
    assert len(await client.list_workflows()) == 3
    assert (await client.get_workflow(a)).id == a
    assert [r.status for r in emu.requests] == [502, 200, 429, 200]


async def test_one_odd_workflow_does_not_fail_the_list(
    emu: Emulator, client: AsyncJobsClient
) -> None:
    (a, *_) = add_three(emu)
    good = emu.workflows[a]
    odd = {**good, "id": "2", "workflow_type": None, "schedule": "weekly", "updated_at": ""}
    emu.inject(Fault.raw(200, json.dumps([good, odd]).encode()), path=WORKFLOWS)
    first, second = await client.list_workflows()
    assert first.unparsed == {} and second.workflow_type is None
    assert (second.schedule, second.updated_at) == (None, None)
    assert second.unparsed == {"schedule": "weekly", "updated_at": ""}


async def test_running_an_added_workflow(emu: Emulator, client: AsyncJobsClient) -> None:
    a, _, c = add_three(emu)
    job = await client.run_workflow(a, input_files=[("a.pdf", b"%PDF")])
    assert (job.workflow_id, job.workflow_name) == (a, "Nightly invoices")
    assert job.job_type is WorkflowJobType.SCHEDULED  # it has a schedule
    other = await client.run_workflow(c)
    assert other.job_type is WorkflowJobType.PERSISTENT
    details = await client.get_job_details(other.id)
    assert [n.node_name for n in details.node_stats] == ["VLM", "Destination"]
    assert [j.id for j in await client.list_jobs(workflow_id=a)] == [job.id]
    emu.advance(job.id, steps=2)
    assert (await client.get_job(job.id)).status is JobStatus.COMPLETED


async def test_raw_responses(emu: Emulator, client: AsyncJobsClient) -> None:
    (a, *_) = add_three(emu)
    raw = await client.with_raw_response.list_templates()
    assert raw.status == 200 and raw.parse()[0].id
    assert (await client.with_raw_response.get_template("hi_res_partition")).parse().nodes
    assert len((await client.with_raw_response.list_workflows(page_size=1)).parse()) == 1
    assert (await client.with_raw_response.get_workflow(a)).parse().id == a


def test_the_blocking_twins() -> None:
    with Emulator().running_in_thread() as emu, JobsClient(emu.api_key, emu.url) as client:
        wid = emu.add_workflow("sync")
        assert "hi_res_partition" in [t.id for t in client.list_templates()]
        assert client.get_template("hi_res_partition").nodes
        assert [w.id for w in client.list_workflows(name="sync")] == [wid]
        assert client.get_workflow(wid).name == "sync"
        assert client.with_raw_response.get_workflow(wid).parse().id == wid


# ---------------------------------------------------------------- the emulator itself


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(emu.url, headers=emu.headers) as session:
        yield session


async def test_emulator_template_shapes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.get(TEMPLATES) as resp:
        listed = await resp.json()
    assert resp.status == 200 and all(
        set(t) == {"id", "name", "description", "version", "last_updated"} for t in listed
    )
    async with http.get(f"{TEMPLATES}hi_res_partition") as resp:
        one = await resp.json()
    assert set(one) == {"id", "name", "description", "version", "last_updated", "nodes"}
    assert all(set(n) == {"id", "name", "type", "subtype", "settings"} for n in one["nodes"])
    async with http.get(f"{TEMPLATES}nope") as resp:
        assert resp.status == 404 and (await resp.json())["detail"]
    async with aiohttp.ClientSession(emu.url) as anonymous, anonymous.get(TEMPLATES) as resp:
        assert resp.status == 401


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("page=0", "page"),
        ("page_size=x", "page_size"),
        ("status=paused", "status"),
        ("sort_direction=up", "sort_direction"),
        ("sort_by=colour", "sort_by"),
        ("source_id=nope", "source_id"),
        ("created_since=yesterday", "created_since"),
        ("show_only_soft_deleted=maybe", "show_only_soft_deleted"),
    ],
)
async def test_emulator_refuses_bad_workflow_queries_with_422(
    http: aiohttp.ClientSession, query: str, loc: str
) -> None:
    async with http.get(f"{WORKFLOWS}?{query}") as resp:
        assert resp.status == 422
        (item,) = (await resp.json())["detail"]
    assert item["loc"] == ["query", loc]


async def test_emulator_workflow_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    wid = emu.add_workflow("w")
    async with http.get(f"{WORKFLOWS}{wid}") as resp:
        body = await resp.json()
    assert set(body) == {
        "id", "name", "sources", "destinations", "status", "created_at", "updated_at",
        "workflow_nodes", "reprocess_all", "schedule", "workflow_type",
    }  # fmt: skip
    async with http.get(f"{WORKFLOWS}not-a-uuid") as resp:
        assert resp.status == 422
    emu.reset()
    assert emu.workflows == {}
    with pytest.raises(ValueError):
        emu.add_workflow("")
    with pytest.raises(ValueError):
        emu.add_workflow("x", status="paused")
