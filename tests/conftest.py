"""Shared fixtures.

`mock_api` wraps aioresponses (with the aiohttp 3.14 shim from `helpers`) for the
transport-level unit tests.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator

import pytest
from helpers import API_KEY, API_URL, CompatAioresponses

from unstructured_jobs import AsyncJobsClient
from unstructured_jobs.testing import FakeClock


def pytest_configure(config: pytest.Config) -> None:
    """Give Ctrl-C back its default meaning when pytest inherited it ignored.

    A shell script that starts pytest in the background (``pytest &``) makes SIGINT ignored,
    and an ignored signal is inherited by every child: the Ctrl-C tests (in-process and in
    child processes) would then wait for an interrupt that never comes.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def mock_api() -> Iterator[CompatAioresponses]:
    """Intercept aiohttp requests; unmatched URLs raise a connection error (assert call counts)."""
    with CompatAioresponses() as mocked:
        yield mocked


@pytest.fixture
async def mocked_client(mock_api: CompatAioresponses) -> AsyncIterator[AsyncJobsClient]:
    """An async client aimed at the mocked API, with instant retry sleeps recorded in `.slept`."""
    clock = FakeClock()
    client = AsyncJobsClient(api_key=API_KEY, server_url=API_URL, max_retries=3, clock=clock)
    client.slept = clock.sleeps  # type: ignore[attr-defined]
    yield client
    await client.aclose()
