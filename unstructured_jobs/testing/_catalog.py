"""The emulator's templates (a fixed catalogue) and workflows (added by tests), as contract JSON.

Built from the contract and the official SDK's models (``TemplateListItem``,
``TemplateDetail``, ``WorkflowInformation``), never from the client's records.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

__all__ = [
    "TEMPLATES",
    "WORKFLOW_SORT_FIELDS",
    "Catalog",
    "ListQuery",
    "parse_list_query",
    "template_list_item",
    "template_nodes",
]

_NODE_NS = uuid.UUID("5b1f6a2e-2f0e-4c1e-9d8e-1d3b0a5c7e01")
_UPDATED = "2025-06-01T00:00:00Z"


def _node(template: str, name: str, type_: str, subtype: str, settings: Json) -> Json:
    node_id = str(uuid.uuid5(_NODE_NS, f"{template}/{name}"))
    return {"id": node_id, "name": name, "type": type_, "subtype": subtype, "settings": settings}


def _partition(template: str, strategy: str, **more: Any) -> Json:
    settings = {"strategy": strategy, "include_page_breaks": False, **more}
    return _node(template, "Partitioner", "partition", "unstructured_api", settings)


def _enrichment(template: str, name: str, subtype: str) -> Json:
    return _node(template, name, "prompter", subtype, {})


def _template(id_: str, name: str, description: str, nodes: list[Json]) -> Json:
    return {
        "id": id_,
        "name": name,
        "description": description,
        "version": "1.0.0",
        "last_updated": _UPDATED,
        "nodes": nodes,
    }


#: The emulator's templates, by id: realistic names (the ids the vendor's docs use).
TEMPLATES: dict[str, Json] = {
    t["id"]: t
    for t in (
        _template(
            "hi_res_partition",
            "High Resolution Partition",
            "Partition documents with the hi_res strategy (layout detection, OCR)",
            [_partition("hi_res_partition", "hi_res")],
        ),
        _template(
            "hi_res_and_enrichment",
            "High Resolution and Enrichment",
            "Partition with hi_res, then describe images and tables and extract entities",
            [
                _partition("hi_res_and_enrichment", "hi_res"),
                _enrichment(
                    "hi_res_and_enrichment", "Image Description", "openai_image_description"
                ),
                _enrichment(
                    "hi_res_and_enrichment", "Table Description", "openai_table_description"
                ),
                _enrichment("hi_res_and_enrichment", "Table to HTML", "openai_table2html"),
                _enrichment("hi_res_and_enrichment", "Named Entities", "openai_ner"),
            ],
        ),
        _template(
            "fast_partition",
            "Fast Partition",
            "Partition text-based documents quickly, without layout detection",
            [_partition("fast_partition", "fast")],
        ),
        _template(
            "vlm_partition",
            "VLM Partition",
            "Partition documents with a vision language model",
            [_partition("vlm_partition", "vlm", vlm_model_provider="anthropic")],
        ),
        _template(
            "hi_res_chunk_by_title",
            "High Resolution Partition and Chunk by Title",
            "Partition with hi_res, then chunk by title",
            [
                _partition("hi_res_chunk_by_title", "hi_res"),
                _node(
                    "hi_res_chunk_by_title",
                    "Chunker",
                    "chunk",
                    "chunk_by_title",
                    {"max_characters": 1500, "new_after_n_chars": 1200},
                ),
            ],
        ),
    )
}


def template_list_item(template: Json) -> Json:
    """A template as ``GET /api/v1/templates/`` lists it (no nodes)."""
    return {k: v for k, v in template.items() if k != "nodes"}


def template_nodes(template_id: str) -> list[Json] | None:
    """The nodes of a known template, or None."""
    template = TEMPLATES.get(template_id)
    return None if template is None else [dict(n) for n in template["nodes"]]


WORKFLOW_SORT_FIELDS = ("id", "name", "created_at", "updated_at", "status")


@dataclass(frozen=True)
class ListQuery:
    """The filters of ``GET /api/v1/workflows/`` (already validated)."""

    page: int | None = None
    page_size: int | None = None
    status: str | None = None
    name: str | None = None
    source_id: str | None = None
    destination_id: str | None = None
    created_since: datetime | None = None
    created_before: datetime | None = None
    sort_by: str = "id"
    descending: bool = False
    only_soft_deleted: bool = False
    dag_node_configuration_id: str | None = None


DEFAULT_PAGE_SIZE = 20


def _timestamp(value: datetime | str | None) -> str:
    when = datetime.now(UTC) if value is None else value
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return text + f"{when.microsecond // 1000:03d}Z"


class Catalog:
    """The workflows of one emulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workflows: dict[str, Json] = {}

    def add(
        self,
        name: str,
        *,
        workflow_id: str | None,
        status: str,
        sources: Iterable[str],
        destinations: Iterable[str],
        workflow_type: str | None,
        nodes: Sequence[Mapping[str, Any]] | None,
        schedule: Sequence[str] | None,
        reprocess_all: bool,
        created_at: datetime | str | None,
        updated_at: datetime | str | None,
    ) -> str:
        """Record a workflow; return its id."""
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        if status not in ("active", "inactive"):
            raise ValueError(f"status must be 'active' or 'inactive', got {status!r}")
        wid = str(uuid.UUID(workflow_id)) if workflow_id is not None else str(uuid.uuid4())
        if nodes is None:
            nodes = [
                {"name": "Partitioner", "type": "partition", "subtype": "unstructured_api",
                 "settings": {"strategy": "hi_res"}},
            ]  # fmt: skip
        workflow_nodes = []
        for i, node in enumerate(nodes):
            for key in ("name", "type", "subtype"):
                if not isinstance(node.get(key), str):
                    raise ValueError(f"nodes[{i}] needs a string {key!r}")
            full = {"id": str(uuid.uuid5(uuid.UUID(wid), f"{i}/{node['name']}")), "settings": None}
            workflow_nodes.append(full | dict(node))
        created = _timestamp(created_at)
        record: Json = {
            "id": wid,
            "name": name,
            "sources": [str(uuid.UUID(s)) for s in sources],
            "destinations": [str(uuid.UUID(d)) for d in destinations],
            "status": status,
            "created_at": created,
            "updated_at": created if updated_at is None else _timestamp(updated_at),
            "workflow_nodes": workflow_nodes,
            "reprocess_all": bool(reprocess_all),
            "schedule": None
            if not schedule
            else {"crontab_entries": [{"cron_expression": c} for c in schedule]},
            "workflow_type": workflow_type,
        }
        with self._lock:
            if wid in self._workflows:
                raise ValueError(f"a workflow with id {wid} exists already")
            self._workflows[wid] = record
        return wid

    def get(self, workflow_id: str) -> Json | None:
        """One workflow's JSON, or None."""
        with self._lock:
            found = self._workflows.get(workflow_id)
            return None if found is None else _copy(found)

    def all(self) -> dict[str, Json]:
        """Every workflow, in the order they were added."""
        with self._lock:
            return {k: _copy(v) for k, v in self._workflows.items()}

    def clear(self) -> None:
        """Forget every workflow."""
        with self._lock:
            self._workflows.clear()

    def list(self, query: ListQuery) -> list[Json]:
        """The workflows matching `query`, sorted, one page of them when paging is asked."""
        if query.only_soft_deleted:
            return []  # the emulator never soft-deletes
        checks: list[Callable[[Json], bool]] = []
        if query.status is not None:
            checks.append(lambda w: w["status"] == query.status)
        if query.name is not None:
            needle = query.name.casefold()
            checks.append(lambda w: needle in w["name"].casefold())
        if query.source_id is not None:
            checks.append(lambda w: query.source_id in w["sources"])
        if query.destination_id is not None:
            checks.append(lambda w: query.destination_id in w["destinations"])
        if query.created_since is not None:
            since = query.created_since
            checks.append(lambda w: datetime.fromisoformat(w["created_at"]) >= since)
        if query.created_before is not None:
            before = query.created_before
            checks.append(lambda w: datetime.fromisoformat(w["created_at"]) < before)
        if query.dag_node_configuration_id is not None:
            node_id = query.dag_node_configuration_id
            checks.append(lambda w: any(n.get("id") == node_id for n in w["workflow_nodes"]))
        found = [w for w in self.all().values() if all(check(w) for check in checks)]
        key = query.sort_by
        found.sort(
            key=lambda w: (w.get(key) is None, str(w.get(key) or "")), reverse=query.descending
        )
        if query.page is None and query.page_size is None:
            return found
        size = query.page_size or DEFAULT_PAGE_SIZE
        start = ((query.page or 1) - 1) * size
        return found[start : start + size]


def _copy(workflow: Json) -> Json:
    out = dict(workflow)
    out["sources"] = list(workflow["sources"])
    out["destinations"] = list(workflow["destinations"])
    out["workflow_nodes"] = [dict(n) for n in workflow["workflow_nodes"]]
    return out


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def parse_list_query(query: Mapping[str, str]) -> ListQuery | list[Json]:
    """`query` as a `ListQuery`, or the 422 detail items (pydantic v2 shape) of what is wrong."""
    errors: list[Json] = []
    values: dict[str, Any] = {}

    def bad(name: str, msg: str, type_: str) -> None:
        errors.append({"type": type_, "loc": ["query", name], "msg": msg, "input": query[name]})

    for name in ("page", "page_size"):
        if name in query:
            try:
                number = int(query[name])
            except ValueError:
                bad(name, "Input should be a valid integer, unable to parse string as an "
                    "integer", "int_parsing")  # fmt: skip
                continue
            if number < 1:
                bad(name, "Input should be greater than or equal to 1", "greater_than_equal")
            values[name] = number
    for name, allowed in (("status", ("active", "inactive")), ("sort_direction", ("asc", "desc"))):
        if name in query and query[name] not in allowed:
            bad(name, f"Input should be '{allowed[0]}' or '{allowed[1]}'", "enum")
    if query.get("sort_by", "id") not in WORKFLOW_SORT_FIELDS:
        bad("sort_by", f"Value error, sort_by must be one of {', '.join(WORKFLOW_SORT_FIELDS)}",
            "value_error")  # fmt: skip
    for name in ("source_id", "destination_id"):
        if name in query:
            try:
                values[name] = str(uuid.UUID(query[name]))
            except ValueError:
                bad(name, "Input should be a valid UUID", "uuid_parsing")
    for name in ("created_since", "created_before"):
        if name in query:
            try:
                when = datetime.fromisoformat(query[name])
            except ValueError:
                bad(name, "Input should be a valid datetime", "datetime_from_date_parsing")
                continue
            values[name] = when if when.tzinfo else when.replace(tzinfo=UTC)
    flags = {}
    for name in ("show_only_soft_deleted", "show_recommender_workflows"):
        if name in query:
            text = query[name].strip().lower()
            if text not in _TRUE | _FALSE:
                bad(name, "Input should be a valid boolean, unable to interpret input",
                    "bool_parsing")  # fmt: skip
            flags[name] = text in _TRUE
    if errors:
        return errors
    return ListQuery(
        page=values.get("page"),
        page_size=values.get("page_size"),
        status=query.get("status"),
        name=query.get("name"),
        source_id=values.get("source_id"),
        destination_id=values.get("destination_id"),
        created_since=values.get("created_since"),
        created_before=values.get("created_before"),
        sort_by=query.get("sort_by", "id"),
        descending=query.get("sort_direction") == "desc",
        only_soft_deleted=flags.get("show_only_soft_deleted", False),
        dag_node_configuration_id=query.get("dag_node_configuration_id"),
    )
