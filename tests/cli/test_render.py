"""`kit render`: the payload JSON an assistant becomes, per dialect and target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant_kit.cli import ExitCode, cli, main

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("ACME_REGION", raising=False)


def render(*args: str) -> str:
    result = CliRunner().invoke(cli, ["render", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("in_repo")
def test_art_maestro_renders_the_body_dashscopes_sdk_sends() -> None:
    body = json.loads(render("art-maestro", "--dialect", "dashscope"))
    assert body == {
        "model": "qwen-max",
        "name": "Art Maestro",
        "description": "AI assistant for painting and art knowledge",
        "instructions": "Provide information on painting techniques, art history, and creative "
        "guidance. Use tools for research and image generation.",
        "tools": [{"type": "quark_search"}, {"type": "text_to_image"}],
        "file_ids": [],
        "metadata": None,
    }


@pytest.mark.usefixtures("in_repo")
def test_the_openai_dialect_nests_functions_and_drops_dashscope_only_fields() -> None:
    body = json.loads(render("order-desk", "--dialect", "openai"))
    assert "file_ids" not in body and "top_k" not in body and "max_tokens" not in body
    assert (body["temperature"], body["top_p"]) == (0.2, 0.8)
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "get_order_status"
    assert body["instructions"].startswith("You are the order desk of Acme.\n")


@pytest.mark.usefixtures("in_repo")
def test_target_vars_change_the_instructions() -> None:
    body = json.loads(render("order-desk", "--target", "dashscope"))
    assert body["instructions"].startswith("You are the order desk of Acme Cloud.\n")
    assert "file_ids" in body  # the dashscope target speaks the DashScope dialect by default


@pytest.mark.usefixtures("in_repo")
def test_kit_yaml_env_mapping_reaches_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_REGION", "Hangzhou")
    body = json.loads(render("order-desk"))
    assert "Orders ship from the Hangzhou warehouse." in body["instructions"]


@pytest.mark.usefixtures("in_repo")
def test_digest_flag_prints_the_sha256() -> None:
    digest = render("art-maestro", "--dialect", "dashscope", "--digest").strip()
    assert len(digest) == 64 and int(digest, 16) >= 0


@pytest.mark.usefixtures("in_repo")
def test_an_unknown_name_is_a_usage_error_with_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["render", "art-mastro"])
    assert info.value.code == ExitCode.USAGE
    assert (
        capsys.readouterr().err
        == "Error: no assistant named `art-mastro`; did you mean `art-maestro`?\n"
    )


def test_an_unknown_dialect_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["render", "x", "--dialect", "azure"])
    assert info.value.code == ExitCode.USAGE
    assert "'azure' is not one of 'dashscope', 'openai'" in capsys.readouterr().err


def test_spec_errors_stop_rendering_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistants" / "a.yaml").write_text(
        "name: a\nmodel: m\ninstructions: '{{ nope }}'\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["render", "a"])
    assert info.value.code == ExitCode.FAILED
    assert capsys.readouterr().err.startswith(
        "assistants/a.yaml:3:15: undefined template variable `nope`"
    )


def test_plugin_tokens_are_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistants" / "a.yaml").write_text(
        "name: a\nmodel: m\ntools: [{type: plugin, id: weather, auth: {env: WEATHER_TOKEN}}]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEATHER_TOKEN", "very-secret")
    output = render("a", "--dialect", "dashscope")
    assert "very-secret" not in output
    assert json.loads(output)["tools"] == [
        {"type": "weather", "auth": {"type": "user_http", "user_token": "${WEATHER_TOKEN}"}}
    ]


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["render", "--help"])
    assert "kit render art-maestro --dialect dashscope" in result.output
