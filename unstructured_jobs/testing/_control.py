"""The emulator's HTTP control endpoints: ``/_emulator/faults`` (faults) and
``/_emulator/received`` (what the API received: ``GET`` -> ``{"requests": [...]}``, each as
`received_to_json` describes, in arrival order).

For tests that cannot call ``Emulator.inject`` (another process, another language, the
``python -m unstructured_jobs.testing`` server)::

    POST   /_emulator/faults   {"kind": "status", "status": 503, "retry_after": "1",
                                "method": "POST", "path": "/api/v1/jobs/", "times": 2}
           -> 201, the injection as listed below
    GET    /_emulator/faults   -> 200 {"faults": [...], "all_fired": true}
    DELETE /_emulator/faults   -> 200 {"cleared": 3}

A POST body is one JSON object: ``kind`` plus that kind's fields, plus where and how often:

- ``{"kind": "status", "status": 503, "retry_after": "1", "detail": "..."}``: ``Fault.status``
  (``retry_after`` a string or an integer, ``retry_after`` and ``detail`` optional).
- ``{"kind": "raw", "status": 200, "body": "<html>", "content_type": "text/html",
  "headers": {"X-A": "1"}}``: ``Fault.raw``; ``body`` is UTF-8 text, or give
  ``body_base64`` for bytes; ``content_type`` defaults to ``application/json`` (null: none).
- ``{"kind": "delay", "seconds": 2}``: ``Fault.delay`` (answer late).
- ``{"kind": "stall", "seconds": 30}``: ``Fault.stall`` (the hang: stop reading, then drop).
- ``{"kind": "drop_before"}`` / ``{"kind": "drop_after"}``: drop the connection without an
  answer, before (nothing created) or after processing (the lost answer).
- ``method`` (null: any), ``path`` (exact, a prefix ending in ``*``, null: any), ``times``
  (default 1; null: every matching request) and ``optional`` (default false) are those of
  ``Emulator.inject``.

Unknown fields and wrong types answer 422 in the API's pydantic shape (``{"detail": [{"type",
"loc", "msg", "input"}]}``), so a typo never becomes a silent no-op; so does a ``method`` or
``path`` that no request to the emulator can match.

Each listed injection is ``{"id", "kind", <the kind's fields>, "method", "path", "times",
"fired", "optional", "satisfied"}``; ``all_fired`` is what ``assert_all_faults_fired`` checks.
Requests under ``/_emulator/`` need the API key like the API, never get faults and are never
recorded in ``Emulator.requests``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from ._faults import CONTROL_PREFIX, Fault, FaultPlan, InjectedFault
from ._records import RecordedRequest

__all__ = [
    "CONTROL_PREFIX",
    "FAULTS_PATH",
    "LIMITS_PATH",
    "RECEIVED_PATH",
    "fault_to_json",
    "listing",
    "parse_fault",
    "read_fault",
    "received_to_json",
]

FAULTS_PATH = CONTROL_PREFIX + "faults"
LIMITS_PATH = CONTROL_PREFIX + "limits"
RECEIVED_PATH = CONTROL_PREFIX + "received"

_WHERE = ("method", "path", "times", "optional")
_FIELDS: dict[str, tuple[str, ...]] = {
    "status": ("status", "retry_after", "detail"),
    "raw": ("status", "body", "body_base64", "content_type", "headers"),
    "delay": ("seconds",),
    "stall": ("seconds",),
    "drop_before": (),
    "drop_after": (),
}
Error = dict[str, Any]


def _err(field: str | None, msg: str, type_: str, value: Any) -> Error:
    loc: list[str] = ["body"] if field is None else ["body", field]
    return {"type": type_, "loc": loc, "msg": msg, "input": value}


class _Reader:
    """Reads typed fields from the body, collecting every problem at once."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: list[Error] = []

    def bad(self, name: str, msg: str, type_: str) -> None:
        """Record a problem with the field ``name``."""
        self.errors.append(_err(name, msg, type_, self.data.get(name)))

    def integer(self, name: str, low: int, high: int | None, required: bool) -> int | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.errors.append(_err(name, "Field required", "missing", None))
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.bad(name, "Input should be a valid integer", "int_type")
            return None
        if value < low or (high is not None and value > high):
            upper = "" if high is None else f" and <= {high}"
            self.bad(name, f"Input should be >= {low}{upper}", "value_error")
            return None
        return value

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            self.bad(name, "Input should be a valid string", "string_type")
            return None
        return value

    def seconds(self, name: str) -> float:
        value = self.data.get(name)
        if value is None:
            self.errors.append(_err(name, "Field required", "missing", None))
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(name, "Input should be a valid number", "float_type")
            return 0.0
        if not math.isfinite(value) or value < 0:
            self.bad(name, "Input should be a finite number >= 0", "value_error")
            return 0.0
        return float(value)


def parse_fault(
    data: Any,
) -> tuple[Fault, str | None, str | None, int | None, bool] | list[Error]:
    """``(fault, method, path, times, optional)`` from a POSTed body, or the 422 details."""
    if not isinstance(data, dict):
        return [_err(None, "Input should be a JSON object describing one fault", "dict_type",
                     data)]  # fmt: skip
    kind = data.get("kind")
    if kind not in _FIELDS:
        known = ", ".join(repr(k) for k in _FIELDS)
        if kind is None:
            return [_err("kind", f"Field required: one of {known}", "missing", None)]
        return [_err("kind", f"Input should be one of {known}", "literal_error", kind)]
    allowed = {"kind", *_WHERE, *_FIELDS[kind]}
    errors = [
        _err(name, f"Extra inputs are not permitted (fields of {kind!r}: "
             f"{', '.join(_FIELDS[kind]) or 'none'}; and {', '.join(_WHERE)})",
             "extra_forbidden", data[name])
        for name in data
        if name not in allowed
    ]  # fmt: skip
    read = _Reader(data)
    fault = _build(kind, read)
    method = read.text("method")
    if method is not None and not (method.isascii() and method.isalpha()):
        read.bad("method", "Input should be an HTTP method such as 'POST'", "value_error")
    path = read.text("path")
    if path is not None and not path.startswith("/"):
        read.bad("path", "Input should start with '/' (end it with '*' for a prefix)",
                  "value_error")  # fmt: skip
    elif path is not None and path.startswith(CONTROL_PREFIX):
        read.bad("path", f"faults never apply to {CONTROL_PREFIX} requests", "value_error")
    times = read.integer("times", 1, None, required=False) if "times" in data else 1
    optional = data.get("optional", False)
    if not isinstance(optional, bool):
        read.bad("optional", "Input should be a valid boolean", "bool_type")
    errors += read.errors
    if errors or fault is None:
        return errors
    return fault, method, path, times, optional


def _build(kind: str, read: _Reader) -> Fault | None:
    """The ``Fault`` of one kind, or None when ``read`` collected errors."""
    if kind in ("drop_before", "drop_after"):
        return Fault.drop_before() if kind == "drop_before" else Fault.drop_after()
    if kind in ("delay", "stall"):
        seconds = read.seconds("seconds")
        if read.errors:
            return None
        return Fault.delay(seconds) if kind == "delay" else Fault.stall(seconds)
    status = read.integer("status", 100, 599, required=True)
    if kind == "status":
        retry_after = read.data.get("retry_after")
        if isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after >= 0:
            retry_after = str(retry_after)
        elif retry_after is not None and not isinstance(retry_after, str):
            read.bad("retry_after", "Input should be a string or an integer >= 0", "value_error")
        detail = read.text("detail")
        if read.errors or status is None:
            return None
        return Fault.status(status, retry_after=retry_after, detail=detail)
    body = _body(read)
    content_type = read.text("content_type") if "content_type" in read.data else "application/json"
    headers = read.data.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        read.bad("headers", "Input should be an object of string values", "dict_type")
    if read.errors or status is None:
        return None
    return Fault.raw(status, body, content_type=content_type, headers=headers)


def _body(read: _Reader) -> bytes:
    text, encoded = read.text("body"), read.text("body_base64")
    if text is not None and encoded is not None:
        read.bad("body_base64", "Give either body or body_base64, not both", "value_error")
        return b""
    if encoded is not None:
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            read.bad("body_base64", "Input should be valid base64", "value_error")
            return b""
    return (text or "").encode()


def fault_to_json(injected: InjectedFault) -> dict[str, Any]:
    """One entry of ``GET /_emulator/faults``: the POSTed fields plus id, fired, satisfied."""
    fault = injected.fault
    out: dict[str, Any] = {"id": injected.id, "kind": fault.kind}
    if fault.kind == "status":
        out |= {"status": fault.code, "retry_after": fault.retry_after, "detail": fault.detail}
    elif fault.kind == "raw":
        try:
            out |= {"status": fault.code, "body": fault.body.decode()}
        except UnicodeDecodeError:
            out |= {"status": fault.code, "body_base64": base64.b64encode(fault.body).decode()}
        out |= {"content_type": fault.content_type, "headers": dict(fault.headers)}
    elif fault.kind in ("delay", "stall"):
        out["seconds"] = fault.seconds
    return out | {
        "method": injected.method,
        "path": injected.path,
        "times": injected.times,
        "fired": injected.fired,
        "optional": injected.optional,
        "satisfied": injected.satisfied,
    }


def listing(plan: FaultPlan) -> dict[str, Any]:
    """The body of ``GET /_emulator/faults``."""
    injected = plan.injected()
    return {
        "faults": [fault_to_json(inj) for inj in injected],
        "all_fired": not any(not (inj.satisfied or inj.optional) for inj in injected),
    }


def read_fault(
    raw: bytes,
) -> tuple[Fault, str | None, str | None, int | None, bool] | list[Error]:
    """``parse_fault`` of a raw POST body; a body that is not JSON is one 422 detail."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        snippet = raw[:200].decode(errors="replace")
        return [_err(None, f"JSON decode error: {exc}", "json_invalid", snippet)]
    return parse_fault(data)


def received_to_json(request: RecordedRequest) -> dict[str, Any]:
    """One recorded request as ``GET /_emulator/received`` lists it: ``method``, ``path``,
    ``raw_path``, ``query``, ``headers`` (``[name, value]`` pairs, secrets redacted),
    ``status``, ``fault`` and ``files`` (``filename``, ``field_name``, ``content_type``,
    ``size``, ``sha256``)."""
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.query,
        "headers": [list(pair) for pair in request.headers],
        "status": request.status,
        "fault": request.fault,
        "files": [
            {
                "filename": f.filename,
                "field_name": f.field_name,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
            }
            for f in request.files
        ],
    }
