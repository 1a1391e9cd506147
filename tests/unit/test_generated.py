"""The code written by scripts/generate_sync.py matches `AsyncJobsClient` (CI runs this).

Adding or changing a method of `AsyncJobsClient` changes its blocking twin on `JobsClient`, its
`with_raw_response` twins and the package's public names: this fails until
``python scripts/generate_sync.py`` has been run and its output committed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_sync", ROOT / "scripts" / "generate_sync.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_sync", module)
    spec.loader.exec_module(module)
    return module


def test_the_generated_code_is_up_to_date(generator: ModuleType) -> None:
    stale = [str(path.relative_to(ROOT)) for path in generator.stale()]
    assert not stale, f"stale: {stale}; run python scripts/generate_sync.py"


def test_the_check_sees_a_method_added_to_the_async_client(
    generator: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new endpoint (a method sending one request) makes every generated file stale."""
    client = tmp_path / "_client.py"
    source = generator.CLIENT.read_text()
    new = (
        "    async def get_job_logs(self, job_id: str) -> JobDetails:\n"
        '        """Get a job\'s logs."""\n'
        "        return await self._send(Request('GET', job_id), JobDetails, None, None)\n\n"
        "    # ------------------------------------------------------------------ waiting\n"
    )
    marker = "    # ------------------------------------------------------------------ waiting\n"
    client.write_text(source.replace(marker, new, 1))
    monkeypatch.setattr(generator, "CLIENT", client)
    outputs = generator.generate()
    assert "def get_job_logs(" in outputs[generator.GENERATED]
    assert "RawResponse[JobDetails]" in outputs[generator.GENERATED]
    assert "async def get_job_logs(" in outputs[client].split(generator.BEGIN, 1)[1]
    assert generator.normalized(outputs[generator.GENERATED]) != generator.normalized(
        generator.GENERATED.read_text()
    )


def test_the_comparison_ignores_formatting_and_import_order(generator: ModuleType) -> None:
    a = "import os\nimport sys\n\ndef f(x: int=1) -> None:\n    '''Doc.'''\n    return None\n"
    b = "import sys\nimport os\n\n\ndef f(\n    x: int = 1,\n) -> None:\n    '''Doc.'''\n    return None\n"
    assert generator.normalized(a) == generator.normalized(b)
    assert generator.normalized(a) != generator.normalized(a.replace("Doc.", "Other."))
