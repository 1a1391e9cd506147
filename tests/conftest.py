"""Shared fixtures.

`mock_api` wraps aioresponses for the transport-level unit tests. aioresponses 0.7.9 builds
`ClientResponse` without the `stream_writer` argument that aiohttp 3.14 requires (aioresponses
#289), so every mocked answer here uses a response class that supplies a stub writer. This is the
only place that knows about it; aiohttp is not pinned to an old release for the tests' sake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from unstructured_jobs import AsyncJobsClient

API_URL = "https://api.test.invalid"
API_KEY = "sk-test-secret-key-123"


class _StubStreamWriter:
    output_size = 0


class CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that aioresponses 0.7.9 can build under aiohttp 3.14."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _StubStreamWriter())
        super().__init__(*args, **kwargs)


class CompatAioresponses(aioresponses):
    """aioresponses whose mocked answers use `CompatClientResponse` by default."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", CompatClientResponse)
        super().add(*args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[CompatAioresponses]:
    """Intercept aiohttp requests; unmatched URLs raise a connection error (assert call counts)."""
    with CompatAioresponses() as mocked:
        yield mocked


@pytest.fixture
async def mocked_client(mock_api: CompatAioresponses) -> AsyncIterator[AsyncJobsClient]:
    """An async client aimed at the mocked API, with instant retry sleeps recorded in `.slept`."""
    client = AsyncJobsClient(api_key=API_KEY, server_url=API_URL, max_retries=3)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    client._transport._sleep = fake_sleep
    client.slept = slept  # type: ignore[attr-defined]
    yield client
    await client.aclose()
