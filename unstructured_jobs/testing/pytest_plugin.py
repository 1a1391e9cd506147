"""Pytest fixtures for the emulator (registered through the ``pytest11`` entry point).

- ``unstructured_emulator``: a fresh ``Emulator`` (default options, jobs complete at once)
  served from a background thread, usable from sync and async tests alike.
- ``unstructured_emulator_factory``: ``factory(**options) -> Emulator`` for custom options;
  every emulator it starts is stopped at the end of the test.
- ``unstructured_emulator_session``: one emulator (default options) shared by every test of
  the session that asks for it: started once, so cheap, but its jobs, recorded requests and
  faults carry over from test to test (call ``emu.reset()`` where that matters).
- ``unstructured_emulator_env``: the per-test ``unstructured_emulator``, with
  ``UNSTRUCTURED_API_URL`` and ``UNSTRUCTURED_API_KEY`` pointing at it for the test
  (``monkeypatch``), so code under test that builds its own client from the environment
  (``JobsClient()``, the ``unstructured-jobs`` command) talks to it.

After a test that passed, both fixtures check that every fault injected into their emulators
(``emu.inject(...)`` or ``POST /_emulator/faults``) fired as often as asked, like pytest-httpx
does for unused responses: a fault that never fires means the test never exercised what it
meant to. The test then errors at teardown with the list of unfired faults (see
``Emulator.assert_all_faults_fired``). Opt out per fault with ``inject(..., optional=True)``,
or per test (or module, through ``pytestmark``) with::

    @pytest.mark.unstructured_emulator(assert_all_faults_fired=False)

Faults removed by ``clear_faults()``/``reset()`` are not checked, and nothing is checked after
a test that failed or was skipped (its own failure is the news). The session emulator is
checked once, when the session ends, unless a test failed (the marker does not apply to it).

The plugin imports only pytest at collection time; aiohttp loads when a fixture is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = [
    "unstructured_emulator",
    "unstructured_emulator_env",
    "unstructured_emulator_factory",
    "unstructured_emulator_session",
]

MARKER = "unstructured_emulator"
_OPTIONS = ("assert_all_faults_fired",)
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``unstructured_emulator`` marker (``--strict-markers`` knows it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(assert_all_faults_fired=True): options of the unstructured_emulator "
        "fixtures; assert_all_faults_fired=False skips the check that every injected fault "
        "fired.",
    )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Keep each phase's report, so the fixtures' teardown knows whether the test passed.

    An old-style hook wrapper on purpose: the plugin loads wherever the package is installed,
    and these work with every pytest the fixtures support.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    item.stash.setdefault(_REPORTS, {})[report.when] = report


def _check_faults(request: pytest.FixtureRequest) -> bool:
    """Whether the fixtures should assert that every injected fault fired."""
    check = True
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
        unknown = sorted(set(marker.kwargs) - set(_OPTIONS))
        if unknown:
            pytest.fail(
                f"@pytest.mark.{MARKER}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(_OPTIONS)}",
                pytrace=False,
            )
        check = bool(marker.kwargs.get("assert_all_faults_fired", True))
    return check


def _test_passed(request: pytest.FixtureRequest) -> bool:
    call = request.node.stash.get(_REPORTS, {}).get("call")
    return call is not None and call.passed


@pytest.fixture
def unstructured_emulator_factory(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Emulator]]:
    """Start emulators with custom options (``Emulator`` keyword arguments) in threads.

    At teardown every emulator is stopped; then, if the test passed, each must have fired all
    its injected faults (see the module docstring for the opt-outs).
    """
    from ._server import Emulator

    check = _check_faults(request)
    started: list[Emulator] = []
    with contextlib.ExitStack() as stack:

        def factory(**options: Any) -> Emulator:
            emulator = stack.enter_context(Emulator(**options).running_in_thread())
            started.append(emulator)
            return emulator

        yield factory
    if check and _test_passed(request):
        errors: list[str] = []
        for number, emulator in enumerate(started, 1):
            try:
                emulator.assert_all_faults_fired()
            except AssertionError as exc:
                prefix = f"emulator {number} of {len(started)}: " if len(started) > 1 else ""
                errors.append(f"{prefix}{exc}")
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def unstructured_emulator(
    unstructured_emulator_factory: Callable[..., Emulator],
) -> Emulator:
    """An emulator with default options, running in a background thread for one test."""
    return unstructured_emulator_factory()


@pytest.fixture
def unstructured_emulator_env(
    unstructured_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """The test's emulator, with ``UNSTRUCTURED_API_URL``/``UNSTRUCTURED_API_KEY`` set to it.

    Code under test that reads the environment (``JobsClient()``, ``AsyncJobsClient()``, the
    command line run in-process or as a subprocess) talks to this emulator; both variables are
    restored after the test.
    """
    from .._constants import ENV_API_KEY, ENV_SERVER_URL

    monkeypatch.setenv(ENV_SERVER_URL, unstructured_emulator.url)
    monkeypatch.setenv(ENV_API_KEY, unstructured_emulator.api_key)
    return unstructured_emulator


@pytest.fixture(scope="session")
def unstructured_emulator_session(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """One emulator (default options) for the whole session, in a background thread.

    State carries over between the tests that share it. At the end of the session, if no test
    failed, it must have fired every injected fault (``optional=True`` exempts one).
    """
    from ._server import Emulator

    with Emulator().running_in_thread() as emulator:
        yield emulator
    if request.session.testsfailed == 0:
        try:
            emulator.assert_all_faults_fired()
        except AssertionError as exc:
            pytest.fail(f"unstructured_emulator_session: {exc}", pytrace=False)
