"""Safe output paths for names that come from the server.

>>> from unstructured_jobs.paths import output_path_inside, safe_output_name
>>> safe_output_name("../../etc/passwd")
'etc_passwd'
>>> output_path_inside("outputs", safe_output_name(file_id) + ".json")   # doctest: +SKIP

A file id is the server's data: used as a path, ``../x`` or ``/etc/x`` would write outside the
folder you chose. `safe_output_name` makes one plain file name of it; `output_path_inside`
refuses any name that does not resolve to a direct child of the folder. (Both are also
importable from `unstructured_jobs.batch`, where they were first.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._constants import BATCH_MAX_OUTPUT_NAME_BYTES as _MAX_NAME
from ._constants import MAX_FILE_NAME_BYTES
from ._exceptions import UnsafePathError

__all__ = ["output_path_inside", "safe_output_name"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def safe_output_name(file_id: str) -> str:
    """Turn a server-provided file id into one plain file name.

    Path separators (``/`` and ``\\``), ``.``/``..`` components, drive letters, NUL and other
    control characters cannot survive: the components left are joined with ``_``. Names that
    end up empty, hidden or reserved on Windows get a ``_`` prefix.
    """
    text = _CONTROL.sub("", str(file_id).replace("\\", "/"))
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    name = "_".join(parts).replace(":", "_").strip(" ")
    if not name or name.startswith(".") or _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name.encode()) > _MAX_NAME:
        stem, ext = os.path.splitext(name)
        name = stem.encode()[: _MAX_NAME - len(ext.encode())].decode("utf-8", "ignore") + ext
    return name


def output_path_inside(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder/name`` after checking that it resolves to a direct child of `folder`."""
    plain = (
        name not in ("", ".", "..")
        and not name.startswith(".")
        and not _CONTROL.search(name)
        and not any(c in name for c in "/\\:")
        and len(name.encode("utf-8", "surrogateescape")) <= MAX_FILE_NAME_BYTES
    )
    base = Path(folder).resolve()
    if not plain or (base / name).resolve().parent != base:
        raise UnsafePathError(f"refusing to write {name!r}: it is not a plain name inside {base}")
    return base / name
