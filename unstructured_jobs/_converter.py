"""The package's one cattrs converter, configured once at import time.

- datetimes: ISO 8601 with ``Z`` or an offset, any number of fractional digits (the C
  `fromisoformat` first, a tolerant parser for the rest); always returned timezone-aware (UTC
  when the server gives no offset).
- `runtime`: ISO 8601 durations (``PT2M30S``, ``P1DT2H``, ``PT0.5S``) to `timedelta`.
- primitives are strict: ``"3"`` is not an int, ``"false"`` is not a bool, ``5`` is not a str;
  a tuple field takes a JSON array only (not a string's characters or an object's keys).
- open enums keep unknown values (see `OpenEnum`); unknown fields are ignored.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.preconf.json import make_converter

from ._exceptions import reduce_error
from ._models import (
    CancelJobResult,
    JobInformation,
    JobStatus,
    NodeFileMetadata,
    OpenEnum,
    WorkflowJobType,
)

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=False)

_ISO_DT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<frac>\d+))?(?P<tz>Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(value: object) -> datetime:
    """Parse an ISO 8601 timestamp into an aware datetime (UTC if it has no offset)."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    try:  # the C parser takes "Z" and any fraction, and is ~10x faster than the regex
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass  # fall through to the tolerant parser below
    else:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    match = _ISO_DT.match(value.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {value[:40]!r}")
    time = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
    frac = (match["frac"] or "")[:6].ljust(6, "0") if match["frac"] else None
    tz = match["tz"]
    text = f"{match['date']}T{time}" + (f".{frac}" if frac else "")
    if tz and tz not in ("Z", "z"):
        text += tz if ":" in tz else f"{tz[:3]}:{tz[3:]}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_ISO_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_duration(value: object) -> timedelta:
    """Parse an ISO 8601 duration (no years or months: they have no fixed length)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)  # some servers send plain seconds
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 duration, got {type(value).__name__}")
    return _parse_duration_text(value)


@functools.lru_cache(maxsize=4096)  # job lists repeat the same few runtimes
def _parse_duration_text(value: str) -> timedelta:
    match = _ISO_DURATION.match(value.strip().upper())
    if match is None or value.strip().upper() in ("P", "PT") or value.strip().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {value[:40]!r}")
    parts = {
        k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v and k != "sign"
    }
    delta = timedelta(**parts)
    return -delta if match["sign"] else delta


def format_duration(value: timedelta) -> str:
    """Format a timedelta as an ISO 8601 duration (``PT2M30S``)."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}P" + (f"{int(days)}D" if days else "") + "T"
    out += (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    out += f"{seconds:g}S" if seconds or out.endswith("T") else ""
    return out


def _strict(expected: type[Any], label: str) -> Any:
    accepted: tuple[type[Any], ...] = (int, float) if expected is float else (expected,)

    def hook(value: object, _: Any) -> Any:
        if type(value) is bool and expected is not bool:
            raise TypeError(f"expected {label}, got bool")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {label}, got {type(value).__name__}")
        return float(value) if expected is float else value

    return hook


converter.register_structure_hook(str, _strict(str, "a string"))
converter.register_structure_hook(int, _strict(int, "an integer"))
converter.register_structure_hook(bool, _strict(bool, "a boolean"))
converter.register_structure_hook(float, _strict(float, "a number"))
converter.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
converter.register_unstructure_hook(datetime, lambda v: v.isoformat().replace("+00:00", "Z"))
converter.register_structure_hook(timedelta, lambda v, _: parse_duration(v))
converter.register_unstructure_hook(timedelta, format_duration)


def _structure_open_enum(value: object, cls: type[OpenEnum]) -> OpenEnum:
    if not isinstance(value, str):
        raise TypeError(f"expected a string {cls.__name__}, got {type(value).__name__}")
    return cls(value)


# Registered by class (not by predicate) so that it wins over the `str` hook for these str-enums.
converter.register_structure_hook(OpenEnum, _structure_open_enum)
converter.register_unstructure_hook(OpenEnum, lambda v: v.value)


def _is_homogeneous_tuple(t: Any) -> bool:
    return typing.get_origin(t) is tuple and typing.get_args(t)[1:] == (Ellipsis,)


def _json_array_tuple(t: Any, conv: cattrs.Converter) -> Any:
    # cattrs turns any iterable into a tuple: "ab" into ("a", "b"), {"k": 1} into ("k",).
    inner = homogenous_tuple_structure_factory(t, conv)

    def hook(value: object, cls: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        return inner(value, cls)

    return hook


converter.register_structure_hook_factory(_is_homogeneous_tuple, _json_array_tuple)


def _structure_cancel(value: object, _: Any) -> CancelJobResult:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    status = value.get("status")
    return CancelJobResult(
        id=value["id"] if isinstance(value.get("id"), str) else None,
        status=JobStatus(status) if isinstance(status, str) else None,
        message=value["message"] if isinstance(value.get("message"), str) else None,
        raw=dict(value),
    )


converter.register_structure_hook(CancelJobResult, _structure_cancel)
converter.register_unstructure_hook(CancelJobResult, lambda v: dict(v.raw))


# ------------------------------------------------------------------ fast path for job lists
# Listing 10,000 jobs is the hot path. This hook builds `JobInformation` directly when every
# field has exactly the expected JSON type, and otherwise hands the same data to the hook cattrs
# generated, which then decides: the result (or the detailed error) is always cattrs's own.
_detailed_job = converter.get_structure_hook(JobInformation)
_STATUSES: dict[str, JobStatus] = {m.value: m for m in JobStatus}
_EPHEMERAL = WorkflowJobType.EPHEMERAL


_JOB_TYPES: dict[str, WorkflowJobType] = {m.value: m for m in WorkflowJobType}
_STR = str


def _fast_job(d: Any) -> JobInformation:
    if type(d) is not dict:
        raise TypeError
    job_id, workflow_id, name, status = d["id"], d["workflow_id"], d["workflow_name"], d["status"]
    if not (type(job_id) is type(workflow_id) is type(name) is type(status) is _STR):
        raise TypeError
    get = d.get
    runtime = get("runtime")
    files = get("input_file_ids")
    if files is not None:
        if type(files) is not list:
            raise TypeError
        for f in files:
            if type(f) is not _STR:
                raise TypeError
        files = tuple(files)
    outputs = get("output_node_files")
    if outputs is not None:
        if type(outputs) is not list:
            raise TypeError
        nodes = []
        for n in outputs:
            a, b, c, e = n["node_id"], n["file_id"], n["node_type"], n["node_subtype"]
            if not (type(a) is type(b) is type(c) is type(e) is _STR):
                raise TypeError
            nodes.append(NodeFileMetadata(a, b, c, e))
        outputs = tuple(nodes)
    job_type = get("job_type", _EPHEMERAL)
    if job_type is not _EPHEMERAL:
        if type(job_type) is not _STR:
            raise TypeError
        job_type = _JOB_TYPES.get(job_type) or WorkflowJobType(job_type)
    return JobInformation(
        job_id,
        workflow_id,
        name,
        _STATUSES.get(status) or JobStatus(status),
        parse_datetime(d["created_at"]),
        None if runtime is None else parse_duration(runtime),
        files,
        outputs,
        job_type,
    )


def _structure_job(data: Any, cls: Any) -> JobInformation:
    try:
        return _fast_job(data)
    except Exception:
        return _detailed_job(data, cls)  # type: ignore[no-any-return]


converter.register_structure_hook(JobInformation, _structure_job)


class ShapeError(Exception):
    """Internal: the JSON did not fit the record; `messages` name each bad field."""

    __reduce__ = reduce_error

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def structure(data: Any, cls: type[T]) -> T:
    """Structure JSON data into `cls`, raising `ShapeError` that names every bad field."""
    if attrs.has(cls) and not isinstance(data, Mapping):
        raise ShapeError([f"expected a JSON object, got {type(data).__name__} @ $"])
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        raise ShapeError(cattrs.transform_error(exc)) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ShapeError([f"{exc} @ $"]) from exc


def unstructure(value: Any) -> Any:
    """Unstructure a record to plain JSON-ready data (enums as their values)."""
    return converter.unstructure(value)
