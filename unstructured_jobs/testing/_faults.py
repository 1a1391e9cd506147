"""Fault injection: scripted faults (``Emulator.inject``) and seeded random rates."""

from __future__ import annotations

import difflib
import math
import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Paths of the emulator's own control endpoints: never faulted, never recorded.
CONTROL_PREFIX = "/_emulator/"

__all__ = [
    "CONTROL_PREFIX",
    "Fault",
    "FaultPlan",
    "FaultRates",
    "InjectedFault",
    "UnfiredFaultsError",
    "UnroutableFaultError",
    "describe_fault",
]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server, applied to one request. Build it with a constructor:

    - ``Fault.status(503, retry_after="1")``: read the whole request, create nothing, answer
      ``code`` with ``{"detail": ...}`` (and ``Retry-After`` when given).
    - ``Fault.drop_before()``: read the whole request, create nothing, close the connection
      without answering.
    - ``Fault.drop_after()``: process the request normally (a job *is* created), then close the
      connection instead of answering: the classic lost answer.
    - ``Fault.delay(seconds)``: wait, then process normally.
    - ``Fault.stall(seconds)``: stop reading the request body after its first chunk, wait
      ``seconds`` without answering, then close the connection.
    - ``Fault.raw(status, body)``: read the whole request, create nothing, answer exactly
      these bytes.
    """

    kind: str
    code: int | None = None
    retry_after: str | None = None
    detail: str | None = None
    seconds: float = 0.0
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def status(cls, code: int, retry_after: str | None = None, detail: str | None = None) -> Fault:
        """Answer ``code`` with ``{"detail": detail}`` (default: the status phrase)."""
        if not 100 <= code <= 599:
            raise ValueError(f"not an HTTP status code: {code!r}")
        return cls("status", code=code, retry_after=retry_after, detail=detail)

    @classmethod
    def drop_before(cls) -> Fault:
        """Read the request, create nothing, drop the connection without an answer."""
        return cls("drop_before")

    @classmethod
    def drop_after(cls) -> Fault:
        """Process the request (creating the job), then drop the connection unanswered."""
        return cls("drop_after")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then process the request normally."""
        return cls("delay", seconds=_seconds(seconds))

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Stop reading the body after its first chunk, wait ``seconds``, then drop."""
        return cls("stall", seconds=_seconds(seconds))

    @classmethod
    def raw(
        cls,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer exactly ``body`` with ``status`` (the request is read, nothing is created)."""
        return cls(
            "raw",
            code=status,
            body=bytes(body),
            content_type=content_type,
            headers=tuple((headers or {}).items()),
        )


def _seconds(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FaultRates:
    """Random faults for soak and batch tests, drawn from a RNG seeded with ``seed``.

    Each matching request (method in ``methods``, path under ``path_prefix``) gets at most one
    fault: 429 with probability ``status_429``, 503 with ``status_503`` (both with
    ``Retry-After: retry_after`` unless it is None), ``drop_before``, or ``drop_after``.
    Requests that draw no fault are delayed by a uniform random time in ``[0, latency]``
    seconds when ``latency > 0``. Scripted faults (``Emulator.inject``) take precedence.
    """

    status_429: float = 0.0
    status_503: float = 0.0
    retry_after: str | None = "0"
    drop_before: float = 0.0
    drop_after: float = 0.0
    latency: float = 0.0
    seed: int | None = None
    methods: tuple[str, ...] = ("POST", "GET")
    path_prefix: str = "/api/v1/"

    def __post_init__(self) -> None:
        rates = (self.status_429, self.status_503, self.drop_before, self.drop_after)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and sum to at most 1")
        _seconds(self.latency)


@dataclass(frozen=True)
class InjectedFault:
    """A snapshot of one scripted injection (``Emulator.injected_faults()``).

    ``fired`` counts the requests that got the fault; it was asked for ``times`` requests
    (None: every matching request, until cleared). An injection is *satisfied* once it fired
    ``times`` times, or at least once when ``times`` is None; ``Emulator.assert_all_faults_fired``
    complains about every unsatisfied injection that is not ``optional``.
    """

    id: int
    """Sequence number within its emulator (also the ``id`` of ``GET /_emulator/faults``)."""
    fault: Fault
    method: str | None
    """The HTTP method matched (upper case), or None for any."""
    path: str | None
    """The exact path matched, a prefix when it ends with ``*``, or None for any."""
    times: int | None
    fired: int
    optional: bool

    @property
    def satisfied(self) -> bool:
        """True once the fault fired as often as asked (at least once when ``times`` is None)."""
        return self.fired >= (1 if self.times is None else self.times)

    def describe(self) -> str:
        """One line for failure messages: where, what, and how often it fired."""
        where = f"{self.method or 'any method'} {self.path or 'any path'}"
        if self.times is None:
            count = f"fired {self.fired} times, expected at least once (times=None)"
        else:
            count = f"fired {self.fired} of {self.times} times"
        return f"{where}: {describe_fault(self.fault)}: {count}"


def describe_fault(fault: Fault) -> str:
    """The fault as the constructor call that builds it, e.g. ``Fault.status(503)``."""
    if fault.kind == "status":
        args = [str(fault.code)]
        if fault.retry_after is not None:
            args.append(f"retry_after={fault.retry_after!r}")
        if fault.detail is not None:
            args.append(f"detail={fault.detail!r}")
    elif fault.kind in ("delay", "stall"):
        args = [f"{fault.seconds:g}"]
    elif fault.kind == "raw":
        body = fault.body if len(fault.body) <= 40 else fault.body[:40] + b"..."
        args = [str(fault.code), repr(body)]
    else:
        args = []
    return f"Fault.{fault.kind}({', '.join(args)})"


class UnfiredFaultsError(AssertionError):
    """Some scripted faults fired fewer times than asked (``Emulator.assert_all_faults_fired``).

    ``unfired`` lists them, as ``InjectedFault`` snapshots.
    """

    def __init__(self, unfired: list[InjectedFault]) -> None:
        self.unfired = unfired
        lines = "\n".join(f"  - {inj.describe()}" for inj in unfired)
        super().__init__(
            f"{len(unfired)} injected fault(s) fired fewer times than asked:\n{lines}\n"
            "A fault that never fires means the test did not exercise what it meant to. Make "
            "the test's requests reach it, or, if it may legitimately stay unused, inject it "
            'with optional=True (JSON: "optional": true) or mark the test '
            "@pytest.mark.unstructured_emulator(assert_all_faults_fired=False)."
        )


class UnroutableFaultError(ValueError):
    """``inject()`` was given a method or path that no request to the emulator can match (a typo
    such as ``/api/v1/job/`` or a missing trailing slash), so the fault could never fire.

    Raised at once, before anything is injected. ``POST /_emulator/faults`` answers 422 instead.
    """


_VARIABLE = re.compile(r"\{[^}]*\}")


def _could_start(template: str, prefix: str) -> bool:
    """Whether some path matching the route `template` (``{name}``: one non-empty segment)
    starts with `prefix`."""
    rest = prefix
    for index, literal in enumerate(_VARIABLE.split(template)):
        if index:  # a variable before this literal: it takes one segment
            slash = rest.find("/")
            if slash < 0:
                return True
            if slash == 0:
                return False
            rest = rest[slash:]
        if len(rest) <= len(literal):
            return literal.startswith(rest)
        if not rest.startswith(literal):
            return False
        rest = rest[len(literal) :]
    return rest == ""


def _matches_route(template: str, path: str) -> bool:
    pattern = "".join(
        "[^/]+" if _VARIABLE.fullmatch(piece) else re.escape(piece)
        for piece in re.split(r"(\{[^}]*\})", template)
    )
    return re.fullmatch(pattern, path) is not None


def _shaped(template: str, path: str) -> str:
    """`template` with each ``{variable}`` replaced by the segment of `path` in its place (when
    `path` has one), to suggest the route nearest a mistyped path with ids in it."""
    given = path.split("/")
    return "/".join(
        given[i] if _VARIABLE.fullmatch(part) and i < len(given) and given[i] else part
        for i, part in enumerate(template.split("/"))
    )


def check_routable(routes: Sequence[tuple[str, str]], method: str | None, path: str | None) -> None:
    """Raise `UnroutableFaultError` unless a request with `method` (None: any) to `path`
    (exact, a prefix ending in ``*``, None: any) can reach one of `routes` (method, template)."""
    if method is not None and method not in {m for m, _ in routes}:
        known = ", ".join(sorted({m for m, _ in routes}))
        raise UnroutableFaultError(
            f"no route of the emulator takes {method} requests (methods: {known}); "
            "this fault could never fire"
        )
    if path is None:
        return
    candidates = [t for m, t in routes if method is None or m == method]
    if "?" in path:
        raise UnroutableFaultError(
            f"fault path {path!r} has a query: faults match the path only (drop '?...')"
        )
    if path.endswith("*"):
        if any(_could_start(t, path[:-1]) for t in candidates):
            return
    elif any(_matches_route(t, path) for t in candidates):
        return
    templates = sorted(set(candidates))
    shaped = {_shaped(t, path.rstrip("*")): t for t in templates}
    near = difflib.get_close_matches(path.rstrip("*"), list(shaped), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    who = f"{method} " if method else ""
    raise UnroutableFaultError(
        f"no {who}request to the emulator can match the fault path {path!r}{hint} "
        f"(routes: {', '.join(templates)}; a prefix ends in '*')"
    )


@dataclass
class _Injection:
    id: int
    fault: Fault
    method: str | None
    path: str | None
    times: int | None
    optional: bool
    fired: int = 0

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def snapshot(self) -> InjectedFault:
        return InjectedFault(
            self.id, self.fault, self.method, self.path, self.times, self.fired, self.optional
        )


class FaultPlan:
    """Thread-safe holder of scripted injections and random rates.

    Injections are kept after they are used up (for ``injected`` and ``unfired``) until
    ``clear``; only those not used up match requests.
    """

    def __init__(self, rates: FaultRates | None = None) -> None:
        self._lock = threading.Lock()
        self._injections: list[_Injection] = []
        self._next_id = 1
        self._rates: FaultRates | None = None
        self._rng = random.Random()
        self.rates = rates
        self.routes: Sequence[tuple[str, str]] = ()
        """(method, path template) of every route; when set, `inject` refuses a fault that no
        request could match (`UnroutableFaultError`)."""

    @property
    def rates(self) -> FaultRates | None:
        """The random rates in force (None: no random faults)."""
        return self._rates

    @rates.setter
    def rates(self, rates: FaultRates | None) -> None:
        with self._lock:
            self._rates = rates
            self._rng = random.Random(None if rates is None else rates.seed)

    def inject(
        self,
        fault: Fault,
        method: str | None,
        path: str | None,
        times: int | None,
        optional: bool = False,
    ) -> InjectedFault:
        """Queue ``fault`` for the next ``times`` matching requests (None: every one)."""
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError("times must be >= 1 or None")
        if path is not None and path.startswith(CONTROL_PREFIX):
            raise ValueError(f"faults never apply to {CONTROL_PREFIX} (control) requests")
        if self.routes:
            check_routable(self.routes, None if method is None else method.upper(), path)
        with self._lock:
            injection = _Injection(
                self._next_id,
                fault,
                None if method is None else method.upper(),
                path,
                times,
                bool(optional),
            )
            self._next_id += 1
            self._injections.append(injection)
            return injection.snapshot()

    def clear(self) -> int:
        """Forget every scripted injection, fired or not (random rates are kept).

        Returns how many were forgotten. Cleared injections are never reported as unfired:
        clearing is deliberate.
        """
        with self._lock:
            count = len(self._injections)
            self._injections.clear()
            return count

    def pending(self) -> int:
        """Number of scripted injections not yet used up."""
        with self._lock:
            return sum(1 for inj in self._injections if not inj.used_up)

    def injected(self) -> list[InjectedFault]:
        """Snapshots of every injection since the last ``clear``, in injection order."""
        with self._lock:
            return [inj.snapshot() for inj in self._injections]

    def unfired(self) -> list[InjectedFault]:
        """The injections that are neither satisfied nor optional."""
        return [inj for inj in self.injected() if not (inj.satisfied or inj.optional)]

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault for this request, consuming a scripted injection if one matches."""
        with self._lock:
            for inj in self._injections:
                if not inj.used_up and inj.matches(method, path):
                    inj.fired += 1
                    return inj.fault
            rates = self._rates
            if rates is None or method not in rates.methods:
                return None
            if not path.startswith(rates.path_prefix):
                return None
            draw = self._rng.random()
            for rate, fault in (
                (rates.status_429, Fault.status(429, rates.retry_after, "Rate limit exceeded")),
                (rates.status_503, Fault.status(503, rates.retry_after, "Service Unavailable")),
                (rates.drop_before, Fault.drop_before()),
                (rates.drop_after, Fault.drop_after()),
            ):
                if draw < rate:
                    return fault
                draw -= rate
            if rates.latency > 0:
                return Fault.delay(self._rng.uniform(0.0, rates.latency))
            return None
