"""``unstructured-jobs templates``: the job templates, or one with its nodes (``--id``).

A template's ``id`` is what ``create --template-id`` and ``batch --template-id`` take.
"""

from __future__ import annotations

import argparse

from .._converter import unstructure
from .._exit_codes import ExitCode
from . import _common
from ._types import name_id

NAME = "templates"
HELP = "list the job templates (the ids --template-id takes), or show one with --id"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--id``."""
    p.add_argument(
        "--id",
        dest="template_id",
        type=name_id("template_id"),
        metavar="TEMPLATE_ID",
        help="show this template and its nodes (e.g. hi_res_partition)",
    )


async def run(args: argparse.Namespace) -> ExitCode:
    """List the templates, or show one."""
    async with _common.client(args) as client:
        if args.template_id is None:
            templates = await client.list_templates()
            rows = [[t.id, t.name, t.version, t.last_updated, t.description] for t in templates]
            headers: tuple[str, ...] = ("id", "name", "version", "last_updated", "description")
            _common.show(args, unstructure(templates), headers, rows, shrink=(1, 4))
            return ExitCode.OK
        template = await client.get_template(args.template_id)
    if not args.json and not args.quiet:
        print(f"{template.id}: {template.name} (version {template.version})")
        if template.description:
            print(template.description)
        print()
    rows = [[n.id, n.name, n.type, n.subtype] for n in template.nodes]
    headers = ("node_id", "name", "type", "subtype")
    _common.show(args, unstructure(template), headers, rows, shrink=(1,))
    return ExitCode.OK
