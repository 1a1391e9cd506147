"""Keeping the API key out of reprs and out of the locals an error's traceback carries.

Error reporters that capture locals (``pytest -l``, rich's ``show_locals``, Sentry's default)
print every local variable of every frame an exception passed through, its cause's and its
context's. So the key lives in a `Secret` (whose repr is ``'***'``) from the first line that
receives it, no frame of ours keeps it in a plain local when something can raise, and
`scrub_traceback` cuts the frames of the HTTP library (which hold the request headers) from
every error that leaves the transport.
"""

from __future__ import annotations

from types import TracebackType


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` give ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def of(cls, value: str | Secret | None) -> Secret | None:
        """Wrap `value` (None stays None; a `Secret` is returned as is)."""
        if value is None or isinstance(value, Secret):
            return value
        return cls(value)

    def reveal(self) -> str:
        """The value, for the one place that sends it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


_FOREIGN = frozenset({"aiohttp", "multidict", "yarl"})


def scrub_traceback(exc: BaseException) -> None:
    """Cut the HTTP library's frames from the tracebacks of `exc` and its whole chain.

    Each traceback keeps its frames down to the first one in aiohttp (whose locals hold the
    request headers, the key among them); the frames below it are dropped. Our own frames and
    the caller's stay, so the error still says where it came from.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = _cut(current.__traceback__)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


def _cut(tb: TracebackType | None) -> TracebackType | None:
    if tb is None:
        return None
    if _foreign(tb):
        return None
    head = tb
    while tb.tb_next is not None:
        if _foreign(tb.tb_next):
            tb.tb_next = None
            break
        tb = tb.tb_next
    return head


def _foreign(tb: TracebackType) -> bool:
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.split(".")[0] in _FOREIGN
