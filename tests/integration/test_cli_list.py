"""``list``, ``templates`` and ``workflows``: newest first, ``--limit``, the API's filters,
tables that fit the terminal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from cli_support import KEY, Cli, env_for

from unstructured_jobs.testing import Emulator, Fault

JOBS = "/api/v1/jobs/"


@pytest.fixture
def emu(unstructured_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return unstructured_emulator_factory(api_key=KEY)


def _listed(count: int, name: str = "wf") -> list[dict[str, object]]:
    """Jobs as a server lists them, oldest first (the API documents no order)."""
    return [
        {"id": str(uuid.UUID(int=i + 1)), "workflow_id": str(uuid.UUID(int=1000)),
         "workflow_name": f"{name} {i}", "status": "COMPLETED",
         "created_at": f"2026-01-01T10:{i + 1:02d}:00Z", "input_file_ids": ["a.pdf"]}
        for i in range(count)
    ]  # fmt: skip


def test_list_is_newest_first_and_limited(cli: Cli, emu: Emulator) -> None:
    body = json.dumps(_listed(40)).encode()
    emu.inject(Fault.raw(200, body), method="GET", path=JOBS, times=4)
    r = cli("list", "--limit", "3", "--json", env=env_for(emu))
    assert r.returncode == 0, r.stderr
    minutes = [job["created_at"][14:16] for job in json.loads(r.stdout)]
    assert minutes == ["40", "39", "38"]
    assert r.stderr == (
        "unstructured-jobs: showing the 3 newest of 40 jobs (--limit N for more, --limit 0 "
        "for all)\n"
    )
    r = cli("list", env=env_for(emu))  # 30 by default, as gh shows
    assert len(r.stdout.splitlines()) == 1 + 30 and "of 40 jobs" in r.stderr
    assert r.stdout.splitlines()[1].split()[0] == str(uuid.UUID(int=40))
    r = cli("list", "--limit", "0", "--json", env=env_for(emu))
    assert len(json.loads(r.stdout)) == 40 and r.stderr == ""
    assert cli("list", "-L", "5", "--quiet", env=env_for(emu)) == (0, "", "")


def test_list_sends_the_filters_the_api_has(cli: Cli, emu: Emulator) -> None:
    workflow = str(uuid.uuid4())
    r = cli("list", "--workflow-id", workflow.upper(), "--status", "failed", env=env_for(emu))
    assert r.returncode == 0, r.stderr
    (request,) = emu.requests
    assert request.query == {"workflow_id": workflow, "status": "FAILED"}


def test_tables_fit_the_terminal_width(
    cli: Cli, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps(_listed(3, name="a very long workflow name " * 4)).encode()
    emu.inject(Fault.raw(200, body), method="GET", path=JOBS, times=2)
    r = cli("list", env={**env_for(emu), "COLUMNS": "100"})
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[1].split()[0] == str(uuid.UUID(int=3))  # ids are never cut
    assert "…" in lines[1]
    # A pipe without $COLUMNS gets every character, for grep and cut.
    r = cli("list", env={**env_for(emu), "COLUMNS": None})
    assert "a very long workflow name " * 3 in r.stdout and "…" not in r.stdout
