"""The emulator in its own process, and the few plain HTTP calls the orchestrator makes to it."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from _common import API_KEY, TEMPLATE_ID

HEADERS = {"unstructured-api-key": API_KEY}
READY_PREFIX = "unstructured-jobs emulator listening on "


class EmulatorProcess:
    """``python -m unstructured_jobs.testing --port 0 ...`` as a context manager.

    Waits for the "listening on URL" line; stops the process (SIGTERM, then SIGKILL) on exit.
    The emulator's stderr goes to `log_path`. With `tls` = (server PEM, CA PEM) it serves HTTPS
    instead (`_tls_emulator.py`, which takes ``--max-running`` only), and the orchestrator's
    own calls trust that CA.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        log_path: str,
        start_timeout: float = 20.0,
        tls: tuple[str, str] | None = None,
    ):
        self.args = list(args)
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.tls = tls
        self.context = None if tls is None else ssl.create_default_context(cafile=tls[1])
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        if self.tls is None:
            cmd = [sys.executable, "-m", "unstructured_jobs.testing", "--port", "0", *self.args]
        else:
            script = str(Path(__file__).resolve().parent / "_tls_emulator.py")
            cmd = [sys.executable, script, "--cert", self.tls[0], *self.args]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True
            )
        try:
            self.url = self._read_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_url(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX) :].strip()
        raise RuntimeError(f"the emulator did not start (see {self.log_path})")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        self.stop()

    # -- plain HTTP (stdlib), retried: the emulator may be injecting faults --------------------

    def get_bytes(self, path: str, params: dict[str, str] | None = None, tries: int = 50) -> bytes:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        last: Exception | None = None
        for _ in range(tries):
            request = urllib.request.Request(url, headers=HEADERS)
            try:
                with urllib.request.urlopen(request, timeout=120, context=self.context) as resp:
                    body: bytes = resp.read()
                    return body
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 503):
                    raise
                last = exc
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"GET {path} kept failing: {last}")

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        return json.loads(self.get_bytes(path, params))

    def list_jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.get_json("/api/v1/jobs/")
        return jobs

    def seed_jobs(
        self, count: int, concurrency: int = 32, files: Callable[[int], int] = lambda i: 1
    ) -> list[str]:
        """Create `count` jobs cheaply (aiohttp, `files(i)` 16-byte files each); their ids.

        Each job completes at once (no schedule), so it lists one ``output_node_files`` entry
        per input file.
        """
        assert self.tls is None, "seeding speaks plain HTTP"
        return asyncio.run(_seed(self.url, count, concurrency, files))


async def _seed(url: str, count: int, concurrency: int, files: Callable[[int], int]) -> list[str]:
    import aiohttp

    request_data = json.dumps({"template_id": TEMPLATE_ID})
    ids: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with sem:
                for _ in range(20):
                    form = aiohttp.FormData()  # a FormData cannot be sent twice
                    form.add_field("request_data", request_data)
                    for k in range(files(i)):
                        name = f"seed-{i:06d}-{k}.pdf"
                        form.add_field("input_files", b"x" * 16, filename=name)
                    async with session.post(
                        url + "/api/v1/jobs/", data=form, headers=HEADERS
                    ) as resp:
                        if resp.status == 200:
                            ids.append(json.loads(await resp.read())["id"])
                            return
                    await asyncio.sleep(0.05)
                raise RuntimeError("could not seed a job")

        await asyncio.gather(*(one(i) for i in range(count)))
    return ids


def machine_description() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and library versions."""
    import platform
    from importlib import metadata

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
                    break
    except OSError:
        pass
    versions = {}
    for dist in (
        "unstructured-jobs",
        "aiohttp",
        "attrs",
        "cattrs",
        "anyio",
        "unstructured-client",
        "httpx",
        "pydantic",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
    }
