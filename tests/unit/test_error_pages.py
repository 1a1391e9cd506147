"""Error answers of any shape read as one short line and the same typed error (issue 23).

Gateways answer with HTML pages (nginx, a corporate proxy, a CDN) or plain text (Envoy); a
broken or hostile server with JSON nested 100,000 deep, a non-object, invalid UTF-8 or a
megabyte of detail. Each gives the error class of its status, a message of one line of about
300 characters at most (no markup), and keeps the whole body on the error.
"""

from __future__ import annotations

import pickle

import pytest

from unstructured_jobs import APIStatusError, UnprocessableEntityError
from unstructured_jobs._core import error_for_status, reason_phrase

URL = "https://platform.example.com/api/v1/jobs/"


def nginx_page(status: str) -> bytes:  # nginx 1.22's page, byte for byte
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}"
        f"</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def answer(status: int, body: bytes, **headers: str) -> APIStatusError:
    return error_for_status(method="POST", url=URL, status=status, headers=headers, body=body)


def one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text and "\r" not in text and len(text) <= 300, text
    assert "<" not in text, text
    return text


@pytest.mark.parametrize(
    ("status", "title", "line"),
    [
        (502, "502 Bad Gateway", "502 Bad Gateway: HTML page from nginx/1.22.1"),
        (504, "504 Gateway Time-out", "504 Gateway Timeout: HTML page from nginx/1.22.1"),
        (413, "413 Request Entity Too Large", "413 Request Entity Too Large: HTML page from"),
    ],
)
def test_nginx_pages_give_the_status_its_reason_and_no_markup(
    status: int, title: str, line: str
) -> None:
    page = nginx_page(title)
    error = answer(status, page, **{"Content-Type": "text/html", "Server": "nginx/1.22.1"})
    assert one_line(error).startswith(f"POST {URL} -> {line}")
    assert error.body == page.decode() and error.status == status and error.detail is None


def test_a_page_title_that_says_more_is_shown() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>example.com | 502: Bad gateway</title>"
        b"<style>body{color:red}</style></head><body><h1>Bad gateway</h1>" + b"x" * 50_000
    )
    error = answer(502, page, **{"content-type": "text/html; charset=UTF-8"})
    assert one_line(error) == (
        f"POST {URL} -> 502 Bad Gateway: example.com | 502: Bad gateway (HTML page)"
    )


def test_a_page_without_a_title_gives_its_plain_text() -> None:
    page = (
        b"<html><head><script>var secret = 1;</script></head><body>\n<h1>Access   Denied</h1>\n"
        b"<p>Blocked by policy &amp; rules &#8212; ask IT.</p><!-- id 42 --></body></html>"
    )
    text = one_line(answer(403, page, **{"Content-Type": "text/html"}))
    assert text.endswith(
        "-> 403 Forbidden: Access Denied Blocked by policy & rules \u2014 ask IT. (HTML page)"
    )
    assert "secret" not in text and "id 42" not in text


@pytest.mark.parametrize(
    ("status", "body", "end"),
    [
        (503, b"upstream connect error or disconnect/reset before headers. reset reason: "
              b"connection failure", "-> 503 Service Unavailable: upstream connect error or "
              "disconnect/reset before headers. reset reason: connection failure"),
        (500, b"Internal Server Error", "-> 500 Internal Server Error"),
        (504, b"", "-> 504 Gateway Timeout: no body"),
        (500, b"line one\nline two\r\n\tthree\x00", "-> 500 Internal Server Error: line one "
              "line two three"),
    ],
)  # fmt: skip
def test_plain_text_bodies_read_as_one_line(status: int, body: bytes, end: str) -> None:
    assert one_line(answer(status, body, **{"Content-Type": "text/plain"})).endswith(end)


def test_a_cloud_gateway_s_json_message_is_shown() -> None:
    error = answer(504, b'{"message": "Endpoint request timed out"}')
    assert str(error) == f"POST {URL} -> 504 Gateway Timeout: Endpoint request timed out"
    assert error.body == {"message": "Endpoint request timed out"} and error.detail is None


@pytest.mark.parametrize(
    "page",
    [b"<" * 1_000_000, b"<html>" + b"<script>" * 100_000, b"<title" * 100_000,
     b"<!--" * 200_000, b"<a " * 300_000, b"<p>a < b > c</p>"],
    ids=["lt", "unclosed-scripts", "unclosed-titles", "comments", "unclosed-tags", "brackets"],
)  # fmt: skip
def test_hostile_pages_are_read_in_one_pass_without_markup(page: bytes) -> None:
    # A page of unclosed tags cost one scan per tag (8 s for 64 KiB of "<"); now one pass.
    error = answer(502, page, **{"Content-Type": "text/html"})
    assert one_line(error).startswith(f"POST {URL} -> 502 Bad Gateway: ")
    assert ">" not in str(error).replace("->", "")


def test_a_long_page_is_cut_short_and_kept_whole_on_the_error() -> None:
    body = ("word " * 100_000).encode()
    error = answer(502, body)
    assert one_line(error).endswith("...")
    assert error.body == body.decode()


def test_the_api_s_own_detail_keeps_its_wording_on_one_line() -> None:
    error = answer(404, b'{"detail": "Job\\nnot found"}')
    assert str(error) == f"POST {URL} -> 404: Job not found"
    assert error.detail == "Job\nnot found" and error.body == {"detail": "Job\nnot found"}


def test_reason_phrases_are_the_classic_ones_on_every_python() -> None:
    assert [reason_phrase(s) for s in (413, 422, 502, 504, 599)] == [
        "Request Entity Too Large",
        "Unprocessable Entity",
        "Bad Gateway",
        "Gateway Timeout",
        "",
    ]


# -- odd JSON (item 2): the same typed error as any answer of that status ---------------------

DEEP = b'{"detail": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
ODD_BODIES = {
    "deep detail": DEEP,
    "deep object": b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    "deep but parsable": b'{"detail": ' + b"[" * 500 + b"]" * 500 + b"}",
    "a list": b'[{"detail": "x"}]',
    "a string": b'"Bad request"',
    "a number": b"42",
    "null": b"null",
    "invalid utf-8": b'{"detail": "caf\xe9 \xff"}',
    "huge detail": b'{"detail": "' + b"too long " * 200_000 + b'"}',
    "huge detail list": b'{"detail": ['
    + b",".join([b'{"msg": "m", "loc": ["x"]}'] * 50_000)
    + b"]}",
    "detail object": b'{"detail": {"nested": {"deeper": [1, 2, 3]}}}',
}
STATUSES = [400, 401, 402, 403, 404, 409, 413, 418, 422, 429, 500, 502, 503, 504]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_json_gives_the_error_of_its_status(status: int, body: bytes) -> None:
    expected = type(answer(status, b'{"detail": "plain"}'))
    error = answer(status, body, **{"Content-Type": "application/json"})
    assert type(error) is expected
    text = one_line(error)
    assert text.startswith(f"POST {URL} -> {status}")
    assert isinstance(error.detail, (str, list, dict, type(None)))
    if isinstance(error.detail, str):
        assert len(error.detail) <= len(body)
    if isinstance(error, UnprocessableEntityError):
        assert isinstance(error.errors, list)
    copy = pickle.loads(pickle.dumps(error))  # process pools pickle errors
    assert type(copy) is expected and str(copy) == text


def test_json_too_deep_to_keep_is_text_with_a_bounded_detail() -> None:
    error = answer(422, DEEP)
    assert isinstance(error, UnprocessableEntityError) and error.errors == []
    assert error.body == DEEP.decode()
    assert isinstance(error.detail, str) and error.detail.startswith('{"detail": [[[')
    assert len(error.detail) <= 300
