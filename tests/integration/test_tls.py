"""TLS for real, over loopback: the emulator serves HTTPS with a certificate from a throwaway CA
(trustme), and the client must verify it through ``ssl=``, the CA-bundle variables, a
``session_factory``, ``JobsClient`` or the CLI's ``--ca-bundle``."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from proxy import clear_network_env, server_tls

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

KEY = "tls-secret-key-0042"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_network_env(monkeypatch)


@pytest.fixture
async def emu(ca: trustme.CA) -> AsyncIterator[Emulator]:
    async with Emulator(ssl_context=server_tls(ca, "127.0.0.1", "localhost")) as server:
        yield server


@pytest.fixture
def emu_thread(ca: trustme.CA) -> Iterator[Emulator]:
    context = server_tls(ca, "127.0.0.1", "localhost")
    with Emulator(ssl_context=context).running_in_thread() as server:
        yield server


def no_sleep(client: AsyncJobsClient) -> list[float]:
    """The client's retry sleeps (its clock is a `FakeClock`: nothing really sleeps)."""
    assert isinstance(client.clock, FakeClock)
    return client.clock.sleeps


async def round_trip(client: AsyncJobsClient, tmp_path: Path) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF over TLS")
    job = await client.create_job(template_id="tpl", input_files=[doc])
    assert (await client.get_job(job.id)).id == job.id


async def test_an_untrusted_certificate_fails_at_once_and_sends_nothing(
    ca: trustme.CA,
) -> None:
    handshakes: list[str | None] = []
    context = server_tls(ca, "127.0.0.1", "localhost")
    context.sni_callback = lambda _obj, name, _ctx: handshakes.append(name)
    async with (
        Emulator(ssl_context=context) as server,
        AsyncJobsClient(
            api_key=KEY, server_url=f"https://localhost:{server.port}", clock=FakeClock()
        ) as client,
    ):
        slept = no_sleep(client)
        with pytest.raises(CertificateVerifyError) as info:
            await client.list_jobs()
        assert (handshakes, slept, server.requests) == (["localhost"], [], [])
    text = str(info.value)
    assert "could not be verified (" in text and "issuer" in text  # unknown CA
    assert 'ssl="/path/to/ca.pem"' in text and "SSL_CERT_FILE" in text
    assert "REQUESTS_CA_BUNDLE" in text and "--ca-bundle" in text
    assert isinstance(info.value, APIConnectionError) and KEY not in text + repr(info.value)


async def test_a_job_creating_request_is_not_retried_either(emu: Emulator, tmp_path: Path) -> None:
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url, clock=FakeClock()) as client:
        slept = no_sleep(client)
        with pytest.raises(CertificateVerifyError):
            await round_trip(client, tmp_path)
    assert (slept, emu.requests, emu.jobs) == ([], [], {})


async def test_a_ca_bundle_path_is_trusted(emu: Emulator, ca_path: str, tmp_path: Path) -> None:
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url, ssl=Path(ca_path)) as client:
        await round_trip(client, tmp_path)
    assert len(emu.jobs) == 1


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_a_ca_bundle_from_the_environment_set_after_import(
    emu: Emulator,
    ca_path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, ca_path)  # aiohttp was imported long ago
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url) as client:
        await round_trip(client, tmp_path)


async def test_ssl_cert_file_wins_over_requests_ca_bundle(
    emu: Emulator, ca_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_path)
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url, max_retries=0) as client:
        with pytest.raises(CertificateVerifyError):
            await client.list_jobs()


async def test_an_ssl_context_is_used_as_is(emu: Emulator, ca: trustme.CA, tmp_path: Path) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url, ssl=context) as client:
        await round_trip(client, tmp_path)


async def test_ssl_false_skips_verification(emu: Emulator, tmp_path: Path) -> None:
    async with AsyncJobsClient(api_key=KEY, server_url=emu.url, ssl=False) as client:
        await round_trip(client, tmp_path)


async def test_a_host_name_mismatch_is_a_certificate_error(ca: trustme.CA, ca_path: str) -> None:
    async with (
        Emulator(ssl_context=server_tls(ca, "elsewhere.test")) as server,
        AsyncJobsClient(
            api_key=KEY, server_url=server.url, ssl=ca_path, clock=FakeClock()
        ) as client,
    ):
        slept = no_sleep(client)
        with pytest.raises(CertificateVerifyError, match=r"mismatch.*check server_url"):
            await client.list_jobs()
        assert (slept, server.requests) == ([], [])


async def test_other_handshake_failures_are_not_retried(tmp_path: Path) -> None:
    async with Emulator() as plain:  # https to a plain-http port: no TLS answer at all
        url = plain.url.replace("http://", "https://")
        async with AsyncJobsClient(api_key=KEY, server_url=url, clock=FakeClock()) as client:
            slept = no_sleep(client)
            with pytest.raises(APIConnectionError, match="TLS handshake failed") as info:
                await client.list_jobs()
    assert not isinstance(info.value, CertificateVerifyError) and slept == []


@pytest.mark.parametrize("bad", ["missing.pem", "not-a-ca.pem"])
async def test_an_unusable_ca_bundle_is_refused_before_sending(
    emu: Emulator, tmp_path: Path, bad: str
) -> None:
    (tmp_path / "not-a-ca.pem").write_text("not a certificate")
    with pytest.raises(InvalidInputError, match="CA bundle"):
        AsyncJobsClient(api_key=KEY, server_url=emu.url, ssl=str(tmp_path / bad))
    assert emu.requests == []


async def test_session_factory_is_called_on_first_use_and_closed_by_the_client(
    emu: Emulator, ca: trustme.CA, tmp_path: Path
) -> None:
    made: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        made.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)))
        return made[-1]

    client = AsyncJobsClient(api_key=KEY, server_url=emu.url, session_factory=factory)
    assert made == []
    await round_trip(client, tmp_path)
    assert len(made) == 1 and not made[0].closed
    await client.aclose()
    assert made[0].closed


@pytest.mark.parametrize(
    "options",
    [{"ssl": False}, {"trust_env": False}, {"session_factory": aiohttp.ClientSession}],
)
async def test_a_session_of_ones_own_excludes_the_options_it_would_ignore(
    options: dict[str, Any],
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidInputError):
            AsyncJobsClient(api_key=KEY, session=session, **options)


def test_the_sync_client_takes_ssl_and_session_factory(
    emu_thread: Emulator, ca: trustme.CA, ca_path: str, tmp_path: Path
) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF sync TLS")
    with JobsClient(api_key=KEY, server_url=emu_thread.url, ssl=ca_path) as client:
        job = client.create_job(template_id="tpl", input_files=[doc])
        assert client.get_job(job.id).status is JobStatus.COMPLETED

    made: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:  # runs in the JobsClient's own loop
        context = ssl.create_default_context()
        ca.configure_trust(context)
        made.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)))
        return made[-1]

    with JobsClient(api_key=KEY, server_url=emu_thread.url, session_factory=factory) as client:
        assert [j.id for j in client.list_jobs()] == [job.id]
    assert len(made) == 1 and made[0].closed


async def test_the_sync_client_refuses_a_session_from_another_loop() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidInputError, match="session_factory=") as info:
            JobsClient(api_key=KEY, session=session)
    assert "ssl=" in str(info.value) and "trust_env=" in str(info.value)


def test_the_cli_takes_a_ca_bundle(
    emu_thread: Emulator, ca_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["list", "--json", "--api-key", KEY, "--server-url", emu_thread.url]
    assert main([*base, "--ca-bundle", ca_path]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([*base, "--max-retries", "0"]) == 3
    err = capsys.readouterr().err
    assert "certificate could not be verified" in err and "--ca-bundle" in err
    assert main([*base, "--ca-bundle", ca_path + ".missing"]) == 2
    assert "no CA bundle at" in capsys.readouterr().err
    assert len(emu_thread.requests) == 1
