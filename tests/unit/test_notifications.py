"""The pure parts of job events (`_notifications`): paths, checks and bodies, before any I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from unstructured_jobs import InvalidIdError, InvalidInputError, JobEventType, Secret
from unstructured_jobs import _notifications as events

WORKFLOW = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
SECRET = "a-signing-secret-of-32-characters"


def test_paths_of_both_scopes() -> None:
    assert events.channels_path(None) == "/api/v1/notifications/channels"
    assert events.channels_path(None, "ep_1", "verify") == (
        "/api/v1/notifications/channels/ep_1/verify"
    )
    assert events.channels_path(WORKFLOW, "ep_1") == (
        f"/api/v1/workflows/{WORKFLOW}/notifications/channels/ep_1"
    )
    with pytest.raises(InvalidIdError):
        events.channels_path("not-a-uuid")
    assert events.channels_path(None, "a/b").endswith("/channels/a%2Fb")  # one path segment


def test_event_types_are_checked_but_an_explicit_unknown_one_goes_through() -> None:
    assert events.event_types(["job.failed", "job.failed", JobEventType.COMPLETED]) == [
        "job.failed",
        "job.completed",
    ]
    assert events.event_types([JobEventType("job.progress")]) == ["job.progress"]
    for bad in (["job.fail"], [], "job.failed", [3]):
        with pytest.raises(InvalidInputError):
            events.event_types(bad)  # type: ignore[arg-type]


def test_the_secret_is_checked_without_ever_being_shown() -> None:
    kept = events.signing_secret(SECRET)
    assert isinstance(kept, Secret) and kept.reveal() == SECRET
    assert events.signing_secret(None) is None
    assert events.signing_secret("", allow_empty=True) is not None  # removes a custom secret
    for bad in ("x" * 23, "x" * 76, "é" * 30, "tab\there" * 4, ""):
        with pytest.raises(InvalidInputError) as caught:
            events.signing_secret(bad)
        assert bad not in str(caught.value) or bad == ""


def test_a_json_body_reveals_the_secret_only_in_the_bytes_it_sends() -> None:
    body = events.JsonBody({"url": "https://h", "secret": Secret(SECRET)})
    assert SECRET not in repr(body) and "secret" in repr(body)
    payload = body.new_attempt(None)
    assert SECRET.encode() in payload._value and body.can_rebuild()
    assert payload.content_type == "application/json"
    assert body.new_attempt(None)._value == payload._value  # the same bytes on a retry


def test_webhook_urls_need_https_but_for_loopback() -> None:
    assert events.webhook_url("https://hooks.example.com/x")
    assert events.webhook_url("http://127.0.0.1:8080/x")
    assert events.webhook_url("http://localhost/x")
    for bad in ("http://hooks.example.com/x", "ftp://127.0.0.1/", "", "https://", 3):
        with pytest.raises(InvalidInputError):
            events.webhook_url(bad)


def test_feed_query_holds_only_what_was_given() -> None:
    assert events.feed_params(workflow_id=None, event_types_=None, since=None, limit=None,
                              cursor=None, unread_only=None) == ()  # fmt: skip
    since = datetime(2026, 4, 29, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    params = events.feed_params(
        workflow_id=WORKFLOW,
        event_types_=["job.completed", "job.failed"],
        since=since,
        limit=100,
        cursor="abc",
        unread_only=False,
    )
    assert dict(params) == {
        "workflow_id": WORKFLOW,
        "event_types": "job.completed,job.failed",
        "since": "2026-04-29T12:00:00+02:00",
        "limit": "100",
        "cursor": "abc",
        "unread_only": "false",
    }
    naive = events.feed_params(workflow_id=None, event_types_=None, since=datetime(2026, 1, 1),
                               limit=None, cursor=None, unread_only=True)  # fmt: skip
    assert dict(naive) == {"since": "2026-01-01T00:00:00Z", "unread_only": "true"}
    for limit in (0, 101, True, "5"):
        with pytest.raises(InvalidInputError):
            events.feed_params(workflow_id=None, event_types_=None, since=None,
                               limit=limit, cursor=None, unread_only=None)  # type: ignore[arg-type]  # fmt: skip


def test_mark_read_takes_exactly_one_way_to_choose() -> None:
    one = "00000000-0000-4000-8000-000000000001"
    assert events.mark_read_body(
        notification_ids=[one], before=None, mark_all=False, workflow_id=None
    ) == {"notification_ids": [one]}
    assert events.mark_read_body(
        notification_ids=None, before=None, mark_all=True, workflow_id=WORKFLOW
    ) == {"mark_all": True, "workflow_id": WORKFLOW}
    cases = [
        {"notification_ids": None, "before": None, "mark_all": False, "workflow_id": None},
        {"notification_ids": [one], "before": None, "mark_all": True, "workflow_id": None},
        {"notification_ids": [one], "before": None, "mark_all": False, "workflow_id": WORKFLOW},
        {"notification_ids": [one] * 101, "before": None, "mark_all": False, "workflow_id": None},
        {"notification_ids": [], "before": None, "mark_all": False, "workflow_id": None},
        {"notification_ids": one, "before": None, "mark_all": False, "workflow_id": None},
    ]
    for kwargs in cases:
        with pytest.raises(InvalidInputError):
            events.mark_read_body(**kwargs)  # type: ignore[arg-type]
