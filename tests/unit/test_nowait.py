"""File checks that never wait on the disk (`_nowait.check_cached`), made on the event loop's
thread for small creates: they must find what the ordinary check (`_inputs.path_facts`) finds,
or give up (None) so that the ordinary check runs in a worker thread and says what is wrong."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from unstructured_jobs import _nowait as nowait
from unstructured_jobs._inputs import path_facts


def supported(tmp_path: Path) -> bool:
    """Whether this kernel, C library and seccomp policy let ``openat2`` run here at all."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    fd = nowait.open_path_cached(str(probe))
    if fd is None:
        return False
    os.close(fd)
    return True


def test_cached_files_are_found_as_the_ordinary_check_finds_them(tmp_path: Path) -> None:
    """Sizes, and the contents of the first files that fit the read-ahead budget together;
    once one file does not fit, no later one is read (as `path_facts` does)."""
    sizes = [0, 100, 4_000, 1_000, 6_000, 10]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(size))
        paths.append(str(path))
    for budget in (0, 100, 5_100, 5_099, 100_000):
        expected = path_facts(paths, budget)
        if supported(tmp_path):
            assert nowait.check_cached(paths, budget) == expected
        else:  # pragma: no cover - a machine without openat2: the executor does it all
            assert nowait.check_cached(paths, budget) is None


def test_symlinks_are_followed_as_stat_follows_them(tmp_path: Path) -> None:
    target = tmp_path / "target.pdf"
    target.write_bytes(b"%PDF-1.7")
    link = tmp_path / "link.pdf"
    link.symlink_to(target)
    found = nowait.check_cached([str(link)], 1_000)
    assert found == (path_facts([str(link)], 1_000) if supported(tmp_path) else None)


@pytest.mark.parametrize("kind", ["missing", "directory", "nul", "dangling link"])
def test_any_problem_is_left_to_the_ordinary_check(tmp_path: Path, kind: str) -> None:
    """None, so that `path_facts` in a worker thread gives the reason the user sees."""
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "gone")
    name = str(path) + ("\0x" if kind == "nul" else "")
    assert nowait.check_cached([name], 1_000) is None


def test_a_fifo_is_looked_at_but_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes (and wakes a writer waiting for a
    reader): the check looks at it through an ``O_PATH`` descriptor, which opens nothing."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    answers: list[object] = []
    thread = threading.Thread(target=lambda: answers.append(nowait.check_cached([str(fifo)], 10)))
    thread.start()
    thread.join(timeout=30)  # a guard against a hang, not a timing: it answers at once
    assert not thread.is_alive() and answers == [None]


def test_a_lookup_the_kernel_cannot_answer_from_its_cache_is_refused_not_waited_for() -> None:
    """sysfs checks every lookup with its own code, which ``RESOLVE_CACHED`` does not run: the
    kernel answers ``EAGAIN`` at once, as for a path whose directories are not in memory (a
    cold disk, NFS, FUSE), and the check gives up instead of waiting."""
    sysfs = "/sys/kernel/mm/transparent_hugepage/enabled"
    assert nowait.open_path_cached(sysfs) is None
    assert nowait.check_cached([sysfs], 100_000) is None


def test_contents_not_in_the_page_cache_are_not_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cold.pdf"
    path.write_bytes(os.urandom(5_000))

    def cold(*args: object) -> int:
        raise BlockingIOError(errno.EAGAIN, "not in the page cache")

    monkeypatch.setattr(nowait, "pread_nowait", cold)
    assert nowait.check_cached([str(path)], 100_000) is None
    # Not read ahead (too big for the budget): only the lookup and the stat, which are cached.
    expected = [(5_000, None)] if supported(tmp_path) else None
    assert nowait.check_cached([str(path)], 10) == expected


def test_a_partly_cached_file_is_not_taken_for_a_short_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``preadv2`` with ``RWF_NOWAIT`` answers the cached prefix only: fewer bytes than the size
    checked means "ask the ordinary read", never "the file shrank"."""
    path = tmp_path / "half.pdf"
    path.write_bytes(os.urandom(5_000))
    real = nowait.pread_nowait

    def half(fd: int, buffer: bytearray, offset: int, size: int) -> int:
        return real(fd, buffer, offset, min(size, 4_096))

    monkeypatch.setattr(nowait, "pread_nowait", half)
    assert nowait.check_cached([str(path)], 100_000) is None


def test_a_system_without_openat2_is_not_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSYS (an old kernel, a seccomp policy) or EINVAL (no ``RESOLVE_CACHED``): the check
    falls back for good, with no system call wasted on each create."""
    calls: list[bytes] = []

    def missing(path: bytes) -> int:
        calls.append(path)
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(nowait, "_openat2", missing)
    monkeypatch.setattr(nowait, "_loaded", True)
    assert nowait.open_path_cached("/etc/hostname") is None
    assert nowait.open_path_cached("/etc/hostname") is None
    assert calls == [b"/etc/hostname"]
