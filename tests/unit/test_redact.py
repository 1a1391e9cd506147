"""`redact_secrets`: short keys are redacted as whole tokens only, long keys everywhere."""

from __future__ import annotations

import pytest

from unstructured_jobs._exceptions import LONG_SECRET, redact_secrets

LONG = "sk-Live_4f9a1B2c3D4e5F6a7b8C9d0E1f2A3b4"
PROSE = [
    "Traceback (most recent call last):",
    "unstructured-jobs: error: GET http://127.0.0.1:8765/api/v1/jobs/x -> 404: Job not found",
    '  File "/src/tests/integration/test_batch.py", line 12, in test_keys',
    "unstructured-api-key header missing; pass --api-key or set UNSTRUCTURED_API_KEY",
    "the tests test_key and keys_test use a kitten_key-like name: testkey, tests, test2",
]


@pytest.mark.parametrize("key", ["k", "key", "test", "K"])
@pytest.mark.parametrize("text", PROSE)
def test_a_short_key_never_mangles_words(key: str, text: str) -> None:
    # None of these lines holds the key as a token (`K` is case-sensitive: `k` stays).
    assert redact_secrets(text, [key]) == text


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("k", "unstructured-api-key: k", "unstructured-api-key: ***"),
        ("k", "GET /api/v1/jobs/?api_key=k&x=1", "GET /api/v1/jobs/?api_key=***&x=1"),
        ("k", "headers={'unstructured-api-key': 'k'}", "headers={'unstructured-api-key': '***'}"),
        ("k", 'JobsClient(api_key="k")', 'JobsClient(api_key="***")'),
        ("k", "key=k", "key=***"),
        ("k", "k", "***"),
        ("k", "k.", "***."),
        ("key", "key=k api_key=key --api-key key", "***=k api_key=*** --api-key ***"),
        ("test", "test_batch.py: key 'test' was rejected", "test_batch.py: key '***' was rejected"),
        ("a.b", "a.b aXb xa.b a.b/c", "*** aXb xa.b ***/c"),  # the key is escaped, not a regex
    ],
)
def test_a_short_key_is_redacted_as_a_token(key: str, text: str, expected: str) -> None:
    assert redact_secrets(text, [key]) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"unstructured-api-key: {LONG}",
        f"?api_key={LONG}&x=1",
        f"{{'unstructured-api-key': '{LONG}'}}",
        f'"{LONG}"',
        f"key={LONG}.",
        f"'line one\\n{LONG}'",  # inside a longer word in a repr: still redacted
        f"x{LONG}y",
        LONG * 2,
    ],
)
def test_a_long_key_is_redacted_wherever_it_appears(text: str) -> None:
    assert len(LONG) >= LONG_SECRET
    redacted = redact_secrets(text, [LONG, "k"])
    assert LONG not in redacted
    assert "***" in redacted
    assert redacted.replace("***", "") == text.replace(LONG, "")


def test_several_secrets_and_a_secret_inside_another() -> None:
    text = f"env {LONG}, flag k, other {LONG[:8]}"
    assert redact_secrets(text, ["k", LONG, "", LONG[:8]]) == "env ***, flag ***, other ***"
    assert redact_secrets(text, []) == text
    assert redact_secrets(text, [""]) == text


def test_token_boundaries_follow_the_documented_rule() -> None:
    """Letters and digits of any script, `_` and `-` glue a short key to its neighbours."""
    for glue in ["a", "Z", "0", "_", "-", "é", "ß"]:
        assert redact_secrets(f"{glue}k {glue}k{glue} k{glue}", ["k"]) == (
            f"{glue}k {glue}k{glue} k{glue}"
        )
    for sep in " .,;:=&?/\\'\"()[]{}<>@#%+*!|\t\n":
        assert redact_secrets(f"{sep}k{sep}k", ["k"]) == f"{sep}***{sep}***"
