"""kit.yaml's schema lists exactly the options each built-in tool takes, so a file that validates
also builds (and an option a tool gains shows up in editors)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from assistant_kit.server.tools.quark_search import QuarkSearchTool
from assistant_kit.server.tools.registry import build_tools
from assistant_kit.server.tools.sandbox import SandboxLimits
from assistant_kit.server.tools.text_to_image import TextToImageTool
from assistant_kit.spec.validate import load_schema


def _schema_options(tool: str) -> set[str]:
    return set(load_schema("kit")["$defs"]["server_tools"]["properties"][tool]["properties"])


def _constructor_options(cls: type) -> set[str]:
    return {p for p in inspect.signature(cls).parameters if p not in {"self", "http"}}


@pytest.mark.parametrize(
    ("tool", "options"),
    [
        pytest.param("text_to_image", _constructor_options(TextToImageTool), id="text_to_image"),
        pytest.param("quark_search", _constructor_options(QuarkSearchTool), id="quark_search"),
        pytest.param(
            "code_interpreter",
            set(SandboxLimits.__dataclass_fields__) | {"isolate", "executor"},
            id="code_interpreter",
        ),
    ],
)
def test_kit_schema_lists_exactly_the_options_each_tool_takes(tool: str, options: set[str]) -> None:
    assert _schema_options(tool) == options


def test_every_option_the_schema_shows_builds(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("# Cats\n\nRagdolls are calm.\n", encoding="utf-8")
    server = {
        "tools": {
            "text_to_image": {
                "backend": "local",
                "timeout_s": 5,
                "poll_interval_s": 1,
                "width": 64,
                "height": 64,
            },
            "quark_search": {
                "backend": "corpus",
                "path": "corpus",
                "max_results": 2,
                "timeout_s": 3,
                "params": {},
            },
            "code_interpreter": {"cpu_s": 1, "max_processes": 8, "file_mb": 1, "disk_mb": 8},
        }
    }
    tools = build_tools(server, base_dir=tmp_path)
    search = tools.get("quark_search")
    assert isinstance(search, QuarkSearchTool) and search.max_results == 2
    image = tools.get("text_to_image")
    assert isinstance(image, TextToImageTool) and (image.width, image.height) == (64, 64)


@pytest.mark.anyio
async def test_the_example_kit_yaml_serves_every_builtin_tool_offline() -> None:
    import yaml

    from assistant_kit.server.tools.base import ToolContext
    from assistant_kit.server.tools.runner import discard_file

    repo = Path(__file__).resolve().parents[3]
    server = yaml.safe_load((repo / "kit.yaml").read_text(encoding="utf-8"))["server"]
    tools = build_tools(server, base_dir=repo)
    try:
        image = tools.get("text_to_image")
        assert isinstance(image, TextToImageTool) and image.backend == "local"
        search = tools.get("quark_search")
        assert isinstance(search, QuarkSearchTool)
        context = ToolContext(thread_id="t", run_id="r", save_file=discard_file)
        found = await search.call({"query": "ragdoll cat"}, context)
        assert not found.is_error and '"source": "ragdoll-cats.md"' in found.output
    finally:
        await tools.aclose()
