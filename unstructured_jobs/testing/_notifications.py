"""Job events in the emulator: notification channels, the event feed, webhook deliveries.

Shapes follow the vendor's pages (``api-reference/api/notification/*``, the platform's OpenAPI
for channels and the feed); docs/emulator.md ("Job events") lists what is the emulator's own
choice. In short:

- channels are kept per scope (the workspace, or one workflow of the catalog); ids look like
  the docs' ``ep_...``; an email channel is created disabled and enabled by verifying it with
  the code `Notifications.verification_code` gives (no email is sent);
- each status change of a job appends an event (``job.scheduled`` ... ``job.failed``) to the
  feed, newest first, with opaque cursors, and read state per API key;
- each event goes to every enabled webhook channel whose scope and event types match: the
  emulator POSTs the event's JSON to the channel's URL, which must be on 127.0.0.1 (any other
  host is refused when the channel is created or updated, and again before sending), so tests
  never reach beyond loopback. Deliveries are **unsigned**: the docs do not say how the
  service signs them, so the emulator sends no signature headers rather than a guessed one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import string
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ._state import JobStore, _utc_now

__all__ = ["Notifications", "WebhookDelivery"]

log = logging.getLogger("unstructured_jobs.testing")
Json = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EVENT_TYPES = (
    "job.scheduled",
    "job.in_progress",
    "job.progress",  # in the platform's OpenAPI enum, not in the pages; accepted, never sent
    "job.completed",
    "job.stopped",
    "job.failed",
)
DELIVERY_HOST = "127.0.0.1"
DELIVERY_TIMEOUT = 10.0
TICK = 0.05  # seconds between schedule refreshes while a webhook channel exists
_ID_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an event to a webhook channel (`Notifications.deliveries`)."""

    channel_id: str
    url: str
    event_id: str
    event_type: str
    status: int | None
    """The receiver's HTTP status (None when the POST failed: see `error`)."""
    error: str | None = None


@dataclass
class _Channel:
    id: str
    channel_type: str
    workflow_id: str | None
    event_types: list[str]
    enabled: bool
    created_at: str
    updated_at: str
    description: str | None = None
    url: str | None = None
    secret: str | None = field(default=None, repr=False)  # write-only, never answered
    email_config: Json | None = None
    code: str | None = field(default=None, repr=False)

    def view(self) -> Json:
        body: Json = {
            "channel_type": self.channel_type,
            "id": self.id,
            "description": self.description,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.channel_type == "webhook":
            body["url"] = self.url
        else:
            body["email_config"] = dict(self.email_config or {})
        return body


@dataclass
class _Event:
    seq: int
    id: str
    event_type: str
    workflow_id: str | None
    payload: Json
    created_at: str

    def view(self, read: bool) -> Json:
        return {
            "id": self.id,
            "event_type": self.event_type,
            "workflow_id": self.workflow_id,
            "payload": dict(self.payload),
            "created_at": self.created_at,
            "is_read": read,
        }


def _error(status: int, detail: Any) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _invalid(loc: list[str | int], msg: str, type_: str, value: Any = None) -> web.Response:
    return _error(422, [{"type": type_, "loc": loc, "msg": msg, "input": value}])


def _uuid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _when(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class Notifications:
    """The emulator's channels, event feed and webhook deliveries (one per emulator).

    Its public methods are safe to call from any thread while the emulator runs.
    """

    def __init__(
        self, store: JobStore, *, workflow_exists: Callable[[str], bool], key_header: str
    ) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._workflow_exists = workflow_exists
        self._key_header = key_header
        self._channels: dict[str, _Channel] = {}
        self._events: list[_Event] = []
        self._read: dict[str, set[str]] = {}
        self._deliveries: list[WebhookDelivery] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[_Channel, _Event]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        store.on_status = self._job_changed

    # -- what tests read ---------------------------------------------------------------------

    def verification_code(self, channel_id: str) -> str:
        """The 6-digit code that verifies an email channel (the service would email it)."""
        with self._lock:
            channel = self._channels[channel_id]
            if channel.code is None:
                raise KeyError(f"channel {channel_id} needs no verification")
            return channel.code

    def events(self) -> list[Json]:
        """Every event so far, oldest first, as the feed shows them (unread)."""
        with self._lock:
            return [e.view(False) for e in self._events]

    def deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST made so far, in order."""
        with self._lock:
            return list(self._deliveries)

    def clear(self) -> None:
        """Forget channels, events, read state and deliveries."""
        with self._lock:
            self._channels.clear()
            self._events.clear()
            self._read.clear()
            self._deliveries.clear()

    # -- events ------------------------------------------------------------------------------

    def _job_changed(self, job: Json) -> None:
        """`JobStore.on_status`: append the event and queue its webhook deliveries."""
        status = str(job["status"])
        with self._lock:
            event = _Event(
                seq=len(self._events),
                id=str(uuid.uuid4()),
                event_type="job." + status.lower(),
                workflow_id=job.get("workflow_id"),
                payload={"job_id": job["id"], "status": status},
                created_at=_utc_now(self._store.clock_offset),
            )
            self._events.append(event)
            targets = [
                c
                for c in self._channels.values()
                if c.channel_type == "webhook"
                and c.enabled
                and event.event_type in c.event_types
                and (c.workflow_id is None or c.workflow_id == event.workflow_id)
            ]
            loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return
        for channel in targets:
            with contextlib.suppress(RuntimeError):  # the loop closed: the emulator stopped
                loop.call_soon_threadsafe(queue.put_nowait, (channel, event))

    # -- delivery ----------------------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        """``on_startup``: the task that POSTs events, and the one that keeps the schedule
        moving while a webhook channel exists (statuses otherwise change only when read)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._deliver_all()),
            asyncio.create_task(self._tick()),
        ]

    async def stop(self, app: web.Application) -> None:
        """``on_cleanup``: stop delivering."""
        tasks, self._tasks = self._tasks, []
        self._loop = self._queue = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            with self._lock:
                hooked = any(c.channel_type == "webhook" for c in self._channels.values())
            if hooked:
                self._store.refresh()

    async def _deliver_all(self) -> None:
        queue = self._queue
        assert queue is not None
        timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            while True:
                channel, event = await queue.get()
                await self._deliver(session, channel, event)

    async def _deliver(
        self, session: aiohttp.ClientSession, channel: _Channel, event: _Event
    ) -> None:
        url = channel.url or ""
        status: int | None = None
        error: str | None = None
        if urlsplit(url).hostname != DELIVERY_HOST:  # checked on create; checked again here
            error = f"refused: the emulator delivers to {DELIVERY_HOST} only"
        else:
            body = event.view(False)
            try:
                async with session.post(
                    url,
                    json=body,
                    headers={"User-Agent": "unstructured-jobs-emulator"},
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log.warning("webhook delivery to %s failed: %s", url, error)
        with self._lock:
            self._deliveries.append(
                WebhookDelivery(channel.id, url, event.id, event.event_type, status, error)
            )

    # -- routes ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """The channel routes (both scopes) and the feed's."""
        r = app.router
        for base in ("/api/v1/notifications", "/api/v1/workflows/{workflow_id}/notifications"):
            r.add_post(base + "/channels", self.create_channel)
            r.add_get(base + "/channels", self.list_channels, allow_head=False)
            r.add_get(base + "/channels/{channel_id}", self.get_channel, allow_head=False)
            r.add_patch(base + "/channels/{channel_id}", self.update_channel)
            r.add_delete(base + "/channels/{channel_id}", self.delete_channel)
            r.add_post(base + "/channels/{channel_id}/verify", self.verify_channel)
        r.add_get("/api/v1/notifications", self.list_events, allow_head=False)
        r.add_get("/api/v1/notifications/unread-count", self.unread_count, allow_head=False)
        r.add_post("/api/v1/notifications/mark-read", self.mark_read)
        r.add_get("/api/v1/notifications/{notification_id}", self.get_event, allow_head=False)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)

    def _scope(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        raw = request.match_info.get("workflow_id")
        if raw is None:
            return None, None
        workflow_id = _uuid(raw)
        if workflow_id is None:
            return None, _invalid(
                ["path", "workflow_id"], "Input should be a valid UUID", "uuid_parsing", raw
            )
        if not self._workflow_exists(workflow_id):
            return None, _error(404, "Workflow not found")
        return workflow_id, None

    def _channel(self, request: web.Request) -> tuple[_Channel | None, web.Response | None]:
        workflow_id, error = self._scope(request)
        if error is not None:
            return None, error
        channel = self._channels.get(request.match_info["channel_id"])
        if channel is None or channel.workflow_id != workflow_id:
            return None, _error(404, "Channel not found")
        return channel, None

    async def _json(self, request: web.Request) -> Json | web.Response:
        try:
            data = await request.json()
        except ValueError:
            return _invalid(["body"], "JSON decode error", "json_invalid")
        if not isinstance(data, dict):
            return _invalid(["body"], "Input should be a valid dictionary", "dict_type", data)
        return data

    async def create_channel(self, request: web.Request) -> web.Response:
        """``POST .../notifications/channels``: 201 and the channel."""
        workflow_id, error = self._scope(request)
        if error is not None:
            return error
        data = await self._json(request)
        if isinstance(data, web.Response):
            return data
        kind = data.get("channel_type", "webhook")
        if kind not in ("webhook", "email"):
            return _invalid(
                ["body", "channel_type"], "Input should be 'webhook' or 'email'", "enum", kind
            )
        problem = _check_channel(data, kind, creating=True)
        if problem is not None:
            return problem
        now = _utc_now(self._store.clock_offset)
        channel = _Channel(
            id="ep_" + "".join(secrets.choice(_ID_CHARS) for _ in range(28)),
            channel_type=kind,
            workflow_id=workflow_id,
            event_types=list(dict.fromkeys(data["event_types"])),
            enabled=bool(data.get("enabled", True)),
            created_at=now,
            updated_at=now,
            description=data.get("description"),
        )
        if kind == "webhook":
            channel.url, channel.secret = data["url"], data.get("secret") or None
        else:
            config = data["email_config"]
            channel.email_config = {
                "recipient_email": config["recipient_email"],
                "cc": config.get("cc"),
                "reply_to": config.get("reply_to"),
                "provider": "emulator",
            }
            channel.enabled = False  # until verified
            channel.code = f"{secrets.randbelow(10**6):06d}"
        with self._lock:
            self._channels[channel.id] = channel
        return web.json_response(channel.view(), status=201)

    async def list_channels(self, request: web.Request) -> web.Response:
        """``GET .../notifications/channels?channel_type=&enabled=``: ``{"items": [...]}``."""
        workflow_id, error = self._scope(request)
        if error is not None:
            return error
        kind = request.query.get("channel_type")
        if kind not in ("webhook", "email"):
            msg = "Field required" if kind is None else "Input should be 'webhook' or 'email'"
            return _invalid(["query", "channel_type"], msg, "missing" if kind is None else "enum",
                            kind)  # fmt: skip
        enabled = request.query.get("enabled")
        if enabled not in (None, "true", "false"):
            return _invalid(["query", "enabled"], "Input should be a valid boolean",
                            "bool_parsing", enabled)  # fmt: skip
        with self._lock:
            items = [
                c.view()
                for c in self._channels.values()
                if c.workflow_id == workflow_id
                and c.channel_type == kind
                and (enabled is None or c.enabled == (enabled == "true"))
            ]
        return web.json_response({"items": items})

    async def get_channel(self, request: web.Request) -> web.Response:
        """``GET .../notifications/channels/{channel_id}``."""
        with self._lock:
            channel, error = self._channel(request)
            return error or web.json_response(channel.view() if channel else None)

    async def update_channel(self, request: web.Request) -> web.Response:
        """``PATCH .../notifications/channels/{channel_id}``: only the fields sent change."""
        data = await self._json(request)
        if isinstance(data, web.Response):
            return data
        with self._lock:
            channel, error = self._channel(request)
            if error is not None or channel is None:
                return error or _error(404, "Channel not found")
            kind = data.get("channel_type")
            if kind is not None and kind != channel.channel_type:
                return _error(400, "channel_type cannot be changed")
            problem = _check_channel(data, channel.channel_type, creating=False)
            if problem is not None:
                return problem
            if data.get("event_types") is not None:
                channel.event_types = list(dict.fromkeys(data["event_types"]))
            if data.get("enabled") is not None:
                channel.enabled = bool(data["enabled"]) and channel.code is None
            if "description" in data:
                channel.description = data["description"]
            if data.get("url") is not None:
                channel.url = data["url"]
            if data.get("secret") is not None:
                channel.secret = data["secret"] or None  # "" removes a custom secret
            config = data.get("email_config")
            if isinstance(config, dict) and channel.email_config is not None:
                channel.email_config.update({k: v for k, v in config.items() if v is not None})
            channel.updated_at = _utc_now(self._store.clock_offset)
            return web.json_response(channel.view())

    async def delete_channel(self, request: web.Request) -> web.Response:
        """``DELETE .../notifications/channels/{channel_id}``: 204."""
        with self._lock:
            channel, error = self._channel(request)
            if error is not None or channel is None:
                return error or _error(404, "Channel not found")
            del self._channels[channel.id]
        return web.Response(status=204)

    async def verify_channel(self, request: web.Request) -> web.Response:
        """``POST .../channels/{channel_id}/verify``: 204 once the code matches. Reads
        ``verification_code`` (the verify page) or ``code`` (the platform's OpenAPI)."""
        data = await self._json(request)
        if isinstance(data, web.Response):
            return data
        code = data.get("verification_code", data.get("code"))
        if not isinstance(code, str) or len(code) != 6 or not code.isdigit():
            return _invalid(["body", "verification_code"], "String should match pattern "
                            "'^\\d{6}$'", "string_pattern_mismatch", code)  # fmt: skip
        with self._lock:
            channel, error = self._channel(request)
            if error is not None or channel is None:
                return error or _error(404, "Channel not found")
            if channel.channel_type != "email":
                return _error(400, "Only email channels require verification")
            if channel.code is not None and not secrets.compare_digest(code, channel.code):
                return _error(400, "Invalid verification code")
            channel.code = None
            channel.enabled = True
        return web.Response(status=204)

    # -- the feed ----------------------------------------------------------------------------

    def _key(self, request: web.Request) -> str:
        return request.headers.get(self._key_header, "")

    async def list_events(self, request: web.Request) -> web.Response:
        """``GET /api/v1/notifications``: newest first, ``limit`` a page, ``next_cursor``."""
        q = request.query
        workflow_id = None
        if "workflow_id" in q:
            workflow_id = _uuid(q["workflow_id"])
            if workflow_id is None:
                return _invalid(["query", "workflow_id"], "Input should be a valid UUID",
                                "uuid_parsing", q["workflow_id"])  # fmt: skip
        types = None
        if q.get("event_types"):
            types = {t.strip() for t in q["event_types"].split(",") if t.strip()}
        since = None
        if "since" in q:
            since = _when(q["since"])
            if since is None:
                return _invalid(["query", "since"], "Input should be a valid datetime",
                                "datetime_parsing", q["since"])  # fmt: skip
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _invalid(["query", "limit"], "Input should be between 1 and 100",
                            "less_than_equal", q.get("limit"))  # fmt: skip
        unread = q.get("unread_only", "false")
        if unread not in ("true", "false"):
            return _invalid(["query", "unread_only"], "Input should be a valid boolean",
                            "bool_parsing", unread)  # fmt: skip
        below = len(self._events) + 1
        if "cursor" in q:
            decoded = _decode_cursor(q["cursor"])
            if decoded is None:
                return _error(400, "Invalid cursor")
            below = decoded
        self._store.refresh()
        key = self._key(request)
        with self._lock:
            read = self._read.get(key, set())
            chosen: list[_Event] = []
            more = False
            for event in reversed(self._events):
                if event.seq >= below:
                    continue
                if (
                    (workflow_id is not None and event.workflow_id != workflow_id)
                    or (types is not None and event.event_type not in types)
                    or (since is not None and (_when(event.created_at) or since) <= since)
                    or (unread == "true" and event.id in read)
                ):
                    continue
                if len(chosen) == limit:
                    more = True
                    break
                chosen.append(event)
            events = [e.view(e.id in read) for e in chosen]
        cursor = _encode_cursor(chosen[-1].seq) if more and chosen else None
        return web.json_response({"events": events, "next_cursor": cursor})

    async def unread_count(self, request: web.Request) -> web.Response:
        """``GET /api/v1/notifications/unread-count?workflow_id=``."""
        workflow_id = None
        if "workflow_id" in request.query:
            workflow_id = _uuid(request.query["workflow_id"])
            if workflow_id is None:
                return _invalid(["query", "workflow_id"], "Input should be a valid UUID",
                                "uuid_parsing", request.query["workflow_id"])  # fmt: skip
        self._store.refresh()
        with self._lock:
            read = self._read.get(self._key(request), set())
            count = sum(
                1
                for e in self._events
                if e.id not in read and (workflow_id is None or e.workflow_id == workflow_id)
            )
        return web.json_response({"unread_count": count})

    async def mark_read(self, request: web.Request) -> web.Response:
        """``POST /api/v1/notifications/mark-read``: one of ``notification_ids``, ``before``,
        ``mark_all``; ``{"marked_count": n}`` newly marked."""
        data = await self._json(request)
        if isinstance(data, web.Response):
            return data
        ids, before, mark_all = (
            data.get("notification_ids"),
            data.get("before"),
            data.get("mark_all", False),
        )
        workflow_id = data.get("workflow_id")
        if sum([ids is not None, before is not None, mark_all is True]) != 1:
            return _invalid(["body"], "Value error, provide exactly one of notification_ids, "
                            "before, or mark_all", "value_error", data)  # fmt: skip
        if workflow_id is not None and (ids is not None or _uuid(workflow_id) is None):
            return _invalid(["body", "workflow_id"], "Value error, workflow_id is only valid "
                            "with 'before' or 'mark_all'", "value_error", workflow_id)  # fmt: skip
        wanted: set[str] | None = None
        if ids is not None:
            if not isinstance(ids, list) or len(ids) > 100 or any(_uuid(i) is None for i in ids):
                return _invalid(["body", "notification_ids"], "Input should be a list of at "
                                "most 100 UUIDs", "list_type", ids)  # fmt: skip
            wanted = {str(_uuid(i)) for i in ids}
        cutoff = None
        if before is not None:
            cutoff = _when(before) if isinstance(before, str) else None
            if cutoff is None:
                return _invalid(["body", "before"], "Input should be a valid datetime",
                                "datetime_parsing", before)  # fmt: skip
        self._store.refresh()
        with self._lock:
            read = self._read.setdefault(self._key(request), set())
            marked = 0
            for e in self._events:
                if e.id in read:
                    continue
                if wanted is not None and e.id not in wanted:
                    continue
                if cutoff is not None and not (_when(e.created_at) or cutoff) < cutoff:
                    continue
                if workflow_id is not None and e.workflow_id != _uuid(workflow_id):
                    continue
                read.add(e.id)
                marked += 1
        return web.json_response({"marked_count": marked})

    async def get_event(self, request: web.Request) -> web.Response:
        """``GET /api/v1/notifications/{notification_id}``."""
        raw = request.match_info["notification_id"]
        event_id = _uuid(raw)
        if event_id is None:
            return _invalid(["path", "notification_id"], "Input should be a valid UUID",
                            "uuid_parsing", raw)  # fmt: skip
        with self._lock:
            read = self._read.get(self._key(request), set())
            for e in self._events:
                if e.id == event_id:
                    return web.json_response(e.view(e.id in read))
        return _error(404, "Notification not found")


def _check_channel(data: Json, kind: str, *, creating: bool) -> web.Response | None:
    """A 422 for a channel body the service would refuse (pydantic's shapes), else None."""
    types = data.get("event_types")
    if creating or types is not None:
        if not isinstance(types, list) or not types:
            return _invalid(["body", "event_types"], "List should have at least 1 item after "
                            "validation, not 0", "too_short", types)  # fmt: skip
        for i, t in enumerate(types):
            if t not in EVENT_TYPES:
                return _invalid(["body", "event_types", i], "Input should be one of "
                                + ", ".join(repr(x) for x in EVENT_TYPES), "enum", t)  # fmt: skip
    text = data.get("description")
    if text is not None and (not isinstance(text, str) or len(text) > 255):
        return _invalid(["body", "description"], "String should have at most 255 characters",
                        "string_too_long", text)  # fmt: skip
    if "enabled" in data and data["enabled"] is not None and not isinstance(data["enabled"], bool):
        return _invalid(["body", "enabled"], "Input should be a valid boolean", "bool_type",
                        data["enabled"])  # fmt: skip
    if kind == "webhook":
        url = data.get("url")
        if creating or url is not None:
            if not isinstance(url, str):
                return _invalid(["body", "url"], "Field required", "missing")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or parts.hostname != DELIVERY_HOST:
                return _invalid(["body", "url"], f"The emulator delivers webhooks to "
                                f"http(s)://{DELIVERY_HOST} only", "value_error", url)  # fmt: skip
        secret = data.get("secret")
        if secret is not None and (secret != "" or creating):
            size = len(secret.encode()) if isinstance(secret, str) else -1
            if not 24 <= size <= 75:
                # The value itself is never echoed back: it is a secret.
                return _invalid(["body", "secret"], "Secret must be 24-75 bytes", "value_error")
    else:
        config = data.get("email_config")
        if creating and (not isinstance(config, dict) or "recipient_email" not in config):
            return _invalid(["body", "email_config"], "Field required", "missing")
        if data.get("url") is not None or data.get("secret") is not None:
            return _invalid(["body"], "url and secret belong to webhook channels", "value_error")
    return None


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"before:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        return int(number) if prefix == "before" else None
    except (ValueError, UnicodeDecodeError):
        return None
