"""The network settings as pure decisions: which proxy, which TLS context, what a TLS failure
means for retries, and what the user is told."""

from __future__ import annotations

import inspect
import logging
import ssl
from pathlib import Path

import pytest
import trustme
from proxy import clear_network_env

from unstructured_jobs import AsyncJobsClient, InvalidInputError
from unstructured_jobs._core import Failure, FailureKind, Safety, Verdict, decide, is_loopback
from unstructured_jobs._http.proxy import Proxy, environment_secrets, from_environment, redact_url
from unstructured_jobs._http.tls import build_context, verify_failure

URL = "https://api.unstructured.test"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_network_env(monkeypatch)


@pytest.mark.parametrize("safety", list(Safety))
def test_a_tls_failure_is_raised_for_every_request(safety: Safety) -> None:
    assert decide(safety, Failure(FailureKind.TLS)) is Verdict.RAISE


def test_proxies_and_verification_are_on_by_default() -> None:
    params = inspect.signature(AsyncJobsClient).parameters
    assert params["trust_env"].default is True and params["ssl"].default is True


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("LOCALHOST.", True), ("127.0.0.1", True), ("127.8.9.10", True),
     ("::1", True), ("128.0.0.1", False), ("localhost.example", False), ("api.test", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_proxy_is_chosen_by_the_servers_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    assert from_environment(URL) is None
    monkeypatch.setenv("HTTP_PROXY", "http://plain:3128")
    assert from_environment(URL) is None
    assert from_environment("http://api.unstructured.test") == Proxy("http://plain:3128")
    monkeypatch.setenv("https_proxy", "corp-proxy:8080")  # no scheme: http
    assert from_environment(URL) == Proxy("http://corp-proxy:8080")
    monkeypatch.setenv("https_proxy", "http://[fd00::1]")
    assert from_environment(URL) == Proxy("http://[fd00::1]:80")


@pytest.mark.parametrize(
    ("no_proxy", "bypassed"),
    [("api.unstructured.test", True), (".unstructured.test", True), ("unstructured.test", True),
     ("*", True), ("other.test,localhost", False), ("", False)],
)  # fmt: skip
def test_no_proxy(monkeypatch: pytest.MonkeyPatch, no_proxy: str, bypassed: bool) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (from_environment(URL) is None) is bypassed


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "https://localhost:1", "http://[::1]:2", "http://127.1.2.3"]
)
def test_loopback_is_never_proxied(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for variable in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://proxy:3128")
    assert from_environment(url) is None


def test_credentials_leave_the_url_for_a_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://me%40corp:p%3Ass-s3cret@proxy:3128")
    proxy = from_environment(URL)
    assert proxy is not None and proxy.url == "http://proxy:3128"
    assert proxy.headers == {"Proxy-Authorization": "Basic bWVAY29ycDpwOnNzLXMzY3JldA=="}
    assert "s3cret" not in repr(proxy) and "bWVA" not in repr(proxy)
    assert set(environment_secrets()) >= {"me%40corp:p%3Ass-s3cret", "p:ss-s3cret"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("http://u:pw@host:1/x", "http://***@host:1/x"), ("u:p@w@host:1", "***@host:1"),
     ("http://host:1", "http://host:1")],
)  # fmt: skip
def test_redact_url(raw: str, shown: str) -> None:
    assert redact_url(raw) == shown


@pytest.mark.parametrize(
    "value", ["socks5://u:pw-s3cret@h:1080", "https://h:443", "http://h:99999", "http://[bad"]
)
def test_unusable_proxies_are_input_errors(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(InvalidInputError, match="--no-proxy-env") as info:
        from_environment(URL)
    assert "s3cret" not in str(info.value)


def test_the_default_context_verifies_and_is_built_per_call() -> None:
    first, second = build_context(True), build_context(True)
    assert isinstance(first, ssl.SSLContext) and first is not second
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname
    assert build_context(True, tls_used=False) is True  # plain http: nothing to build


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_bundle_named_in_the_environment_must_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "nope.pem"))
    with pytest.raises(InvalidInputError, match=rf"\${variable}: no CA bundle at"):
        build_context(True)


def test_paths_folders_contexts_and_false(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = build_context(tmp_path / "ca.pem")
    assert isinstance(context, ssl.SSLContext) and context.cert_store_stats()["x509_ca"] == 1
    assert isinstance(build_context(str(tmp_path)), ssl.SSLContext)  # a hashed-certs folder
    mine = ssl.create_default_context()
    assert build_context(mine) is mine
    with caplog.at_level(logging.WARNING):
        assert build_context(False) is False
    assert "verification is off" in caplog.text
    for bad in ("", 1, None):
        with pytest.raises(InvalidInputError, match="ssl must be"):
            build_context(bad)  # type: ignore[arg-type]


def test_verify_failure_messages() -> None:
    unknown = ssl.SSLCertVerificationError(1, "certificate verify failed")
    unknown.verify_code, unknown.verify_message = 20, "unable to get local issuer certificate"
    text = verify_failure(unknown)
    assert "(unable to get local issuer certificate)" in text and "server_url" not in text
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed")
    mismatch.verify_code, mismatch.verify_message = 62, "Hostname mismatch"
    assert "(Hostname mismatch); check server_url" in verify_failure(mismatch)
