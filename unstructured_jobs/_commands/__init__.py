"""The subcommands of ``unstructured-jobs``, one module each (parsing and errors live in `cli`).

Each command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``, which
returns an `ExitCode` (a coroutine function for the commands that talk to the API; errors are
raised, `cli` maps them to statuses). Optional: ``REQUIRED`` (the required options, for the
usage line), ``COMMON_OPTIONS = False`` (a command without the common options: ``serve``) and
``NEEDS_PARSER = True`` (the whole parser as ``args.parser``: ``completion``).
Shared pieces: `_common` (common options, the client, job tables), `_progress` (progress on
stderr), `_report` (a batch's report), `_types` (argument types).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from .._exit_codes import ExitCode
from .._version import __version__
from . import (
    batch,
    cancel,
    completion,
    create,
    demo,
    details,
    download,
    failed_files,
    file_status,
    get,
    run,
    serve,
    templates,
    wait,
    workflows,
)
from . import list as list_
from ._common import Parser, add_common_options

__all__ = ["COMMANDS", "Command", "build_parser"]

Command = Callable[[argparse.Namespace], Awaitable[ExitCode] | ExitCode]
"""One subcommand: parsed arguments in, exit status out (errors are raised, `cli` maps them)."""

_MODULES: tuple[ModuleType, ...] = (
    create,
    run,
    list_,
    get,
    details,
    failed_files,
    file_status,
    cancel,
    wait,
    download,
    templates,
    workflows,
    batch,
    serve,
    demo,
    completion,
)
COMMANDS: dict[str, Command] = {m.NAME: m.run for m in _MODULES}


def build_parser() -> Parser:
    """The whole command line: the program, its subcommands and their options."""
    common = Parser(add_help=False)
    add_common_options(common, defaults=False)
    parser = Parser(
        prog="unstructured-jobs",
        usage="%(prog)s [OPTIONS] COMMAND [ARGS]",
        description="Run Unstructured Platform jobs. Options go before or after the command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common_options(parser, defaults=True)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, prog="unstructured-jobs"
    )
    for module in _MODULES:
        p = _add(sub, module, common)
        if getattr(module, "NEEDS_PARSER", False):
            p.set_defaults(parser=parser)
    return parser


def _add(sub: Any, module: ModuleType, common: Parser) -> Parser:
    parents = [common] if getattr(module, "COMMON_OPTIONS", True) else []
    p: Parser = sub.add_parser(
        module.NAME, parents=parents, help=module.HELP, description=module.HELP
    )
    module.add_arguments(p)
    # A short usage line (argparse's own lists every common option: ten lines for `get`).
    positionals = [_shown(a) for a in p._actions if not a.option_strings]
    required = getattr(module, "REQUIRED", "")
    p.usage = " ".join(filter(None, [f"unstructured-jobs {module.NAME}", required, "[OPTIONS]"]))
    p.usage = " ".join([p.usage, *positionals])
    return p


def _shown(action: argparse.Action) -> str:
    name = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    if action.nargs == "+":
        return f"{name}..."
    if action.nargs in ("*", "?"):
        return f"[{name}...]" if action.nargs == "*" else f"[{name}]"
    return name
