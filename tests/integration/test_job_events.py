"""Job events (issue 22, item 3) against the emulator over loopback: notification channels in
both scopes, the event feed with its cursors and read state, webhook deliveries to a receiver
on 127.0.0.1, and the write-only signing secret that never shows."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from aiohttp import web

from unstructured_jobs import (
    AmbiguousRequestError,
    AsyncJobsClient,
    BadRequestError,
    ChannelType,
    InvalidIdError,
    InvalidInputError,
    JobEventType,
    JobsClient,
    JobStatus,
    NotFoundError,
    NotificationChannel,
    NotificationEvent,
    ResponseValidationError,
    Secret,
    UnprocessableEntityError,
)
from unstructured_jobs._converter import structure
from unstructured_jobs.testing import Emulator, FakeClock, Fault, Schedule

SECRET = "whsec-this-is-a-long-enough-secret-42"  # 36 ASCII characters
FILES = [("a.pdf", b"%PDF a")]
ALL_TYPES = [t.value for t in JobEventType]


@asynccontextmanager
async def emulated() -> AsyncIterator[tuple[Emulator, AsyncJobsClient]]:
    async with (
        Emulator(schedule=Schedule.manual()) as emu,
        AsyncJobsClient(emu.api_key, emu.url, clock=FakeClock()) as client,
    ):
        yield emu, client


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every delivery (headers and JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self._arrived = anyio.Event()
        self._want = 0
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        if len(self.received) >= self._want:
            self._arrived.set()
        return web.Response(status=204)

    async def wait_for(self, count: int) -> list[Any]:
        """The first `count` bodies, once they came (a generous guard against a hang)."""
        self._want = count
        if len(self.received) < count:
            self._arrived = anyio.Event()
            with anyio.fail_after(60):
                await self._arrived.wait()
        return [body for _, body in self.received]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield self
        finally:
            await runner.cleanup()


async def test_workspace_channel_create_get_list_update_delete() -> None:
    async with emulated() as (emu, client):
        created = await client.create_notification_channel(
            url="http://127.0.0.1:9/hook",
            event_types=["job.completed", JobEventType.FAILED],
            secret=SECRET,
            description="on-call",
        )
        assert isinstance(created, NotificationChannel)
        assert created.id.startswith("ep_") and created.channel_type is ChannelType.WEBHOOK
        assert created.event_types == (JobEventType.COMPLETED, JobEventType.FAILED)
        assert created.enabled and created.url == "http://127.0.0.1:9/hook"
        assert created.description == "on-call" and created.created_at.tzinfo is not None
        assert SECRET not in repr(created) and "secret" not in created.unparsed

        assert await client.get_notification_channel(created.id) == created
        listed = await client.list_notification_channels(channel_type="webhook")
        assert [c.id for c in listed] == [created.id]
        assert await client.list_notification_channels(channel_type=ChannelType.EMAIL) == []
        assert await client.list_notification_channels(channel_type="webhook", enabled=False) == []

        updated = await client.update_notification_channel(
            created.id, event_types=["job.scheduled"], enabled=False, secret="x" * 24
        )
        assert updated.event_types == (JobEventType.SCHEDULED,) and not updated.enabled
        assert updated.url == created.url  # not sent, not changed
        creates = [r for r in emu.requests if r.method == "POST"]
        assert [r.status for r in creates] == [201]

        await client.delete_notification_channel(created.id)
        with pytest.raises(NotFoundError):
            await client.get_notification_channel(created.id)
        with pytest.raises(NotFoundError):
            await client.delete_notification_channel(created.id)


async def test_a_workflow_channel_lives_in_its_workflow_scope_only() -> None:
    async with emulated() as (emu, client):
        workflow = emu.add_workflow("nightly")
        channel = await client.create_notification_channel(
            url="https://127.0.0.1/hook", event_types=ALL_TYPES, workflow_id=workflow
        )
        assert emu.requests[-1].path == (f"/api/v1/workflows/{workflow}/notifications/channels")
        scoped = await client.list_notification_channels(
            channel_type="webhook", workflow_id=workflow
        )
        assert [c.id for c in scoped] == [channel.id]
        assert await client.list_notification_channels(channel_type="webhook") == []
        assert (await client.get_notification_channel(channel.id, workflow_id=workflow)) == channel
        with pytest.raises(NotFoundError):  # not a workspace channel
            await client.get_notification_channel(channel.id)
        changed = await client.update_notification_channel(
            channel.id, workflow_id=workflow, description="d"
        )
        assert changed.description == "d"
        await client.delete_notification_channel(channel.id, workflow_id=workflow)
        with pytest.raises(NotFoundError):  # an unknown workflow
            await client.create_notification_channel(
                url="https://127.0.0.1/x",
                event_types=ALL_TYPES,
                workflow_id="00000000-0000-4000-8000-000000000000",
            )


async def test_an_email_channel_is_enabled_by_its_verification_code() -> None:
    async with emulated() as (emu, client):
        channel = await client.create_notification_channel(
            recipient_email="ops@example.com", cc=["b@example.com"], event_types=["job.failed"]
        )
        assert channel.channel_type is ChannelType.EMAIL and not channel.enabled
        assert channel.email_config is not None
        assert channel.email_config.recipient_email == "ops@example.com"
        assert channel.email_config.cc == ("b@example.com",)
        code = emu.notifications.verification_code(channel.id)
        wrong = "000000" if code != "000000" else "111111"
        with pytest.raises(BadRequestError):
            await client.verify_notification_channel(channel.id, wrong)
        await client.verify_notification_channel(channel.id, code)
        assert (await client.get_notification_channel(channel.id)).enabled
        raw = await client.with_raw_response.verify_notification_channel(channel.id, code)
        assert raw.status == 204 and raw.parse() is None


async def test_bad_input_is_refused_before_anything_is_sent() -> None:
    async with emulated() as (emu, client):
        hook = "https://127.0.0.1/hook"
        cases: list[dict[str, Any]] = [
            {"url": hook, "event_types": ["job.complete"]},  # a typo
            {"url": hook, "event_types": []},
            {"url": hook, "event_types": "job.failed"},
            {"url": "http://example.com/hook", "event_types": ALL_TYPES},  # plain http, remote
            {"url": "ftp://127.0.0.1/x", "event_types": ALL_TYPES},
            {"event_types": ALL_TYPES},  # neither url nor recipient_email
            {"url": hook, "recipient_email": "a@b.co", "event_types": ALL_TYPES},
            {"url": hook, "event_types": ALL_TYPES, "secret": "short"},
            {"url": hook, "event_types": ALL_TYPES, "secret": "é" * 30},
            {"url": hook, "event_types": ALL_TYPES, "secret": "s" * 76},
            {"recipient_email": "not-an-address", "event_types": ALL_TYPES},
            {"recipient_email": "a@b.co", "event_types": ALL_TYPES, "secret": SECRET},
            {"url": hook, "event_types": ALL_TYPES, "description": "d" * 256},
        ]
        for kwargs in cases:
            with pytest.raises(InvalidInputError) as caught:
                await client.create_notification_channel(**kwargs)
            assert "short" not in str(caught.value) or "secret" in str(caught.value)
        with pytest.raises(InvalidInputError):
            await client.verify_notification_channel("ep_x", "12345")
        with pytest.raises(InvalidIdError):
            await client.get_notification_channel("..")
        with pytest.raises(InvalidInputError):
            await client.list_notifications(limit=101)
        with pytest.raises(InvalidInputError):
            await client.mark_notifications_read()
        with pytest.raises(InvalidInputError):
            await client.mark_notifications_read(notification_ids=["x"])
        with pytest.raises(InvalidInputError):
            await client.update_notification_channel("ep_x")
        assert emu.requests == []


async def test_an_event_type_the_client_does_not_know_is_sent_when_typed_as_one() -> None:
    async with emulated() as (_, client):
        channel = await client.create_notification_channel(
            url="https://127.0.0.1/h", event_types=[JobEventType("job.progress")]
        )
        [kept] = channel.event_types
        assert kept == "job.progress" and not kept.is_known


async def test_the_feed_records_each_status_change_and_is_paged_by_cursors() -> None:
    async with emulated() as (emu, client):
        workflow = emu.add_workflow("w")
        first = await client.create_job(template_id="t", input_files=FILES)
        emu.advance(first.id, steps=2)  # in progress, completed
        second = await client.run_workflow(workflow)
        emu.set_status(second.id, "FAILED")
        third = await client.create_job(template_id="t", input_files=FILES)
        await client.cancel_job(third.id)
        expected = [  # newest first
            (third.id, "job.stopped"),
            (third.id, "job.scheduled"),
            (second.id, "job.failed"),
            (second.id, "job.scheduled"),
            (first.id, "job.completed"),
            (first.id, "job.in_progress"),
            (first.id, "job.scheduled"),
        ]

        page = await client.list_notifications(limit=3)
        assert len(page.events) == 3 and page.next_cursor
        rest = await client.list_notifications(limit=3, cursor=page.next_cursor)
        last = await client.list_notifications(limit=3, cursor=rest.next_cursor)
        assert last.next_cursor is None
        paged = [*page.events, *rest.events, *last.events]
        assert [(e.job_id, e.event_type) for e in paged] == expected

        followed = [e async for e in client.iter_notifications(page_size=2)]
        assert followed == paged
        feed_calls = [r for r in emu.requests if r.path == "/api/v1/notifications"]
        assert len(feed_calls) == 3 + 4  # the three pages above, then 2+2+2+1 events

        failed = paged[2]
        assert isinstance(failed, NotificationEvent) and failed.workflow_id == workflow
        assert failed.job_status is JobStatus.FAILED and not failed.is_read
        assert failed.created_at.tzinfo is not None
        assert await client.get_notification(failed.id) == failed

        only = [e async for e in client.iter_notifications(event_types=["job.scheduled"])]
        assert [e.job_id for e in only] == [third.id, second.id, first.id]
        mine = [e async for e in client.iter_notifications(workflow_id=workflow)]
        assert {e.job_id for e in mine} == {second.id}
        later = [
            e async for e in client.iter_notifications(since=datetime.now(UTC) + timedelta(hours=1))
        ]
        assert later == []
        emu.reset()  # events go with the jobs
        assert (await client.list_notifications()).events == ()


async def test_read_state_unread_count_and_mark_read() -> None:
    async with emulated() as (emu, client):
        job = await client.create_job(template_id="t", input_files=FILES)
        emu.advance(job.id, steps=2)
        assert (await client.get_unread_notification_count()).unread_count == 3
        newest, middle, oldest = [e async for e in client.iter_notifications()]
        marked = await client.mark_notifications_read(notification_ids=[newest.id])
        assert marked.marked_count == 1
        again = await client.mark_notifications_read(notification_ids=[newest.id])
        assert again.marked_count == 0  # already read
        assert (await client.get_notification(newest.id)).is_read
        unread = [e.id async for e in client.iter_notifications(unread_only=True)]
        assert unread == [middle.id, oldest.id]
        assert (await client.get_unread_notification_count()).unread_count == 2
        other = client.with_options(api_key="someone-else")  # read state is per user
        assert (await other.get_unread_notification_count()).unread_count == 3
        everything = await client.mark_notifications_read(mark_all=True)
        assert everything.marked_count == 2
        assert (await client.get_unread_notification_count()).unread_count == 0
        with pytest.raises(NotFoundError):
            await client.get_notification("00000000-0000-4000-8000-000000000000")


async def test_a_server_that_repeats_a_cursor_is_not_followed_for_ever() -> None:
    async with emulated() as (emu, client):
        job = await client.create_job(template_id="t", input_files=FILES)
        emu.advance(job.id, steps=2)
        body = json.dumps({"events": [], "next_cursor": "same"}).encode()
        emu.inject(
            Fault.raw(200, body),
            method="GET",
            path="/api/v1/notifications",
            times=None,
        )
        with pytest.raises(ResponseValidationError, match="cursor"):
            async for _ in client.iter_notifications():
                pass


async def test_webhook_channels_receive_the_events_of_their_scope_and_types() -> None:
    async with (
        Receiver().running() as everything,
        Receiver().running() as failures,
        Receiver().running() as scoped,
        emulated() as (emu, client),
    ):
        workflow = emu.add_workflow("w")
        await client.create_notification_channel(
            url=everything.url, event_types=ALL_TYPES, secret=SECRET
        )
        await client.create_notification_channel(url=failures.url, event_types=["job.failed"])
        await client.create_notification_channel(
            url=scoped.url, event_types=ALL_TYPES, workflow_id=workflow
        )
        job = await client.create_job(template_id="t", input_files=FILES)
        emu.advance(job.id, steps=2)
        run = await client.run_workflow(workflow)
        emu.set_status(run.id, "FAILED")

        bodies = await everything.wait_for(5)
        events = [structure(b, NotificationEvent) for b in bodies]
        assert [(e.job_id, e.event_type) for e in events] == [
            (job.id, "job.scheduled"),
            (job.id, "job.in_progress"),
            (job.id, "job.completed"),
            (run.id, "job.scheduled"),
            (run.id, "job.failed"),
        ]
        feed = [e async for e in client.iter_notifications()]
        assert [e.id for e in reversed(feed)] == [e.id for e in events]  # the same events

        assert [b["payload"]["job_id"] for b in await failures.wait_for(1)] == [run.id]
        assert [b["event_type"] for b in await scoped.wait_for(2)] == [
            "job.scheduled",
            "job.failed",
        ]
        headers, _ = everything.received[0]
        assert headers["Content-Type"].startswith("application/json")
        assert not [h for h in headers if "signature" in h.lower()]  # unsigned: see the README
        assert all(SECRET not in json.dumps(r) for r in everything.received)
        # Recorded once the receiver answered (the last one may still be on its way back).
        delivered = emu.notifications.deliveries()
        assert delivered and {d.status for d in delivered} == {204}
        assert {d.event_id for d in delivered} <= {e.id for e in events}


async def test_webhooks_follow_the_automatic_schedule_without_anyone_polling() -> None:
    async with Receiver().running() as receiver, Emulator() as emu:
        async with AsyncJobsClient(emu.api_key, emu.url) as client:
            await client.create_notification_channel(
                url=receiver.url, event_types=["job.completed"]
            )
            job = await client.create_job(template_id="t", input_files=FILES)
        [body] = await receiver.wait_for(1)  # the client is closed: nobody reads the job
        assert body["payload"] == {"job_id": job.id, "status": "COMPLETED"}


async def test_the_emulator_refuses_a_webhook_beyond_loopback() -> None:
    async with emulated() as (emu, client):
        with pytest.raises(UnprocessableEntityError, match=r"127\.0\.0\.1"):
            await client.create_notification_channel(
                url="https://hooks.example.com/x", event_types=ALL_TYPES
            )
        assert emu.notifications.deliveries() == []


async def test_the_secret_never_shows_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def hook(event: Any) -> None:
        seen.append(repr(event))

    async with emulated() as (emu, plain):
        client = plain.with_options(event_hooks={"request": [hook], "response": [hook]})
        emu.inject(Fault.status(500), method="POST", times=None)
        with pytest.raises(Exception) as failed:
            await client.create_notification_channel(
                url="https://127.0.0.1/h", event_types=ALL_TYPES, secret=SECRET
            )
        emu.clear_faults()
        with pytest.raises(NotFoundError) as refused:
            await client.update_notification_channel("ep_missing", secret=Secret(SECRET))
        with pytest.raises(InvalidInputError) as invalid:
            await client.create_notification_channel(
                url="https://127.0.0.1/h", event_types=ALL_TYPES, secret=SECRET + "é"
            )
        texts = [str(failed.value), repr(failed.value), str(refused.value), str(invalid.value)]
        texts += [caplog.text, *seen, repr(Secret(SECRET))]
        # What a locals-capturing reporter (pytest -l, Sentry) shows of each error's frames.
        texts += [shown(e.value) for e in (failed, refused, invalid)]
        assert " = " in texts[-1]  # locals were captured: the check means something
        assert not [t for t in texts if SECRET in t]


def shown(exc: BaseException) -> str:
    report = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "".join(report.format())


def test_the_secret_is_not_in_the_locals_of_a_blocking_call_that_failed() -> None:
    with (
        Emulator(schedule=Schedule.manual()).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url, max_retries=0) as client,
    ):
        emu.inject(Fault.status(503), method="POST")
        with pytest.raises(Exception) as failed:
            client.create_notification_channel(
                url="https://127.0.0.1/h", event_types=ALL_TYPES, secret=SECRET
            )
        text = shown(failed.value)
        assert " = " in text and SECRET not in text


def test_the_blocking_client_creates_channels_and_follows_the_feed() -> None:
    with (
        Emulator(schedule=Schedule.manual()).running_in_thread() as emu,
        JobsClient(emu.api_key, emu.url) as client,
    ):
        channel = client.create_notification_channel(
            url="https://127.0.0.1/h", event_types=ALL_TYPES, secret=SECRET
        )
        raw = client.with_raw_response.get_notification_channel(channel.id)
        assert raw.status == 200 and raw.parse() == channel
        for _ in range(3):
            client.create_job(template_id="t", input_files=FILES)
        events = list(client.iter_notifications(page_size=2))
        assert [e.event_type for e in events] == ["job.scheduled"] * 3
        assert client.get_unread_notification_count().unread_count == 3
        deleted = client.with_raw_response.delete_notification_channel(channel.id)
        assert deleted.status == 204 and deleted.parse() is None


async def test_a_create_whose_answer_is_lost_is_not_sent_again() -> None:
    async with emulated() as (emu, client):
        emu.inject(Fault.drop_after(), method="POST", path="/api/v1/notifications/channels")
        with pytest.raises(AmbiguousRequestError):
            await client.create_notification_channel(
                url="https://127.0.0.1/h", event_types=ALL_TYPES
            )
        posts = [r for r in emu.requests if r.method == "POST"]
        assert len(posts) == 1  # applied once, not retried
        assert len(await client.list_notification_channels(channel_type="webhook")) == 1
