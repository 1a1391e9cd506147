"""Pytest fixtures for the emulator (registered through the ``pytest11`` entry point).

- ``unstructured_emulator``: a fresh ``Emulator`` (default options, jobs complete at once)
  served from a background thread, usable from sync and async tests alike.
- ``unstructured_emulator_factory``: ``factory(**options) -> Emulator`` for custom options;
  every emulator it starts is stopped at the end of the test.

The plugin imports only pytest at collection time; aiohttp loads when a fixture is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["unstructured_emulator", "unstructured_emulator_factory"]


@pytest.fixture
def unstructured_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with custom options (``Emulator`` keyword arguments) in threads."""
    from ._server import Emulator

    with contextlib.ExitStack() as stack:

        def factory(**options: Any) -> Emulator:
            return stack.enter_context(Emulator(**options).running_in_thread())

        yield factory


@pytest.fixture
def unstructured_emulator(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> Emulator:
    """An emulator with default options, running in a background thread for one test."""
    return unstructured_emulator_factory()
