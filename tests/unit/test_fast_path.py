"""The fast structure hook for job lists agrees with cattrs, field by field, for every field.

The fields are enumerated from ``attrs.fields``, and the sample values from each field's type:
a field added to `JobInformation` or `NodeFileMetadata` is tested without editing this file,
and a field of a type this file has no samples for fails loudly until samples are added.
Both paths are lenient alike: an optional field's bad value gives its default and lands in
``unparsed``, which the comparison includes; a required field's bad value fails both.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from unstructured_jobs._converter import ShapeError, converter, structure
from unstructured_jobs._models import UNPARSED, JobInformation, NodeFileMetadata, OpenEnum


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING = _Missing()  # "drop the key"


def _fast(data: Any) -> Any:
    """The fast hook alone, without the fallback to cattrs's detailed one."""
    from unstructured_jobs._converter import _fast_job

    return _fast_job(data)


def _detailed(data: Any) -> Any:
    from unstructured_jobs._converter import _detailed_job

    return _detailed_job(data, JobInformation)


def _unwrap_optional(t: Any) -> tuple[Any, bool]:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(t)) == 2:
            return args[0], True
    return t, False


def samples(t: Any) -> tuple[list[Any], list[Any]]:
    """(values cattrs accepts for `t`, JSON values it rejects), ``None`` never among the latter
    when `t` is optional."""
    inner, optional = _unwrap_optional(t)
    if optional:
        good, bad = samples(inner)
        return [*good, None], [b for b in bad if b is not None]
    if inner is str:
        return ["x", "", "naïve"], [5, 1.5, True, None, ["x"], {"a": "b"}]
    if isinstance(inner, type) and issubclass(inner, OpenEnum):
        return [m.value for m in inner] + ["SOMETHING_NEW"], [3, True, None, ["x"]]
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        return [m.value for m in inner], [None, ["x"]]
    if inner is datetime:
        good = ["2026-01-01T00:00:00Z", "2026-01-01T02:00:00.5+02:00", "2026-01-01T00:00Z"]
        return good, ["yesterday", 5, None, True]
    if inner is timedelta:
        return ["PT2M30S", "P1DT2H", "PT0.5S", 3, 2.5], ["P1Y", "soon", None, True, [1]]
    if inner is int:
        return [0, 7], ["3", 1.5, True, None]
    if inner is float:
        return [0.5, 3], ["1.5", True, None]
    if inner is bool:
        return [True, False], [0, "false", None]
    if typing.get_origin(inner) is tuple and typing.get_args(inner)[1:] == (Ellipsis,):
        good_items, bad_items = samples(typing.get_args(inner)[0])
        good = [[], good_items[:1], good_items]
        return good, ["x", {"a": 1}, None, *[[g, b] for g in good_items[:1] for b in bad_items]]
    if attrs.has(inner):
        base = minimal(inner, full=True)
        bad: list[Any] = [None, "x", [base]]
        bad += [{**base, k: v} for k, v in _field_variants(inner, want_good=False)]
        return [base], bad
    pytest.fail(f"no sample values for {t!r}: teach tests/unit/test_fast_path.py about it")


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    """The fields read from the wire (not ``unparsed``, which is filled, never read)."""
    return tuple(a for a in attrs.fields(attrs.resolve_types(cls)) if a.name != UNPARSED)


def minimal(cls: type, *, full: bool) -> dict[str, Any]:
    """A valid JSON object for `cls`: required fields only, or every field (`full`)."""
    out = {}
    for a in _fields(cls):
        if full or a.default is attrs.NOTHING:
            out[a.name] = samples(a.type)[0][0]
    return out


def _field_variants(cls: type, *, want_good: bool) -> Iterator[tuple[str, Any]]:
    for a in _fields(cls):
        good, bad = samples(a.type)
        for value in good if want_good else bad:
            yield a.name, value


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not any(type(v) is type(o) and v == o for o in out):
            out.append(v)
    return out


def cases() -> Iterator[Any]:
    """Every field of JobInformation present (each good and bad value), absent, and null;
    NodeFileMetadata's fields likewise, inside output_node_files."""
    base = minimal(JobInformation, full=True)
    for a in _fields(JobInformation):
        good, bad = samples(a.type)
        for value in _unique([*good, *bad, None, _MISSING]):
            case = dict(base)
            if value is _MISSING:
                del case[a.name]
            else:
                case[a.name] = value
            yield pytest.param(case, id=f"{a.name}={value!r}"[:60])
    node = minimal(NodeFileMetadata, full=True)
    for a in _fields(NodeFileMetadata):
        good, bad = samples(a.type)
        for value in _unique([*good, *bad, None, _MISSING]):
            n = dict(node)
            if value is _MISSING:
                del n[a.name]
            else:
                n[a.name] = value
            yield pytest.param(
                {**base, "output_node_files": [node, n]},
                id=f"output_node_files[1].{a.name}={value!r}"[:60],
            )
    yield pytest.param(minimal(JobInformation, full=False), id="required-fields-only")
    yield pytest.param([base], id="not-an-object")


def _outcome(fn: Any, data: Any) -> Any:
    try:
        value = fn(data)
    except Exception as exc:
        return ("error", type(exc))
    types = [(a.name, type(getattr(value, a.name))) for a in _fields(type(value))]
    nested = [dict(n.unparsed) for n in value.output_node_files or ()]
    return ("ok", value, types, dict(value.unparsed), nested)


@pytest.mark.parametrize("data", list(cases()))
def test_fast_path_equals_cattrs_for_every_field(data: Any) -> None:
    detailed = _outcome(_detailed, data)
    fast = _outcome(_fast, data)
    if detailed[0] == "ok":
        # What cattrs accepts, the fast path must accept too (else job lists get slow), and
        # build the same record, field by field and type by type, with the same odd values.
        assert fast == detailed
    else:
        # What cattrs rejects the fast path must not accept: it defers to cattrs instead.
        assert fast[0] == "error"
        hook = converter.get_structure_hook(JobInformation)
        assert _outcome(lambda d: hook(d, JobInformation), data) == detailed


def test_a_rejected_job_still_names_the_bad_field() -> None:
    data = {**minimal(JobInformation, full=True), "created_at": "soon"}
    with pytest.raises(ShapeError) as info:
        structure([data], list[JobInformation])
    assert any("$[0].created_at" in m for m in info.value.messages)


def test_an_odd_optional_field_is_kept_by_both_paths() -> None:
    """A bad nested record inside an optional field makes the field odd, not the job."""
    bad_nodes = [{"node_id": "n"}]
    data = {**minimal(JobInformation, full=True), "output_node_files": bad_nodes}
    for job in (_fast(data), _detailed(data), structure([data], list[JobInformation])[0]):
        assert job.output_node_files is None
        assert dict(job.unparsed) == {"output_node_files": bad_nodes}
