"""The launch pacer's decisions, on virtual time."""

from __future__ import annotations

import anyio
import pytest

from unstructured_jobs._batch.scheduler import LaunchPacer
from unstructured_jobs._constants import LAUNCH_MARGIN, LAUNCH_MARGIN_STEP
from unstructured_jobs.testing import FakeClock


async def test_a_launch_leaves_the_interval_and_a_margin_after_the_previous_body() -> None:
    clock = FakeClock(10.0)
    pacer = LaunchPacer(1.0, clock)
    first = await pacer.slot()
    assert clock.now() == 10.0  # the first leaves at once
    clock.advance(0.3)  # its upload takes 0.3 s
    first.started()
    first.finish()  # no effect: the body was sent already
    await pacer.slot()
    assert clock.now() == pytest.approx(10.3 + 1.0 + LAUNCH_MARGIN)


async def test_the_next_launch_waits_for_the_previous_body() -> None:
    clock = FakeClock()
    pacer = LaunchPacer(1.0, clock)
    first = await pacer.slot()
    left: list[float] = []

    async def second() -> None:
        await pacer.slot()
        left.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert left == []  # the first is still uploading
        clock.advance(5.0)
        first.finish()  # answered (or failed) without a progress report
    assert left == [pytest.approx(5.0 + 1.0 + LAUNCH_MARGIN)]


async def test_a_refusal_holds_every_launch_and_widens_the_margin() -> None:
    clock = FakeClock()
    pacer = LaunchPacer(1.0, clock)
    launch = await pacer.slot()
    launch.finish()
    assert pacer.refused(3.0) == 3.0  # the server's Retry-After
    assert pacer.margin == pytest.approx(2 * LAUNCH_MARGIN + LAUNCH_MARGIN_STEP)
    assert (pacer.refusals, pacer.paced_seconds) == (1, 3.0)
    await pacer.slot()
    assert clock.now() == pytest.approx(3.0)
    widened = pacer.margin
    for _ in range(5):
        pacer.accepted()
    assert LAUNCH_MARGIN < pacer.margin < widened  # narrows back slowly
    for _ in range(200):
        pacer.accepted()
    assert pacer.margin == LAUNCH_MARGIN
    for _ in range(20):
        pacer.refused(None)
    assert pacer.margin == 1.0  # never more than the interval


async def test_without_an_interval_only_the_servers_wait_holds_launches() -> None:
    clock = FakeClock()
    pacer = LaunchPacer(None, clock)
    for _ in range(3):
        await pacer.slot()  # never waits for a previous body
    assert clock.now() == 0.0 and pacer.margin == 0.0
    assert pacer.refused(None) == 1.0  # no Retry-After: a second
    await pacer.slot()
    assert clock.now() == 1.0
