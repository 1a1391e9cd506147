"""The job's inputs: normalising and checking input files, and building ``request_data``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from unstructured_jobs import InputFile, InputFileError
from unstructured_jobs._files.inputs import prepare_files, request_data_json


def test_every_form_of_input_is_normalised(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"pdf")
    handle = io.BytesIO(b"0123456789")
    handle.seek(4)
    handle.name = "/some/dir/stream.docx"  # type: ignore[attr-defined]
    files = prepare_files(
        [
            str(path),
            path,
            handle,
            ("x.json", b"{}"),
            ("y.bin", b"1", "image/png"),
            InputFile(b"zz", filename="z.md"),
        ]
    )
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("a.pdf", "application/pdf", 3),
        ("a.pdf", "application/pdf", 3),
        (
            "stream.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            6,
        ),
        ("x.json", "application/json", 2),
        ("y.bin", "image/png", 1),
        ("z.md", "text/markdown", 2),
    ]
    assert files[2].start == 4  # rewound to where the caller left it, for each attempt


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (("", b"x"), "filename"),
        (("a\x00b.pdf", b"x"), "NUL"),
        (b"raw bytes", "need a filename"),
        (("a.pdf", b"x", "text/html\r\nX-Evil: 1"), "control characters"),
        (("a", "b", "c", "d"), "tuple input"),
        (3.14, "unsupported input file"),
    ],
)
def test_bad_inputs_are_listed(item: Any, reason: str) -> None:
    with pytest.raises(InputFileError) as info:
        prepare_files([("ok.txt", b"fine"), item])
    assert len(info.value.problems) == 1 and reason in info.value.problems[0][1]


def test_request_data_forms() -> None:
    assert json.loads(request_data_json(template_id="t", job_nodes=None, request_data=None)) == {
        "template_id": "t"
    }
    nodes = [{"name": "n", "type": "partition", "subtype": "vlm", "settings": {}}]
    assert json.loads(request_data_json(template_id=None, job_nodes=nodes, request_data=None)) == {
        "job_nodes": nodes
    }
    raw = '{"template_id": "x", "extra": 1}'
    assert request_data_json(template_id=None, job_nodes=None, request_data=raw) == raw
    # Both together, as the vendor's REST collection sends them: the server decides.
    assert json.loads(request_data_json(template_id="t", job_nodes=nodes, request_data=None)) == {
        "template_id": "t",
        "job_nodes": nodes,
    }
    for bad in (
        {"template_id": "t", "request_data": {"template_id": "t"}},
        {"job_nodes": nodes, "request_data": {"template_id": "t"}},
        {"template_id": "", "job_nodes": nodes},
        {"template_id": "t", "job_nodes": []},
        {},
        {"template_id": ""},
        {"job_nodes": []},
        {"request_data": "not json"},
        {"request_data": "[1]"},
    ):
        kwargs: dict[str, Any] = {"template_id": None, "job_nodes": None, "request_data": None}
        kwargs.update(bad)
        with pytest.raises(ValueError):
            request_data_json(**kwargs)


def test_read_ahead_reads_the_leading_small_files_with_the_checks(tmp_path: Path) -> None:
    """What fits in `read_ahead` at the start of the list is read now and sent as read; the
    rest (from the first file that does not fit on) stays on disk for the upload to read."""
    names = ["a.bin", "b.bin", "big.bin", "c.bin"]
    sizes = [100, 200, 1000, 10]
    for name, size in zip(names, sizes, strict=True):
        (tmp_path / name).write_bytes(os.urandom(size))
    files = prepare_files([tmp_path / n for n in names], 500)
    assert [f.data is not None for f in files] == [True, True, False, False]
    assert files[0].data == (tmp_path / "a.bin").read_bytes() and files[0].path is None
    assert [f.size for f in files] == sizes
    assert [f.filename for f in files] == names
    assert all(f.data is None for f in prepare_files([tmp_path / n for n in names]))


def test_a_file_that_changes_while_it_is_read_ahead_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "moving.bin"
    path.write_bytes(b"x" * 100)
    real_stat = os.stat

    def stat_then_grow(p: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(p, *args, **kwargs)
        if str(p) == str(path):
            path.write_bytes(b"x" * 150)  # between the check and the read
        return result

    monkeypatch.setattr(os, "stat", stat_then_grow)
    with pytest.raises(InputFileError) as info:
        prepare_files([path], 1000)
    assert info.value.problems == [(str(path), "changed while it was being checked")]
