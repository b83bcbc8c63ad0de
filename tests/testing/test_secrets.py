"""The scrubber: configured secret values, Authorization headers, bearer tokens, data trees."""

from __future__ import annotations

import pytest

from assistant_kit.testing.records import ToolCallRecord, TurnRecord, Verdict
from assistant_kit.testing.secrets import (
    REDACTED,
    Scrubber,
    secret_env_names,
)

KIT_YAML = {
    "targets": {
        "local": {"provider": "local"},
        "staging": {"provider": "dashscope", "api_key_env": "STAGING_KEY", "vars": {"a": 1}},
    },
    "vars": {"region": {"env": "ACME_REGION"}},
    "server": {
        "models": {"qwen-max": {"backend": "openai", "api_key_env": "UPSTREAM_KEY"}},
        "plugins": [{"id": "weather", "auth": {"header": "Authorization", "env": "WEATHER_TOKEN"}}],
    },
}


def test_secret_env_names_come_from_api_key_env_and_plugin_auth():
    names = secret_env_names(KIT_YAML)
    assert {"STAGING_KEY", "UPSTREAM_KEY", "WEATHER_TOKEN", "OPENAI_API_KEY"} <= names
    assert "ACME_REGION" not in names  # a plain variable mapping is not a secret


def test_from_env_reads_values_and_splits_lists():
    env = {"STAGING_KEY": "staging-secret-1", "KIT_SERVER_API_KEYS": "key-one-aaa,key-two-bbb"}
    scrubber = Scrubber.from_env(["STAGING_KEY", "MISSING", "KIT_SERVER_API_KEYS"], env)
    text = scrubber.text("a staging-secret-1 b key-two-bbb c key-one-aaa")
    assert text == f"a {REDACTED} b {REDACTED} c {REDACTED}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]", id="header"
        ),
        pytest.param('{"authorization": "sk-1234"}', '{"authorization": "[REDACTED]"}', id="json"),
        pytest.param(
            "proxy-authorization=Basic dXNlcg==", "proxy-authorization=Basic [REDACTED]", id="basic"
        ),
        pytest.param("curl -H 'Bearer sk-abc12345'", "curl -H 'Bearer [REDACTED]'", id="bearer"),
        pytest.param("the bearer of bad news", "the bearer of bad news", id="prose"),
        pytest.param("authorization is required", "authorization is required", id="prose-2"),
    ],
)
def test_credentials_in_text(text, expected):
    scrubber = Scrubber()
    assert scrubber.text(text) == expected
    assert scrubber.text(expected) == expected  # idempotent


def test_short_values_are_not_treated_as_secrets():
    assert Scrubber(["x", "test"]).text("x marks the test") == "x marks the test"


def test_longest_secret_wins_when_one_contains_another():
    scrubber = Scrubber(["abcdef", "abcdef-long-secret"])
    assert scrubber.text("abcdef-long-secret") == REDACTED


def test_data_trees_are_rebuilt_with_enums_and_types_kept():
    secret = "sentinel-999-zzz"
    turn = TurnRecord(
        index=0,
        user=f"use {secret}",
        tool_calls=(ToolCallRecord.function("c", "f", f'{{"k": "{secret}"}}'),),
    )
    tree = {"turn": turn, "verdict": Verdict.PASS, "items": [secret, 3, None]}
    clean = Scrubber([secret]).data(tree)
    assert clean["verdict"] is Verdict.PASS
    assert clean["items"] == [REDACTED, 3, None]
    assert clean["turn"].user == f"use {REDACTED}"
    assert clean["turn"].tool_calls[0].arguments == {"k": REDACTED}
    assert secret in turn.user  # the original is untouched


def test_headers():
    scrubber = Scrubber(["my-secret-value"])
    assert scrubber.headers(
        [("Authorization", "Bearer x"), ("X-Api-Key", "k"), ("X-Echo", "my-secret-value")]
    ) == [("Authorization", REDACTED), ("X-Api-Key", REDACTED), ("X-Echo", REDACTED)]
