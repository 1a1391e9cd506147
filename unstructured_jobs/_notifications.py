"""Job events: request parts for notification channels and the feed (pure, no I/O).

Shapes follow the vendor's pages ``api-reference/api/notification/*`` and
``api-reference/api/workflow/create-workflow-notification-channel`` (the README's "Job events"
says which page gives what). Everything here checks the user's input before a byte is sent
and builds paths, query parameters and JSON bodies; `AsyncJobsClient` sends them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._core import api_path, is_loopback, validate_id, validate_name_id
from ._exceptions import InvalidInputError
from ._models import ChannelType, JobEventType
from ._secret import Secret

SECRET_MIN, SECRET_MAX = 24, 75
"""The signing secret's length in ASCII characters (the create-channel page: 24-75)."""
MAX_DESCRIPTION = 255
MAX_MARK_READ_IDS = 100
FEED_PAGE_MAX = 100
_CODE = re.compile(r"\d{6}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def channels_path(workflow_id: str | None, *rest: str) -> str:
    """``/api/v1/notifications/channels...`` (workspace scope) or
    ``/api/v1/workflows/{workflow_id}/notifications/channels...`` (workflow scope)."""
    if workflow_id is None:
        return api_path("notifications", "channels", *rest)
    return api_path(
        "workflows", validate_id(workflow_id, "workflow_id"), "notifications", "channels", *rest
    )


def channel_id(value: object) -> str:
    """A channel id (``ep_0a1B...``: not a UUID), checked before sending."""
    return validate_name_id(value, "channel_id")


def event_types(values: Iterable[JobEventType | str], what: str = "event_types") -> list[str]:
    """The event types to send: at least one; each a documented one (`JobEventType`). A value
    the client does not know is refused as a likely typo unless it is passed as a
    `JobEventType` (``JobEventType("job.progress")``), which is sent as it is."""
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a list of event types, not a single string")
    found: list[str] = []
    for value in values:
        if isinstance(value, JobEventType):
            found.append(value.value)
            continue
        if not isinstance(value, str) or value not in JobEventType._value2member_map_:
            known = ", ".join(m.value for m in JobEventType)
            raise InvalidInputError(
                f"{what}: unknown event type {value!r:.60}; expected one of {known} (pass "
                f"JobEventType({value!r:.60}) to send a type this client does not know)"
            )
        found.append(value)
    if not found:
        raise InvalidInputError(f"{what} must name at least one event type")
    return list(dict.fromkeys(found))


def signing_secret(value: str | Secret | None, *, allow_empty: bool = False) -> Secret | None:
    """The webhook signing secret as a `Secret`: 24-75 ASCII characters (``""`` on update
    removes a custom secret). Errors never show the value, nor does any frame an error passes
    through keep it in a plain local (see ``_secret``)."""
    secret = Secret.of(value)
    del value
    if secret is None:
        return None
    problem = _secret_problem(secret, allow_empty)
    if problem is not None:
        raise InvalidInputError(problem)
    return secret


def _secret_problem(secret: Secret, allow_empty: bool) -> str | None:
    text = secret.reveal()  # this frame has returned before anything is raised
    if not isinstance(text, str):
        return f"secret must be a string, got {type(text).__name__}"
    if text == "" and allow_empty:
        return None
    if not text.isascii() or not text.isprintable():
        return "secret must be printable ASCII characters"
    if not SECRET_MIN <= len(text) <= SECRET_MAX:
        return f"secret must be {SECRET_MIN} to {SECRET_MAX} ASCII characters, got {len(text)}"
    return None


def webhook_url(value: object) -> str:
    """An ``https://`` URL (plain ``http://`` only to a loopback host: the emulator)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"url must be a non-empty URL string, got {value!r:.80}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidInputError(f"url is not a valid URL: {value!r:.80}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInputError(f"url must be an https:// URL, got {value!r:.80}")
    if parts.scheme == "http" and not is_loopback(host):
        raise InvalidInputError(
            f"url must use https:// (the service requires it), got {value!r:.80}; plain "
            "http:// is accepted only for a loopback receiver, which only the emulator reaches"
        )
    return value


def email(value: object, what: str) -> str:
    """An email address (a plausible one: the server checks it fully)."""
    if not isinstance(value, str) or _EMAIL.fullmatch(value) is None:
        raise InvalidInputError(f"{what} must be an email address, got {value!r:.80}")
    return value


def description(value: object) -> str:
    """A channel description of at most 255 characters."""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInputError(f"description must be a string of at most {MAX_DESCRIPTION} chars")
    return value


def email_config(
    recipient_email: str | None, cc: Sequence[str] | None, reply_to: str | None
) -> dict[str, Any]:
    """The ``email_config`` object of a request (only the fields given)."""
    config: dict[str, Any] = {}
    if recipient_email is not None:
        config["recipient_email"] = email(recipient_email, "recipient_email")
    if cc is not None:
        if isinstance(cc, str):
            raise InvalidInputError("cc must be a list of email addresses, not a string")
        config["cc"] = [email(c, "cc") for c in cc]
    if reply_to is not None:
        config["reply_to"] = email(reply_to, "reply_to")
    return config


def channel_type_of(value: ChannelType | str) -> str:
    """``webhook`` or ``email`` (an unknown type is sent as given only as a `ChannelType`)."""
    if isinstance(value, ChannelType):
        return value.value
    if not isinstance(value, str) or value not in ChannelType._value2member_map_:
        raise InvalidInputError(f"channel_type must be 'webhook' or 'email', got {value!r:.40}")
    return value


def verification_code(value: object) -> str:
    """The 6-digit code the service emailed."""
    if not isinstance(value, str) or _CODE.fullmatch(value) is None:
        raise InvalidInputError("code must be the 6 digits the verification email gives")
    return value


def iso_time(value: object, what: str) -> str:
    """A datetime as ISO 8601 (naive ones taken as UTC)."""
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def feed_params(
    *,
    workflow_id: str | None,
    event_types_: Iterable[JobEventType | str] | None,
    since: datetime | None,
    limit: int | None,
    cursor: str | None,
    unread_only: bool | None,
) -> tuple[tuple[str, str], ...]:
    """The query of ``GET /api/v1/notifications`` (only the filters given)."""
    params: list[tuple[str, str]] = []
    if workflow_id is not None:
        params.append(("workflow_id", validate_id(workflow_id, "workflow_id")))
    if event_types_ is not None:
        params.append(("event_types", ",".join(event_types(event_types_))))
    if since is not None:
        params.append(("since", iso_time(since, "since")))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise InvalidInputError(f"limit must be an integer from 1 to 100, got {limit!r}")
        params.append(("limit", str(limit)))
    if cursor is not None:
        if not isinstance(cursor, str) or not cursor:
            raise InvalidInputError("cursor must be a non-empty string (a page's next_cursor)")
        params.append(("cursor", cursor))
    if unread_only is not None:
        if not isinstance(unread_only, bool):
            raise InvalidInputError("unread_only must be True or False")
        params.append(("unread_only", "true" if unread_only else "false"))
    return tuple(params)


def mark_read_body(
    *,
    notification_ids: Sequence[str] | None,
    before: datetime | None,
    mark_all: bool,
    workflow_id: str | None,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/notifications/mark-read``: exactly one of the ids (at most
    100), `before`, or `mark_all`; `workflow_id` only with `before` or `mark_all`."""
    chosen = [notification_ids is not None, before is not None, bool(mark_all)]
    if sum(chosen) != 1:
        raise InvalidInputError("pass exactly one of notification_ids, before, or mark_all=True")
    body: dict[str, Any] = {}
    if notification_ids is not None:
        if isinstance(notification_ids, str):
            raise InvalidInputError("notification_ids must be a list of ids, not a string")
        ids = [validate_id(i, "notification_ids item") for i in notification_ids]
        if not ids or len(ids) > MAX_MARK_READ_IDS:
            raise InvalidInputError(
                f"notification_ids must hold 1 to {MAX_MARK_READ_IDS} ids, got {len(ids)}"
            )
        if workflow_id is not None:
            raise InvalidInputError("workflow_id goes with before or mark_all, not with ids")
        body["notification_ids"] = ids
    if before is not None:
        body["before"] = iso_time(before, "before")
    if mark_all:
        body["mark_all"] = True
    if workflow_id is not None:
        body["workflow_id"] = validate_id(workflow_id, "workflow_id")
    return body


@attrs.define
class _Sent:
    complete: bool = True
    error: BaseException | None = None

    async def wait_stopped(self) -> None:
        return None


@attrs.define(repr=False)
class JsonBody:
    """A small JSON request body, made again for each attempt. A `Secret` in it is revealed
    only while the bytes are made; the body's repr shows no value."""

    fields: Mapping[str, Any]
    state: _Sent = attrs.field(factory=_Sent)

    def can_rebuild(self) -> bool:
        """Always: the bytes are made from `fields` each time."""
        return True

    def new_attempt(self, write_timeout: float | None) -> Any:
        """The payload of one attempt."""
        data = json.dumps(self.fields, default=_reveal).encode()
        return aiohttp.BytesPayload(data, content_type="application/json")

    def __repr__(self) -> str:
        return f"JsonBody(keys={sorted(self.fields)})"


def _reveal(value: object) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    raise TypeError(f"{type(value).__name__} is not JSON")
