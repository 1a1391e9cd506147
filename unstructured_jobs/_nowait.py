"""File calls that never wait on the disk, safe on the event loop's thread.

Each either answers from what the kernel already holds in memory or refuses at once
(`BlockingIOError`, or None), and the caller then makes the ordinary call in the executor
(`_offload`). They exist because a trip to a worker thread costs several times what the call
itself does when the data is cached (benchmarks/README.md): a small create checks and reads its
files here, in microseconds, and goes to the executor only for what is not in memory.

- `pread_nowait`: ``preadv2`` with ``RWF_NOWAIT`` (Linux 4.14+): only bytes in the page cache.
- `open_path_cached`: ``openat2`` with ``RESOLVE_CACHED`` (Linux 5.12+): an ``O_PATH``
  descriptor only if every component of the path is in the kernel's lookup cache. Network and
  FUSE file systems, whose lookups must ask their server, always refuse it; so does any kernel,
  C library or seccomp policy without ``openat2`` (then it is never tried again).
- `check_cached`: stat, readability and (for small files) contents of a list of paths, as
  `_inputs.path_facts` finds them, or None where any of it would wait.

An ``O_PATH`` descriptor opens nothing: a FIFO or a device is looked at (``fstat``) but never
opened, as with ``os.stat``. A regular file is then opened through ``/proc/self/fd``, which
reaches the same inode without looking the path up again.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Sequence

NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "preadv") else None

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (a syscall added after 5.1)
_RESOLVE_CACHED = 0x20
_AT_FDCWD = -100
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.E2BIG, errno.EOPNOTSUPP}


def pread_nowait(fd: int, buffer: bytearray, offset: int, size: int) -> int:
    """Read up to `size` bytes at `offset` into `buffer`, only from the page cache; raises
    `BlockingIOError` if none of them is there (the read would wait on the disk)."""
    assert NOWAIT is not None
    view = buffer if size == len(buffer) else memoryview(buffer)[:size]
    return os.preadv(fd, [view], offset, NOWAIT)


def _load_openat2() -> Callable[[bytes], int] | None:
    """``openat2(AT_FDCWD, path, {O_PATH|O_CLOEXEC, RESOLVE_CACHED})`` through ctypes, or None
    where it cannot exist (not Linux, no ``O_PATH`` or no ``RWF_NOWAIT``, no C library)."""
    if sys.platform != "linux" or not hasattr(os, "O_PATH") or NOWAIT is None:
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (ImportError, OSError, AttributeError):  # pragma: no cover - a libc without syscall()
        return None

    class OpenHow(ctypes.Structure):
        _fields_ = [
            ("flags", ctypes.c_uint64),
            ("mode", ctypes.c_uint64),
            ("resolve", ctypes.c_uint64),
        ]

    how = OpenHow(os.O_PATH | _O_CLOEXEC, 0, _RESOLVE_CACHED)
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    syscall.argtypes.append(ctypes.c_size_t)
    how_address, how_size = ctypes.addressof(how), ctypes.sizeof(how)
    get_errno = ctypes.get_errno

    def openat2_cached(path: bytes) -> int:
        fd: int = syscall(_SYS_OPENAT2, _AT_FDCWD, path, how_address, how_size)
        if fd < 0:
            code = get_errno()
            raise OSError(code, os.strerror(code))
        return fd

    openat2_cached.keep = how  # type: ignore[attr-defined]  # the struct lives as long as this
    return openat2_cached


_openat2: Callable[[bytes], int] | None = None
_loaded = False


def open_path_cached(path: str) -> int | None:
    """An ``O_PATH`` descriptor of `path` (symlinks followed, as ``stat`` does), or None if the
    lookup would wait on a disk or a server, fails, or cannot be made without waiting here.
    Every failure is left to the ordinary call, which says it best."""
    global _openat2, _loaded
    if not _loaded:
        _openat2, _loaded = _load_openat2(), True
    openat2 = _openat2
    if openat2 is None:
        return None
    try:
        return openat2(os.fsencode(path))
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:  # never there: no use asking again
            _openat2 = None
        return None
    except ValueError:  # a NUL byte in the path: the ordinary call refuses it
        return None


PathFacts = tuple[int, "bytes | None"]
"""A checked path's size, and its contents if it was read ahead."""


def check_cached(paths: Sequence[str], read_ahead: int) -> list[PathFacts] | None:
    """What `_inputs.path_facts` finds for `paths` (size; contents of the first files that fit
    in `read_ahead` together), if every bit of it is in memory; otherwise None, and nothing is
    kept open. A problem with any path is also None: the ordinary check reports it."""
    facts: list[PathFacts] = []
    budget = read_ahead
    for path in paths:
        fd = open_path_cached(path)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            through = f"/proc/self/fd/{fd}"
            if not os.access(through, os.R_OK):  # as the ordinary check decides it
                return None
            size = st.st_size
            data = None
            if size <= budget:
                budget -= size
                data = _read_cached(through, size)
                if data is None:
                    return None
            else:
                budget = 0  # the files after this one are read when the upload reaches them
            facts.append((size, data))
        except OSError:
            return None
        finally:
            os.close(fd)
    return facts


def _read_cached(through: str, size: int) -> bytes | None:
    """The whole file (`size` bytes, as checked), from the page cache only; else None."""
    # O_NONBLOCK: an open that would wait (a write lease held by a file server) refuses instead.
    fd = os.open(through, os.O_RDONLY | _O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    try:
        buffer = bytearray(size + 1)  # one byte more, to notice a file that grew
        got = pread_nowait(fd, buffer, 0, size + 1)
    except BlockingIOError:
        return None
    finally:
        os.close(fd)
    if got != size:  # grew, shrank, or only part of it is cached: the ordinary read decides
        return None
    del buffer[size:]
    return bytes(buffer)
