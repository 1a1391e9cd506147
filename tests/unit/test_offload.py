"""Blocking file calls off the event loop, in batches (`_offload.offload`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import pytest

from unstructured_jobs._constants import FILE_CALL_JOBS
from unstructured_jobs._offload import offload


class Jobs(concurrent.futures.ThreadPoolExecutor):
    """A default executor that counts the jobs it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=FILE_CALL_JOBS + 2)
        self.jobs = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
async def jobs() -> Any:
    executor = Jobs()
    asyncio.get_running_loop().set_default_executor(executor)
    yield executor
    executor.shutdown(wait=True)


async def test_calls_made_together_share_one_trip_to_a_worker_thread(jobs: Jobs) -> None:
    """Ten calls made in the same pass of the loop: one executor job runs them all, each in a
    worker thread, each answered with its own result (it was ten jobs)."""
    loop_thread = threading.get_ident()

    def square(n: int) -> tuple[int, bool]:
        return n * n, threading.get_ident() != loop_thread

    results = await asyncio.gather(*(offload(square, n) for n in range(10)))
    assert results == [(n * n, True) for n in range(10)]
    assert jobs.jobs == 1


async def test_a_failing_call_fails_alone(jobs: Jobs) -> None:
    def read(name: str) -> str:
        if name == "gone":
            raise FileNotFoundError(name)
        return name.upper()

    results = await asyncio.gather(
        offload(read, "a"), offload(read, "gone"), offload(read, "b"), return_exceptions=True
    )
    assert results[0] == "A" and results[2] == "B"
    assert isinstance(results[1], FileNotFoundError)
    assert jobs.jobs == 1


async def test_a_slow_disk_still_gets_calls_in_parallel(jobs: Jobs) -> None:
    """A call made while others wait on the disk starts its own job, up to FILE_CALL_JOBS at
    once; later calls wait for one of them to end, then run together."""
    gate = threading.Event()
    started = 0
    lock = threading.Lock()

    def slow(n: int) -> int:
        nonlocal started
        with lock:
            started += 1
        gate.wait()
        return n

    first = []
    for n in range(FILE_CALL_JOBS):
        first.append(offload(slow, n))
        for _ in range(1000):  # until its job runs in a worker thread
            if started > n:
                break
            await asyncio.sleep(0.001)
    later = [offload(slow, n) for n in range(FILE_CALL_JOBS, FILE_CALL_JOBS + 3)]
    for _ in range(3):  # the passes of the loop in which a job for them would be started
        await asyncio.sleep(0)
    assert jobs.jobs == FILE_CALL_JOBS
    gate.set()
    assert await asyncio.gather(*first, *later) == list(range(FILE_CALL_JOBS + 3))
    assert jobs.jobs == FILE_CALL_JOBS + 1  # the three later calls shared one job


async def test_a_file_opened_for_a_caller_that_gave_up_is_closed(jobs: Jobs) -> None:
    gate = threading.Event()

    class Handle:
        closed = False

        def close(self) -> None:
            self.closed = True

    handle = Handle()

    def open_slowly() -> Handle:
        gate.wait()
        return handle

    future = offload(open_slowly)
    future.cancel()
    gate.set()
    done = offload(lambda: None)  # runs after the open: its job starts once that one ended
    await done
    for _ in range(100):
        if handle.closed:
            break
        await asyncio.sleep(0.001)
    assert handle.closed


def test_a_loop_that_is_gone_leaves_nothing_behind() -> None:
    """The pending calls are kept per loop, weakly: a loop closed and dropped (each
    ``asyncio.run`` makes one) is collected, with its entry."""
    import gc
    import weakref

    async def use() -> int:
        return await offload(len, "abc")

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(use()) == 3
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None  # and so its entry in _offload._BATCHERS
