"""Fault injection: scripted faults (``Emulator.inject``) and seeded random rates."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultPlan", "FaultRates"]


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


@dataclass
class _Injection:
    fault: Fault
    method: str | None
    path: str | None
    remaining: int | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


class FaultPlan:
    """Thread-safe holder of scripted injections and random rates."""

    def __init__(self, rates: FaultRates | None = None) -> None:
        self._lock = threading.Lock()
        self._injections: list[_Injection] = []
        self._rates: FaultRates | None = None
        self._rng = random.Random()
        self.rates = rates

    @property
    def rates(self) -> FaultRates | None:
        """The random rates in force (None: no random faults)."""
        return self._rates

    @rates.setter
    def rates(self, rates: FaultRates | None) -> None:
        with self._lock:
            self._rates = rates
            self._rng = random.Random(None if rates is None else rates.seed)

    def inject(self, fault: Fault, method: str | None, path: str | None, times: int | None) -> None:
        """Queue ``fault`` for the next ``times`` matching requests (None: every one)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._injections.append(
                _Injection(fault, None if method is None else method.upper(), path, times)
            )

    def clear(self) -> None:
        """Forget scripted injections (random rates are kept)."""
        with self._lock:
            self._injections.clear()

    def pending(self) -> int:
        """Number of scripted injections not yet used up."""
        with self._lock:
            return len(self._injections)

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault for this request, consuming a scripted injection if one matches."""
        with self._lock:
            for inj in self._injections:
                if inj.matches(method, path):
                    if inj.remaining is not None:
                        inj.remaining -= 1
                        if inj.remaining == 0:
                            self._injections.remove(inj)
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
