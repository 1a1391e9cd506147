"""`EventLoopThread`: how a blocking call gets its outcome back from the loop's thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from unstructured_jobs._sync.loop_thread import EventLoopThread


def test_the_caller_has_the_result_as_soon_as_the_coroutine_returns() -> None:
    """The result is handed over by the coroutine's last step, not by a done callback queued
    behind whatever the loop runs next: here the loop is then kept busy until the caller has
    the result (with a done callback, the caller waited behind the busy callback instead)."""
    caller_has_it = threading.Event()
    seen: list[bool] = []

    def busy() -> None:  # the next thing the loop runs after the coroutine's last step
        seen.append(caller_has_it.wait(timeout=10))

    async def work() -> int:
        asyncio.get_running_loop().call_soon(busy)
        return 42

    with EventLoopThread() as loop_thread:
        assert loop_thread.run(work) == 42
        caller_has_it.set()
        loop_thread.run(asyncio.sleep, 0)  # `busy` has run by now
    assert seen == [True]


def test_an_error_reaches_the_caller_and_the_task_ends_quietly() -> None:
    """An exception is handed to the caller as it is; the task itself does not keep it (no
    "Task exception was never retrieved" from the loop)."""
    reported: list[object] = []

    async def install() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: reported.append(context)
        )

    async def fail() -> None:
        raise ValueError("bad input")

    with EventLoopThread() as loop_thread:
        loop_thread.run(install)
        with pytest.raises(ValueError, match="bad input"):
            loop_thread.run(fail)
        loop_thread.run(asyncio.sleep, 0)
    assert reported == []


def test_a_cancelled_call_is_a_cancellation_for_the_caller() -> None:
    async def cancelled() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with EventLoopThread() as loop_thread, pytest.raises(concurrent.futures.CancelledError):
        loop_thread.run(cancelled)
