"""The package's one cattrs converter, configured once at import time.

- datetimes: ISO 8601 with ``Z`` (or ``z``) or an offset, any number of fractional digits
  (`datetime.fromisoformat`); always returned timezone-aware (UTC when the server gives none).
- `runtime`: ISO 8601 durations (``PT2M30S``, ``P1DT2H``, ``PT0.5S``) to `timedelta`.
- primitives are strict: ``"3"`` is not an int, ``"false"`` is not a bool, ``5`` is not a str;
  a tuple field takes a JSON array only (not a string's characters or an object's keys).
- open enums keep unknown values (see `OpenEnum`); unknown fields are ignored.
- optional fields are lenient: a value that cannot be read as its type gives the field's
  default, and the value goes to the record's ``unparsed`` mapping (see `_models`); required
  fields raise, naming the field. Both paths below (cattrs's hooks and the fast job hook) agree.
"""

from __future__ import annotations

import functools
import linecache
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from ._exceptions import reduce_error
from ._models import (
    NOTHING_UNPARSED,
    UNPARSED,
    CancelJobResult,
    FrozenMap,
    JobInformation,
    JobStatus,
    OpenEnum,
)

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=False)


def parse_datetime(value: object) -> datetime:
    """Parse an ISO 8601 timestamp into an aware datetime (UTC if it has no offset)."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    try:  # since 3.11 it takes "Z", "," and any number of fractional digits
        parsed = datetime.fromisoformat(value)
    except ValueError:
        text = value.strip()  # what it still refuses: spaces around, a lowercase "z"
        if text[-1:] == "z":
            text = text[:-1] + "Z"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value[:40]!r}") from None
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
# One table for the converter's hooks and the fast path below, so that both parse alike.
_PARSERS: dict[type, Callable[[object], Any]] = {
    datetime: parse_datetime,
    timedelta: parse_duration,
}


def _parser_hook(parse: Callable[[object], Any]) -> Callable[[object, Any], Any]:
    return lambda value, _: parse(value)


for _type, _parse in _PARSERS.items():
    converter.register_structure_hook(_type, _parser_hook(_parse))
converter.register_unstructure_hook(datetime, lambda v: v.isoformat().replace("+00:00", "Z"))
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


def _has_unparsed(t: Any) -> bool:
    return attrs.has(t) and any(f.name == UNPARSED for f in attrs.fields(t))


def _optional_fields(cls: type) -> frozenset[str]:
    """The fields of `cls` read from the wire that have a default."""
    return frozenset(
        f.name for f in attrs.fields(cls) if f.default is not attrs.NOTHING and f.name != UNPARSED
    )


def _failed_fields(exc: cattrs.ClassValidationError) -> set[str]:
    names = set()
    for sub in exc.exceptions:
        for note in getattr(sub, "__notes__", ()):
            if isinstance(note, cattrs.AttributeValidationNote):
                names.add(note.name)
    return names


def _lenient_record(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """cattrs's own detailed hook for `cls`, except that an optional field it cannot read
    takes its default and its value goes to ``unparsed``; required fields still raise."""
    strict = make_dict_structure_fn(cls, conv, unparsed=override(omit=True))
    optional = _optional_fields(cls)

    def hook(data: Any, _: Any) -> Any:
        try:
            return strict(data, cls)
        except cattrs.ClassValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            odd = {n: data[n] for n in _failed_fields(exc) & optional if n in data}
            if not odd:
                raise
        # Again without them: a required field that is also wrong is named on its own.
        record = strict({k: v for k, v in data.items() if k not in odd}, cls)
        return attrs.evolve(record, **{UNPARSED: FrozenMap(odd)})

    return hook


def _unstructure_record(cls: Any, conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Records become JSON as received: an odd optional field gives back the server's value."""
    plain = make_dict_unstructure_fn(cls, conv, unparsed=override(omit=True))

    def hook(value: Any) -> Any:
        data = plain(value)
        data.update(getattr(value, UNPARSED))
        return data

    return hook


converter.register_structure_hook_factory(_has_unparsed, _lenient_record)
converter.register_unstructure_hook_factory(_has_unparsed, _unstructure_record)


def _structure_cancel(value: object, _: Any) -> CancelJobResult:
    # Untyped in the spec, and a success whatever it says: the job was cancelled.
    if not isinstance(value, Mapping):
        return CancelJobResult(unparsed=FrozenMap({"answer": value}))
    odd = {
        k: value[k]
        for k in ("id", "status", "message")
        if value.get(k) is not None and not isinstance(value[k], str)
    }
    status = value.get("status")
    return CancelJobResult(
        id=value["id"] if isinstance(value.get("id"), str) else None,
        status=JobStatus(status) if isinstance(status, str) else None,
        message=value["message"] if isinstance(value.get("message"), str) else None,
        raw=dict(value),
        unparsed=FrozenMap(odd) if odd else NOTHING_UNPARSED,
    )


converter.register_structure_hook(CancelJobResult, _structure_cancel)
converter.register_unstructure_hook(CancelJobResult, lambda v: dict(v.raw))


# ------------------------------------------------------------------ fast path for job lists
# Listing 10,000 jobs is the hot path. cattrs's generated hooks call one function per value
# (~45 % slower here), so `_FastCodegen` writes a hook from the record's attrs fields in which
# the checks are inline: a field added to the record is structured by it with no edit here. The
# hook builds the record only when every value has exactly the expected JSON type, and raises
# otherwise; the hook cattrs generated then decides, so the result (or the detailed error naming
# the bad field) is always cattrs's own. tests/unit/test_fast_path.py checks, field by field,
# that both agree and that the fast hook accepts whatever cattrs accepts.
_EXACT = {str: "str", int: "int", bool: "bool"}  # JSON types taken as they are


class _FastCodegen:
    """Writes, compiles and returns ``fast(d) -> cls`` for an attrs class (and those it nests)."""

    def __init__(self, conv: cattrs.Converter) -> None:
        self._conv = conv
        self._ns: dict[str, Any] = {"_MISSING": attrs.NOTHING}
        self._lines: list[str] = []
        self._functions: dict[type, str] = {}

    def compile(self, cls: type[T]) -> Callable[[Any], T]:
        """The fast hook for `cls` (which raises on anything not exactly as expected)."""
        name = self._function(cls)
        source = "\n".join(self._lines) + "\n"
        filename = f"<unstructured_jobs fast hook for {cls.__name__}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self._ns)  # noqa: S102 - our own generated code
        return self._ns[name]  # type: ignore[no-any-return]

    def _bind(self, value: object) -> str:
        key = f"_c{len(self._ns)}"
        self._ns[key] = value
        return key

    def _function(self, cls: type) -> str:
        if cls in self._functions:
            return self._functions[cls]
        name = self._functions[cls] = f"_fast_{cls.__name__}_{len(self._functions)}"
        body = ["if type(d) is not dict:", "    raise TypeError"]
        args, kwargs = [], []
        lenient = bool(_optional_fields(cls)) and _has_unparsed(cls)
        if lenient:
            body.append("u = None")
        for i, field in enumerate(attrs.fields(attrs.resolve_types(cls))):
            if not field.init:
                continue
            if field.name == UNPARSED:  # filled below, never read from the answer
                continue
            var, key, default = f"v{i}", repr(field.name), field.default
            if default is attrs.NOTHING:
                body += [f"{var} = d[{key}]", *self._convert(field.type, var)[0]]
            elif default is None and _optional(field.type) is not None:
                body += [f"{var} = d.get({key})", *self._lenient(field.type, var, key, "None")]
            else:
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    if default.takes_self:
                        raise NotImplementedError(
                            f"{cls.__name__}.{field.name}: the fast hook has no takes_self"
                        )
                    fill = f"{self._bind(default.factory)}()"
                else:
                    fill = self._bind(default)
                body += [f"{var} = d.get({key}, _MISSING)", f"if {var} is _MISSING:"]
                body += [f"    {var} = {fill}", "else:"]
                body += _indent(self._lenient(field.type, var, key, fill) or ["pass"])
            if field.kw_only:  # attrs puts these after the positional ones
                kwargs.append(f"{field.alias}={var}")
            else:
                args.append(var)
        call = f"{self._bind(cls)}({', '.join(args + kwargs)}"
        if lenient:
            body += [
                "if u is not None:",
                f"    return {call}, {UNPARSED}={self._bind(FrozenMap)}(u))",
            ]
        body.append(f"return {call})")
        self._lines += [f"def {name}(d):", *_indent(body), ""]
        return name

    def _lenient(self, t: Any, var: str, key: str, fill: str) -> list[str]:
        """Convert an optional field's value; if it cannot be, use `fill` and keep the value
        in ``u`` (what becomes the record's ``unparsed``), as `_lenient_record` does."""
        lines = self._convert(t, var)[0]
        if not lines:
            return []
        return ["try:", *_indent(lines), "except Exception:",
                "    if u is None:", "        u = {}",
                f"    u[{key}] = d[{key}]", f"    {var} = {fill}"]  # fmt: skip

    def _convert(self, t: Any, var: str) -> tuple[list[str], bool]:
        """Statements that check `var` and replace it by its structured value; and whether
        they replace it (False: they only check it)."""
        inner = _optional(t)
        if inner is not None:
            lines, assigns = self._convert(inner, var)
            return ([f"if {var} is not None:", *_indent(lines)] if lines else []), assigns
        if t in _EXACT:
            return [f"if type({var}) is not {_EXACT[t]}:", "    raise TypeError"], False
        if isinstance(t, type) and issubclass(t, OpenEnum):  # known values: one dict lookup
            members, enum_cls = self._bind({m.value: m for m in t}), self._bind(t)
            return [f"if type({var}) is not str:", "    raise TypeError",
                    f"{var} = {members}.get({var}) or {enum_cls}({var})"], True  # fmt: skip
        if t in _PARSERS:
            return [f"{var} = {self._bind(_PARSERS[t])}({var})"], True
        if attrs.has(t):
            return [f"{var} = {self._function(t)}({var})"], True
        if _is_homogeneous_tuple(t):
            item = var + "_"
            lines, assigns = self._convert(typing.get_args(t)[0], item)
            out = [f"if type({var}) is not list:", "    raise TypeError"]
            if not assigns:
                return [*out, f"for {item} in {var}:", *_indent(lines or ["pass"]),
                        f"{var} = tuple({var})"], True  # fmt: skip
            if len(lines) == 1 and lines[0].startswith(f"{item} = "):
                expr = lines[0].removeprefix(f"{item} = ")
                return [*out, f"{var} = tuple([{expr} for {item} in {var}])"], True
            return [*out, f"{var}_l = []", f"for {item} in {var}:", *_indent(lines),
                    f"    {var}_l.append({item})", f"{var} = tuple({var}_l)"], True  # fmt: skip
        # No inline form: the converter's own (detailed) hook, which raises when it disagrees.
        hook = self._bind(self._conv.get_structure_hook(t))
        return [f"{var} = {hook}({var}, {self._bind(t)})"], True


def _optional(t: Any) -> Any:
    """X for ``X | None``, else None."""
    args = typing.get_args(t)
    if typing.get_origin(t) not in (typing.Union, types.UnionType) or len(args) != 2:
        return None
    if type(None) not in args:
        return None
    return args[0] if args[1] is type(None) else args[1]


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


_detailed_job = converter.get_structure_hook(JobInformation)
_fast_job = _FastCodegen(converter).compile(JobInformation)


def _structure_job(data: Any, cls: Any) -> JobInformation:
    try:
        return _fast_job(data)
    except Exception:
        return _detailed_job(data, cls)  # type: ignore[no-any-return]


converter.register_structure_hook(JobInformation, _structure_job)
_FAST_HOOKS: dict[Any, Callable[[Any], Any]] = {JobInformation: _fast_job}


class ShapeError(Exception):
    """Internal: the JSON did not fit the record; `messages` name each bad field."""

    __reduce__ = reduce_error

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


MAX_SHAPE_ERRORS = 10  # bad records reported from one list; reading stops at the next one


def structure(data: Any, cls: type[T]) -> T:
    """Structure JSON data into `cls`, raising `ShapeError` that names every bad field.

    A list of records is structured record by record through each record's own hook (faster
    than cattrs's list hook, which wraps every element), and stops at the eleventh bad record:
    100,000 malformed jobs give a short error at once, not a 20 MB message after seconds.
    """
    fast = _FAST_HOOKS.get(cls)
    if fast is not None and type(data) is dict:
        try:
            return fast(data)  # type: ignore[no-any-return]
        except Exception:  # noqa: S110 - the hooks below decide, naming each bad field
            pass
    if typing.get_origin(cls) is list:
        (item,) = typing.get_args(cls)
        if attrs.has(item):
            return _structure_records(data, item)  # type: ignore[return-value]
    if attrs.has(cls) and not isinstance(data, Mapping) and cls is not CancelJobResult:
        raise ShapeError([f"expected a JSON object, got {type(data).__name__} @ $"])
    try:
        return converter.structure(data, cls)
    except RecursionError:
        raise ShapeError(["nested too deeply to read @ $"]) from None
    except cattrs.BaseValidationError as exc:
        raise ShapeError(cattrs.transform_error(exc)) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ShapeError([f"{exc} @ $"]) from exc


def _structure_records(data: Any, cls: type[T]) -> list[T]:
    if not isinstance(data, list):
        raise ShapeError([f"expected a JSON array, got {type(data).__name__} @ $"])
    hook = converter.get_structure_hook(cls)
    out: list[T] = []
    messages: list[str] = []
    bad = 0
    for index, item in enumerate(data):
        try:
            if not isinstance(item, Mapping):
                raise TypeError(f"expected a JSON object, got {type(item).__name__}")
            out.append(hook(item, cls))
        except RecursionError:
            raise ShapeError([f"nested too deeply to read @ $[{index}]"]) from None
        except Exception as exc:  # each record's own error, named by its index
            bad += 1
            if bad > MAX_SHAPE_ERRORS:
                messages.append(
                    f"reading stopped after {MAX_SHAPE_ERRORS} bad records "
                    f"(of {len(data)} records) @ $[{index}]"
                )
                break
            path = f"$[{index}]"
            if isinstance(exc, cattrs.BaseValidationError):
                messages.extend(cattrs.transform_error(exc, path=path)[:MAX_SHAPE_ERRORS])
            else:
                messages.append(f"{exc} @ {path}")
    if messages:
        raise ShapeError(messages)
    return out


def unstructure(value: Any) -> Any:
    """Unstructure a record to plain JSON-ready data (enums as their values)."""
    return converter.unstructure(value)


# ------------------------------------------------------------------ to_dict (notebooks, pandas)
# The same converter, copied, with three differences: datetimes and durations stay objects
# (pandas makes datetime64/timedelta64 columns of them), and a record gives its own fields, not
# the odd values it kept in `unparsed` (a column keeps one type).
_plain = converter.copy()
_plain.register_unstructure_hook(datetime, lambda v: v)
_plain.register_unstructure_hook(timedelta, lambda v: v)


def _record_fields(cls: Any, conv: cattrs.Converter) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cls, conv, unparsed=override(omit=True))


_plain.register_unstructure_hook_factory(_has_unparsed, _record_fields)
_plain.register_unstructure_hook(
    CancelJobResult,
    make_dict_unstructure_fn(CancelJobResult, _plain, unparsed=override(omit=True)),
)


def to_dict(record: Any) -> dict[str, Any]:
    """`Record.to_dict`: plain values, with datetimes and timedeltas as objects."""
    return _plain.unstructure(record)  # type: ignore[no-any-return]
