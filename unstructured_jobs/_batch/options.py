"""The options of a batch, declared once (`BATCH_OPTIONS`).

`submit_batch`, `run_batch` and `plan_batch` (`unstructured_jobs.batch`) keep real keyword
parameters, so that `help()`, type checkers and a notebook's signature popup show them in full;
the command line (``unstructured-jobs batch``, `unstructured_jobs._commands.batch`) builds its
flags from this declaration and reads them back into the options. tests/unit/test_batch_options.py
checks that each function's parameters are exactly the declared ones (name, annotation,
default), that `submit_batch`'s docstring documents each and docs/cli.md each flag: a new option
is one entry here, and a test fails until every function, the command line and the docs have it.

This module is light (no aiohttp, no SQLite): the command line imports it to build ``batch
--help`` without importing the batch engine.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs

from .._constants import (
    BATCH_CLOCK_SKEW,
    BATCH_MANIFEST_NAME,
    BATCH_MAX_CONCURRENT_UPLOADS,
    BATCH_MAX_SUBMIT_ATTEMPTS,
    BATCH_RECONCILE_GRACE,
    CLI_BATCH_MANIFEST,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    SERVICE_LAUNCHES_PER_SECOND,
    SERVICE_MAX_FILE_BYTES,
    SERVICE_MAX_FILES_PER_JOB,
)

__all__ = ["BATCH_OPTIONS", "FROM_LIMITS", "BatchOption", "CliKind", "options_of"]


class _FromLimits(enum.Enum):
    FROM_LIMITS = "from the client's limits"

    def __repr__(self) -> str:
        return "FROM_LIMITS"


FROM_LIMITS = _FromLimits.FROM_LIMITS
"""The default of `submit_batch`'s `files_per_job`, `max_file_bytes` and `launch_rate`: the
value from the client's `ServiceLimits` (``client.limits``; `plan_batch`: its ``limits``)."""

CliKind = Literal["text", "positive", "size", "rate", "flag", "negated", "globs", "shared"]
"""How the command line reads a flag: ``text`` as given; ``positive`` a whole number >= 1;
``size`` a byte size (``10MB``); ``rate`` a number >= 0, 0 read as None (no limit); ``flag`` a
switch (True when given); ``negated`` a switch that sets the option to False (``--no-wait``);
``globs`` a repeatable pattern (a list); ``shared``: a flag that a helper shared with other
commands adds (``--template-id``, ``--timeout``), read as given."""


@attrs.frozen
class BatchOption:
    """One keyword option of a batch: its parameter and, when it has one, its flag."""

    name: str
    """The keyword parameter of `submit_batch` (and `run_batch`, and `plan_batch` when `plan`)."""
    annotation: str
    """Its type, exactly as the signatures spell it."""
    default: Any
    """Its default in the functions."""
    doc: str
    """One line on what it does (the full text is in `submit_batch`'s docstring)."""
    plan: bool = True
    """Also an option of `plan_batch` (what a dry run needs to know)."""
    flag: str | None = None
    """The command line's flag; None: not on the command line."""
    short: str | None = None
    """The flag's short form (``-o``), if any."""
    kind: CliKind = "text"
    """How the command line reads the flag (`CliKind`)."""
    cli_default: Any = None
    """The flag's default (the command line shows concrete values, not `FROM_LIMITS`)."""
    cli_help: str | None = None
    """The flag's help; ``{default}`` is replaced by `cli_default` as the flag reads it."""

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments (argparse's name for the flag)."""
        assert self.flag is not None
        return self.flag.lstrip("-").replace("-", "_")

    def from_args(self, args: Any) -> Any:
        """The option's value from parsed command line arguments."""
        value = getattr(args, self.dest)
        if self.kind == "negated":
            return not value
        if self.kind == "rate":
            return value or None
        return value


BATCH_OPTIONS: tuple[BatchOption, ...] = (
    BatchOption(
        "template_id",
        "str | None",
        None,
        "the template every job runs",
        flag="--template-id",
        kind="shared",
    ),
    BatchOption(
        "job_nodes",
        "list[dict[str, Any]] | None",
        None,
        "the nodes every job runs",
        flag="--job-nodes",
        kind="shared",
    ),
    BatchOption(
        "output_dir",
        "str | os.PathLike[str] | None",
        None,
        "where to download each file's output",
        flag="--output",
        short="-o",
        cli_help="download outputs into this folder",
    ),
    BatchOption(
        "manifest",
        "str | os.PathLike[str] | None",
        None,
        "the SQLite manifest (reuse it to resume)",
        flag="--manifest",
        cli_help=f"manifest file (default: OUTPUT/{BATCH_MANIFEST_NAME}, "
        f"else ./{CLI_BATCH_MANIFEST})",
    ),
    BatchOption(
        "files_per_job",
        "int | _FromLimits",
        FROM_LIMITS,
        "input files in one job, at most",
        flag="--files-per-job",
        kind="positive",
        cli_default=SERVICE_MAX_FILES_PER_JOB,
        cli_help="default {default}",
    ),
    BatchOption(
        "max_file_bytes",
        "int | _FromLimits | None",
        FROM_LIMITS,
        "larger files are failed and never sent",
        flag="--max-file-size",
        kind="size",
        cli_default=SERVICE_MAX_FILE_BYTES,
        cli_help="default {default}",
    ),
    BatchOption(
        "max_job_bytes",
        "int | None",
        None,
        "bytes of one job's files, at most",
        flag="--max-job-size",
        kind="size",
        cli_help="default: no limit",
    ),
    BatchOption(
        "launch_rate",
        "float | _FromLimits | None",
        FROM_LIMITS,
        "job launches per second, at most",
        plan=False,
        flag="--launch-rate",
        kind="rate",
        cli_default=SERVICE_LAUNCHES_PER_SECOND,
        cli_help="jobs/s, 0: no limit",
    ),
    BatchOption(
        "max_concurrent_uploads",
        "int",
        BATCH_MAX_CONCURRENT_UPLOADS,
        "create-job requests in flight at once",
        plan=False,
        flag="--concurrency",
        kind="positive",
        cli_default=BATCH_MAX_CONCURRENT_UPLOADS,
        cli_help="uploads at once (default {default})",
    ),
    BatchOption(
        "wait",
        "bool",
        True,
        "wait for the jobs",
        flag="--no-wait",
        kind="negated",
        cli_help="submit only; re-run to wait",
    ),
    BatchOption(
        "wait_timeout",
        "float | None",
        None,
        "seconds to wait for each job",
        plan=False,
        flag="--timeout",
        kind="shared",
    ),
    BatchOption(
        "poll_interval",
        "float",
        DEFAULT_POLL_INTERVAL,
        "seconds between two looks at the batch's jobs",
        plan=False,
        flag="--poll-interval",
        kind="shared",
    ),
    BatchOption(
        "max_poll_interval",
        "float",
        DEFAULT_MAX_POLL_INTERVAL,
        "not used by batches (kept for compatibility)",
        plan=False,
    ),
    BatchOption(
        "clock_skew",
        "float",
        BATCH_CLOCK_SKEW,
        "seconds of tolerance when matching a possibly created job",
        plan=False,
    ),
    BatchOption(
        "reconcile_grace",
        "float",
        BATCH_RECONCILE_GRACE,
        "seconds before listing jobs again for a lost answer",
        plan=False,
    ),
    BatchOption(
        "max_submit_attempts",
        "int",
        BATCH_MAX_SUBMIT_ATTEMPTS,
        "sends of one group per run after errors that prove no job was created",
        plan=False,
    ),
    BatchOption(
        "retry_failed",
        "bool",
        False,
        "send again the files whose job failed",
        flag="--retry-failed",
        kind="flag",
        cli_help="resend files whose job failed",
    ),
    BatchOption(
        "include_hidden",
        "bool",
        False,
        "take hidden files and folders too",
        flag="--include-hidden",
        kind="flag",
        cli_help="include dot files in folders",
    ),
    BatchOption(
        "include",
        "Sequence[str]",
        (),
        "only files matching one of these patterns",
        flag="--include",
        kind="globs",
        cli_help="only files matching this pattern (repeatable): '*.pdf' matches names, "
        "'drafts/**' the end of paths",
    ),
    BatchOption(
        "exclude",
        "Sequence[str]",
        (),
        "leave out files matching one of these patterns",
        flag="--exclude",
        kind="globs",
        cli_help="leave out files matching this pattern (repeatable)",
    ),
    BatchOption(
        "observer",
        "BatchObserver | None",
        None,
        "told about progress (upload bytes, jobs, files)",
        plan=False,
    ),
    BatchOption(
        "progress",
        "bool",
        False,
        "bars with tqdm.auto (a widget in Jupyter); the command line has its own --progress",
        plan=False,
    ),
)
"""Every keyword option of a batch, in the signatures' order."""


def options_of(values: dict[str, Any], *, plan: bool = False) -> dict[str, Any]:
    """The batch options among `values` (a function's ``locals()``): every declared one, or
    `plan_batch`'s with `plan`."""
    return {o.name: values[o.name] for o in BATCH_OPTIONS if o.plan or not plan}
