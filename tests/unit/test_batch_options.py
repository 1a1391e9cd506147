"""The batch options are declared once (`_batch.options.BATCH_OPTIONS`) and every reader agrees.

A new option is one entry in the declaration: these tests fail until `submit_batch`,
`run_batch`, `plan_batch` (when it is a planning option), `submit_batch`'s docstring, the
command line and docs/cli.md all have it, with the same type and default.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from unstructured_jobs import batch
from unstructured_jobs._batch.options import BATCH_OPTIONS, FROM_LIMITS
from unstructured_jobs._commands import build_parser
from unstructured_jobs._options import ServiceLimits

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

OWN_PARAMETERS: dict[str, list[str]] = {
    "submit_batch": ["client", "inputs"],
    "run_batch": ["inputs", "client", "api_key", "server_url"],
    "plan_batch": ["inputs", "limits"],
}
"""Each function's parameters that are not batch options (in signature order)."""


def _declared(function: str) -> list[str]:
    plan_only = function == "plan_batch"
    return [o.name for o in BATCH_OPTIONS if o.plan or not plan_only]


@pytest.mark.parametrize("function", sorted(OWN_PARAMETERS))
def test_each_function_takes_exactly_the_declared_options(function: str) -> None:
    f: Callable[..., Any] = getattr(batch, function)
    parameters = inspect.signature(f).parameters
    options = [n for n in parameters if n not in OWN_PARAMETERS[function]]
    assert options == _declared(function)
    own = [n for n in parameters if n in OWN_PARAMETERS[function]]
    assert own == OWN_PARAMETERS[function]
    declared = {o.name: o for o in BATCH_OPTIONS}
    for name in options:
        p = parameters[name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, (function, name)
        assert p.annotation == declared[name].annotation, (function, name)
        assert p.default == declared[name].default, (function, name)


def test_run_batch_shows_every_option_in_its_signature() -> None:
    # help() and a notebook's signature popup read inspect.signature: no **options hiding them.
    signature = inspect.signature(batch.run_batch)
    kinds = {p.kind for p in signature.parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    shown = str(signature)
    for option in BATCH_OPTIONS:
        assert f"{option.name}: " in shown
    assert "files_per_job: 'int | _FromLimits' = FROM_LIMITS" in shown


def test_run_batch_passes_every_option_to_submit_batch() -> None:
    received: dict[str, Any] = {}

    class Client:  # stands in for a JobsClient: records what would run in its loop
        def call_async(self, fn: Any, *args: Any, **kwargs: Any) -> str:
            received.update(fn=fn, args=args, kwargs=kwargs)
            return "report"

    given = {o.name: object() for o in BATCH_OPTIONS}  # one distinct value per option
    result = batch.run_batch(["in"], client=Client(), **given)  # type: ignore[arg-type]
    assert result == "report"
    assert received["fn"] is batch.submit_batch
    assert received["args"] == (["in"],)
    assert received["kwargs"] == given


def test_the_options_typed_dict_is_the_declaration() -> None:
    hints = get_type_hints(batch.BatchOptions, globalns=vars(batch))
    assert list(hints) == [o.name for o in BATCH_OPTIONS]


def test_submit_batch_documents_every_option() -> None:
    doc = inspect.getdoc(batch.submit_batch) or ""
    documented: set[str] = set()
    for line in doc.splitlines():
        if m := re.match(r"^    ([a-z_]+(?:, [a-z_]+)*):", line):
            documented |= set(m[1].split(", "))
    missing = [o.name for o in BATCH_OPTIONS if o.name not in documented]
    assert not missing, f"not documented in submit_batch's Args: {missing}"


def test_docs_describe_every_flag() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [o.flag for o in BATCH_OPTIONS if o.flag is not None and o.flag not in text]
    assert not missing, f"docs/cli.md does not mention {missing}"


def _batch_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices["batch"]
    return found


def test_the_command_line_has_a_flag_for_each_option_that_declares_one() -> None:
    flags = {s for a in _batch_parser()._actions for s in a.option_strings}
    for option in BATCH_OPTIONS:
        if option.flag is not None:
            assert option.flag in flags, option.name
    assert "-o" in flags


def test_the_command_line_reads_each_flag_into_its_option() -> None:
    args = _batch_parser().parse_args(
        [
            "docs/",
            "--template-id",
            "tpl",
            "-o",
            "out",
            "--manifest",
            "m.sqlite",
            "--files-per-job",
            "3",
            "--max-file-size",
            "10MB",
            "--max-job-size",
            "1KiB",
            "--launch-rate",
            "0",
            "--concurrency",
            "2",
            "--no-wait",
            "--timeout",
            "5",
            "--poll-interval",
            "0.5",
            "--retry-failed",
            "--include-hidden",
            "--include",
            "*.pdf",
            "--include",
            "*.txt",
            "--exclude",
            "drafts/**",
        ]
    )
    options = {o.name: o.from_args(args) for o in BATCH_OPTIONS if o.flag is not None}
    assert options == {
        "template_id": "tpl",
        "job_nodes": None,
        "output_dir": "out",
        "manifest": "m.sqlite",
        "files_per_job": 3,
        "max_file_bytes": 10_000_000,
        "max_job_bytes": 1024,
        "launch_rate": None,  # 0: no limit
        "max_concurrent_uploads": 2,
        "wait": False,
        "wait_timeout": 5.0,
        "poll_interval": 0.5,
        "retry_failed": True,
        "include_hidden": True,
        "include": ["*.pdf", "*.txt"],
        "exclude": ["drafts/**"],
    }


def test_the_command_lines_defaults_are_the_published_limits() -> None:
    args = _batch_parser().parse_args(["docs/", "--template-id", "tpl"])
    options = {o.name: o.from_args(args) for o in BATCH_OPTIONS if o.flag is not None}
    limits = ServiceLimits()
    assert limits.launch_interval is not None
    assert options["files_per_job"] == limits.files_per_job
    assert options["max_file_bytes"] == limits.bytes_per_file
    assert options["launch_rate"] == 1 / limits.launch_interval
    assert options["wait"] is True
    assert options["include"] == [] and options["exclude"] == []


def test_plan_batch_groups_by_the_published_limits_or_the_given_ones(tmp_path: Path) -> None:
    for i in range(11):
        (tmp_path / f"f{i:02}.txt").write_text("x")
    default = batch.plan_batch([tmp_path], template_id="tpl")
    assert default.jobs == 2  # 10 files per job, as submit_batch with a default client
    narrow = batch.plan_batch([tmp_path], template_id="tpl", limits=ServiceLimits(files_per_job=3))
    assert narrow.jobs == 4
    lifted = batch.plan_batch([tmp_path], template_id="tpl", limits=ServiceLimits(None))
    assert lifted.jobs == 1
    given = batch.plan_batch(
        [tmp_path], template_id="tpl", files_per_job=5, limits=ServiceLimits(files_per_job=3)
    )
    assert given.jobs == 3  # an explicit option wins over the limits, as in submit_batch


def test_plan_batch_refuses_files_over_the_limits_size(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_bytes(b"x" * 10)
    (tmp_path / "big.txt").write_bytes(b"x" * 100)
    plan = batch.plan_batch([tmp_path], template_id="tpl", limits=ServiceLimits(bytes_per_file=50))
    actions = {Path(f.path).name: f.action for f in plan.files}
    assert actions["small.txt"] == batch.PlannedAction.SEND
    assert actions["big.txt"] != batch.PlannedAction.SEND
    assert plan.jobs == 1
    assert FROM_LIMITS is batch.FROM_LIMITS
