"""build_tools: kit.yaml's server section -> the tools, found by type, alias or plugin id."""

from __future__ import annotations

import json

import pytest
import yaml

from assistant_kit.errors import ConfigError
from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.plugins import PluginTool
from assistant_kit.server.tools.quark_search import QuarkSearchTool
from assistant_kit.server.tools.registry import UnconfiguredTool, build_tools
from assistant_kit.server.tools.sandbox import Execution, Executor, LocalSandbox
from assistant_kit.server.tools.text_to_image import TextToImageTool

pytestmark = pytest.mark.anyio

KIT_YAML = """
server:
  tools:
    text_to_image: {backend: local, width: 64, height: 64}
    quark_search: {backend: corpus, path: docs/corpus, max_results: 3}
    code_interpreter: {timeout_s: 5, memory_mb: 256, max_processes: 8}
  plugins:
    - id: weather
      method: GET
      url: http://127.0.0.1:9/weather
      parameters: {type: object, properties: {city: {type: string}}}
  allowed_hosts: [127.0.0.1]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "docs" / "corpus").mkdir(parents=True)
    (tmp_path / "docs" / "corpus" / "monet.md").write_text("# Monet\n\nWater lilies.\n")
    return tmp_path


async def test_builds_every_tool_from_the_server_section(project):
    server = yaml.safe_load(KIT_YAML)["server"]
    tools = build_tools(server, base_dir=project)
    try:
        assert isinstance(tools.resolve({"type": "code_interpreter"}), CodeInterpreterTool)
        assert isinstance(tools.resolve({"type": "wanx"}), TextToImageTool)
        assert isinstance(tools.resolve({"type": "text_to_image"}), TextToImageTool)
        search = tools.resolve({"type": "search"})
        assert isinstance(search, QuarkSearchTool)
        assert search is tools.resolve({"type": "quark_search"})
        plugin = tools.resolve({"type": "plugin", "id": "weather"})
        assert isinstance(plugin, PluginTool)
        assert tools.resolve({"type": "weather", "auth": {"user_token": "t"}}) is plugin
        assert tools.resolve({"type": "function", "function": {"name": "f"}}) is None
        assert tools.resolve({"type": "file_search"}) is None
        interpreter = tools.get("code_interpreter")
        assert isinstance(interpreter, CodeInterpreterTool)
        assert isinstance(interpreter.executor, LocalSandbox)
        assert interpreter.executor.limits.memory_mb == 256
        assert [t.definition()["name"] for t in tools] == [
            "code_interpreter",
            "text_to_image",
            "quark_search",
            "weather",
        ]
    finally:
        await tools.aclose()


async def test_the_corpus_path_is_relative_to_the_project(project, context):
    tools = build_tools(yaml.safe_load(KIT_YAML)["server"], base_dir=project)
    result = await tools.resolve({"type": "quark_search"}).call({"query": "lilies"}, context)
    await tools.aclose()
    assert json.loads(result.output)["results"][0]["source"] == "monet.md"


async def test_without_configuration_search_tells_the_model_it_is_missing(context):
    tools = build_tools({})
    search = tools.resolve({"type": "quark_search"})
    result = await search.call({"query": "x"}, context)
    await tools.aclose()
    assert isinstance(search, UnconfiguredTool)
    assert result.is_error
    assert result.output == (
        "quark_search failed: search is not configured on this server "
        "(kit.yaml server.tools.quark_search)"
    )
    assert isinstance(tools.resolve({"type": "text_to_image"}), TextToImageTool)


class ExternalExecutor(Executor):
    isolation = "external"

    def __init__(self, limits) -> None:
        self.limits = limits

    async def execute(self, session: str, code: str) -> Execution:
        return Execution(logs="external\n")

    async def reset(self, session: str) -> None:
        pass


def make_executor(limits):
    return ExternalExecutor(limits)


async def test_an_external_executor_is_named_in_kit_yaml(context):
    module = __name__
    tools = build_tools({"tools": {"code_interpreter": {"executor": f"{module}:make_executor"}}})
    result = await tools.resolve({"type": "code_interpreter"}).call({"code": "1"}, context)
    await tools.aclose()
    assert result.output == "external"


@pytest.mark.parametrize(
    ("server", "message"),
    [
        pytest.param({"tools": []}, "server.tools must be a mapping", id="tools-list"),
        pytest.param(
            {"tools": {"code_interpreter": {"memroy_mb": 1}}},
            "unknown option",
            id="typo-in-limits",
        ),
        pytest.param(
            {"tools": {"text_to_image": {"backend": "local", "colour": "red"}}},
            "text_to_image: .*colour",
            id="typo-in-text-to-image",
        ),
        pytest.param(
            {"tools": {"quark_search": {"backend": "http"}}}, "needs `url`", id="search-url"
        ),
        pytest.param(
            {"plugins": [{"id": "p", "url": "http://internal/x"}], "allowed_hosts": []},
            "not in server.allowed_hosts",
            id="plugin-host",
        ),
        pytest.param(
            {"plugins": [{"id": "search", "url": "http://a/x"}], "allowed_hosts": ["a"]},
            "taken by a built-in",
            id="plugin-shadows-builtin",
        ),
        pytest.param(
            {"tools": {"code_interpreter": {"executor": "nowhere.module:make"}}},
            "cannot load executor",
            id="executor-path",
        ),
    ],
)
def test_bad_configuration_is_a_config_error(server, message):
    with pytest.raises(ConfigError, match=message):
        build_tools(server)
