"""ServerConfig from kit.yaml's ``server:`` section."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.errors import ConfigError
from assistant_kit.server.config import config_from_kit
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.tools.runner import find_tool


def test_models_tools_and_expiry_come_from_the_section(tmp_path: Path) -> None:
    (tmp_path / "script.yaml").write_text("default: hi\n", encoding="utf-8")
    config = config_from_kit(
        {
            "models": {"default": {"backend": "scripted", "script": "script.yaml"}},
            "run_expiry_s": 30,
        },
        base_dir=tmp_path,
        database=":memory:",
    )
    assert isinstance(config.models, ModelRouter)
    assert config.models.routes == {"default": "scripted"}
    assert config.run_expiry_s == 30.0 and config.database == ":memory:"
    tool = find_tool(config.tools, {"type": "search"})
    assert tool is not None and tool.type == "quark_search"
    assert find_tool(config.tools, {"type": "function", "function": {"name": "f"}}) is None
    assert config_from_kit({}, base_dir=tmp_path, run_expiry_s=5).run_expiry_s == 5.0


@pytest.mark.parametrize("expiry", [0, -1, "soon", True])
def test_a_bad_run_expiry_is_a_config_error(tmp_path: Path, expiry: object) -> None:
    with pytest.raises(ConfigError, match="run_expiry_s"):
        config_from_kit({"run_expiry_s": expiry}, base_dir=tmp_path)


def test_embeddings_and_file_limits_come_from_the_section(tmp_path: Path) -> None:
    config = config_from_kit(
        {
            "embeddings": {"base_url": "http://127.0.0.1:9/v1", "model": "e5"},
            "files": {"max_bytes": 1000, "total_bytes": 5000},
        },
        base_dir=tmp_path,
    )
    assert config.embeddings is not None and config.embeddings.model == "e5"
    assert (config.max_file_bytes, config.max_files_total_bytes) == (1000, 5000)
    plain = config_from_kit({}, base_dir=tmp_path)
    assert plain.embeddings is None and plain.max_file_bytes == 512 * 1024 * 1024
    with pytest.raises(ConfigError, match=r"server.files.max_bytes"):
        config_from_kit({"files": {"max_bytes": 0}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"server.embeddings.model"):
        config_from_kit({"embeddings": {"base_url": "http://127.0.0.1:9"}}, base_dir=tmp_path)


def test_event_retention_comes_from_kit_yaml_and_reaches_the_engine(tmp_path: Path) -> None:
    from assistant_kit.server.app import create_app

    config = config_from_kit({"event_retention_s": 90}, base_dir=tmp_path)
    assert config.event_retention_s == 90.0
    assert create_app(config).state.context.engine.settings.event_retention_s == 90.0
    with pytest.raises(ConfigError, match="event_retention_s"):
        config_from_kit({"event_retention_s": 0}, base_dir=tmp_path)
