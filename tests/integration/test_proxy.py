"""Proxies from the environment, through a real forward proxy on 127.0.0.1 (`tests/proxy.py`).

The server URL is a name that does not resolve (``api.unstructured.test``) and the tests refuse
every DNS lookup but loopback, so a request can only succeed through the proxy, and the list of
names looked up shows that the client did no DNS for the server when it used the proxy.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from proxy import ForwardProxy, clear_network_env, guard_dns, server_tls

from unstructured_jobs import (
    APIConnectionError,
    AsyncJobsClient,
    CertificateVerifyError,
    InvalidInputError,
    JobsClient,
    JobStatus,
)
from unstructured_jobs.cli import main
from unstructured_jobs.testing import Emulator, FakeClock

KEY = "proxy-secret-key-0042"
HOST = "api.unstructured.test"
SECRET = "pr0xy-s3cret"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    clear_network_env(monkeypatch)
    return guard_dns(monkeypatch)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
async def tls_emu(ca: trustme.CA) -> AsyncIterator[Emulator]:
    context = server_tls(ca, HOST, "127.0.0.1", "localhost")
    async with Emulator(api_key=KEY, ssl_context=context) as server:
        yield server


async def round_trip(client: AsyncJobsClient, tmp_path: Path) -> str:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF through a proxy")
    job = await client.create_job(template_id="tpl", input_files=[doc])
    assert (await client.get_job(job.id)).status is JobStatus.COMPLETED
    return job.id


async def test_https_goes_through_a_connect_tunnel_with_tls_verified_end_to_end(
    tls_emu: Emulator,
    ca_path: str,
    dns: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ForwardProxy(tls_emu.port) as proxy:
        host_port = proxy.url.removeprefix("http://")
        monkeypatch.setenv("HTTPS_PROXY", f"http://me:{SECRET}@{host_port}")
        async with AsyncJobsClient(api_key=KEY, server_url=f"https://{HOST}", ssl=ca_path) as c:
            job_id = await round_trip(c, tmp_path)
    assert proxy.connects and set(proxy.connects) == {f"{HOST}:443"}
    assert proxy.requests == [] and HOST not in dns
    token = base64.b64encode(f"me:{SECRET}".encode()).decode()
    assert set(proxy.auth) == {f"Basic {token}"}
    assert list(tls_emu.jobs) == [job_id] and [r.method for r in tls_emu.requests] == [
        "POST",
        "GET",
    ]
    assert caplog.records and not any(
        SECRET in r.getMessage() or token in r.getMessage() for r in caplog.records
    )


async def test_an_untrusted_certificate_behind_the_tunnel_is_refused_before_sending(
    tls_emu: Emulator, dns: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy(tls_emu.port) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        async with AsyncJobsClient(api_key=KEY, server_url=f"https://{HOST}") as client:
            with pytest.raises(CertificateVerifyError, match="could not be verified"):
                await client.list_jobs()
    assert (proxy.connects, tls_emu.requests) == ([f"{HOST}:443"], [])


async def test_plain_http_is_forwarded_in_absolute_form(
    dns: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Emulator(api_key=KEY) as emu, ForwardProxy(emu.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with AsyncJobsClient(
            api_key=KEY, server_url=f"http://{HOST}", allow_insecure_http=True
        ) as client:
            job_id = await round_trip(client, tmp_path)
    assert proxy.requests == [
        f"POST http://{HOST}/api/v1/jobs/ HTTP/1.1",
        f"GET http://{HOST}/api/v1/jobs/{job_id} HTTP/1.1",
    ]
    assert proxy.connects == [] and HOST not in dns


@pytest.mark.parametrize("how", ["NO_PROXY", "no_proxy suffix", "trust_env=False"])
async def test_no_proxy_and_trust_env_false_go_direct(
    tls_emu: Emulator, dns: list[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    async with ForwardProxy(tls_emu.port) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        if how == "NO_PROXY":
            monkeypatch.setenv("NO_PROXY", f"localhost,{HOST}")
        elif how == "no_proxy suffix":
            monkeypatch.setenv("no_proxy", ".unstructured.test")
        options = {"trust_env": False} if how == "trust_env=False" else {}
        async with AsyncJobsClient(
            api_key=KEY, server_url=f"https://{HOST}", max_retries=0, **options
        ) as client:
            with pytest.raises(APIConnectionError, match="tests do no DNS"):
                await client.list_jobs()
    assert (proxy.connects, proxy.requests, dns) == ([], [], [HOST])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_loopback_server_is_never_proxied(
    ca: trustme.CA,
    ca_path: str,
    dead_port: int,
    dns: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
) -> None:
    dead = f"http://user:{SECRET}@127.0.0.1:{dead_port}"
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(variable, dead)
    async with Emulator(api_key=KEY) as emu:
        url = emu.url.replace("127.0.0.1", host)
        async with AsyncJobsClient(api_key=KEY, server_url=url, max_retries=0) as client:
            await round_trip(client, tmp_path)
    async with Emulator(api_key=KEY, ssl_context=server_tls(ca, "127.0.0.1", "localhost")) as emu:
        url = emu.url.replace("127.0.0.1", host)
        async with AsyncJobsClient(api_key=KEY, server_url=url, ssl=ca_path) as client:
            await round_trip(client, tmp_path)


async def test_a_dead_proxy_is_a_connection_error_without_its_credentials(
    dead_port: int,
    dns: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:{SECRET}@127.0.0.1:{dead_port}")
    clock = FakeClock()
    slept = clock.sleeps
    async with AsyncJobsClient(
        api_key=KEY, server_url=f"https://{HOST}", max_retries=1, clock=clock
    ) as c:
        with pytest.raises(APIConnectionError, match="Proxy") as info:
            await c.list_jobs()
    assert len(slept) == 1  # the request never left: safe to retry
    shown = str(info.value) + repr(info.value) + " ".join(r.getMessage() for r in caplog.records)
    assert SECRET not in shown and KEY not in shown and f"127.0.0.1:{dead_port}" in shown


async def test_a_tunnel_the_proxy_refuses_never_reached_the_server(
    tls_emu: Emulator, dns: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy(tls_emu.port, refuse=407) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        clock = FakeClock()
        slept = clock.sleeps
        async with AsyncJobsClient(
            api_key=KEY, server_url=f"https://{HOST}", max_retries=1, clock=clock
        ) as c:
            with pytest.raises(APIConnectionError, match="407") as info:
                await c.cancel_job("00000000-0000-4000-8000-000000000000")
    # Not an AmbiguousRequestError: the request never left the proxy, so it was safe to resend.
    assert type(info.value) is APIConnectionError and len(slept) == 1
    assert proxy.connects == [f"{HOST}:443"] * 2 and tls_emu.requests == []


@pytest.mark.parametrize("value", ["socks5://me:pw-s3cret@127.0.0.1:1080", "https://proxy:8443"])
def test_a_proxy_the_client_cannot_use_is_refused_at_construction(
    dns: list[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(InvalidInputError, match="trust_env=False") as info:
        AsyncJobsClient(api_key=KEY, server_url=f"https://{HOST}")
    assert "s3cret" not in str(info.value) and "HTTPS_PROXY" in str(info.value)
    AsyncJobsClient(api_key=KEY, server_url=f"https://{HOST}", trust_env=False)


def test_the_sync_client_and_the_cli_honour_the_environment(
    ca: trustme.CA,
    ca_path: str,
    dns: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF sync through a proxy")
    context = server_tls(ca, HOST)
    with (
        Emulator(api_key=KEY, ssl_context=context).running_in_thread() as emu,
        ForwardProxy(emu.port).running_in_thread() as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", f"http://me:{SECRET}@"))
        with JobsClient(api_key=KEY, server_url=f"https://{HOST}", ssl=ca_path) as client:
            job = client.create_job(template_id="tpl", input_files=[doc])
        seen = len(proxy.connects)
        assert seen >= 1 and set(proxy.connects) == {f"{HOST}:443"}

        base = ["list", "--json", "--api-key", KEY, "--server-url", f"https://{HOST}"]
        assert main([*base, "--ca-bundle", ca_path]) == 0
        assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [job.id]
        assert len(proxy.connects) == seen + 1

        assert main([*base, "--ca-bundle", ca_path, "--no-proxy-env", "--max-retries", "0"]) == 3
        assert "tests do no DNS" in capsys.readouterr().err
        assert len(proxy.connects) == seen + 1

        logger = logging.getLogger("unstructured_jobs")
        handlers, level = logger.handlers[:], logger.level
        try:
            assert main([*base, "--ca-bundle", ca_path, "--debug"]) == 0
        finally:  # --debug added a handler on the (captured) stderr
            logger.handlers[:] = handlers
            logger.setLevel(level)
        err = capsys.readouterr().err
        assert "through the proxy http://127.0.0.1:" in err and SECRET not in err
    assert dns == [HOST]  # only the --no-proxy-env run looked the name up
