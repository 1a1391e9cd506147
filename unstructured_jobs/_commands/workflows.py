"""``unstructured-jobs workflows``: the workflows (with the API's filters), or one (``--id``).

A workflow's ``id`` is what ``run WORKFLOW_ID`` takes. Creating, changing and deleting
workflows is done in the platform's UI (out of this package's scope).
"""

from __future__ import annotations

import argparse

from .._converter import unstructure
from .._exit_codes import ExitCode
from .._models import Workflow
from . import _common
from ._types import positive, uuid_id

NAME = "workflows"
HELP = "list the workflows (the ids run takes), or show one with --id"
WORKFLOW_STATES = ("active", "inactive")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--id``, or the list's filters."""
    p.add_argument(
        "--id",
        dest="workflow_id",
        type=uuid_id("workflow_id"),
        metavar="WORKFLOW_ID",
        help="show this workflow and its nodes",
    )
    p.add_argument(
        "--status",
        type=str.lower,
        choices=WORKFLOW_STATES,
        metavar="STATUS",
        help="only active or inactive workflows",
    )
    p.add_argument("--name", help="only workflows whose name contains this")
    p.add_argument("--source-id", type=uuid_id("source_id"), help="only those reading this source")
    p.add_argument(
        "--destination-id",
        type=uuid_id("destination_id"),
        help="only those writing to this destination",
    )
    p.add_argument("--page", type=positive, help="this page only (from 1)")
    p.add_argument("--page-size", type=positive, help="workflows per page")


def _schedule(workflow: Workflow) -> str:
    entries = workflow.schedule.crontab_entries if workflow.schedule else ()
    return "; ".join(e.cron_expression for e in entries)


async def run(args: argparse.Namespace) -> ExitCode:
    """List the workflows, or show one."""
    async with _common.client(args) as client:
        if args.workflow_id is None:
            workflows = await client.list_workflows(
                status=args.status,
                name=args.name,
                source_id=args.source_id,
                destination_id=args.destination_id,
                page=args.page,
                page_size=args.page_size,
            )
            rows = [
                [
                    w.id,
                    w.name,
                    w.status,
                    w.workflow_type,
                    w.created_at.isoformat(timespec="seconds"),
                    _schedule(w),
                ]
                for w in workflows
            ]
            headers: tuple[str, ...] = ("id", "name", "status", "type", "created_at", "schedule")
            _common.show(args, unstructure(workflows), headers, rows, shrink=(1,))
            return ExitCode.OK
        workflow = await client.get_workflow(args.workflow_id)
    if not args.json and not args.quiet:
        print(f"{workflow.id}: {workflow.name} ({workflow.status}, {workflow.workflow_type})")
        print(f"sources: {', '.join(workflow.sources) or '-'}")
        print(f"destinations: {', '.join(workflow.destinations) or '-'}")
        if schedule := _schedule(workflow):
            print(f"schedule: {schedule}")
        print()
    rows = [[n.id, n.name, n.type, n.subtype] for n in workflow.workflow_nodes]
    headers = ("node_id", "name", "type", "subtype")
    _common.show(args, unstructure(workflow), headers, rows, shrink=(1,))
    return ExitCode.OK
