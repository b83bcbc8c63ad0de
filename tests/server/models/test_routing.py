from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assistant_kit.errors import ConfigError, ModelError
from assistant_kit.server.models.base import ChatMessage, ModelRequest, TextDelta
from assistant_kit.server.models.openai import OpenAIChatBackend
from assistant_kit.server.models.routing import KINDS, ModelRouter
from assistant_kit.server.models.scripted import ScriptedBackend
from assistant_kit.spec.validate import load_schema

LLAMA_MODULE = "assistant_kit.server.models.llama_cpp"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeLlama(ScriptedBackend):
    """Stands in for the local-model module, which is another part's (and an optional extra)."""

    kind = "llama-cpp"
    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, path: str | None = None, n_ctx: int = 2048, seed: int = 0) -> None:
        super().__init__(default=f"local {n_ctx}")
        FakeLlama.created.append({"path": path, "n_ctx": n_ctx, "seed": seed})


@pytest.fixture
def fake_llama(monkeypatch: pytest.MonkeyPatch) -> type[FakeLlama]:
    module = types.ModuleType(LLAMA_MODULE)
    module.LlamaCppBackend = FakeLlama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, LLAMA_MODULE, module)
    monkeypatch.setitem(sys.modules, "llama_cpp", types.ModuleType("llama_cpp"))
    FakeLlama.created = []
    return FakeLlama


@pytest.fixture
def no_llama(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, LLAMA_MODULE, None)  # makes the import fail


def test_python_mapping_routes_names_and_default() -> None:
    special, fallback = ScriptedBackend(default="special"), ScriptedBackend(default="other")
    router = ModelRouter({"qwen-max": special, "default": fallback})
    assert router.resolve("qwen-max") is special
    assert router.resolve("anything-else") is fallback
    assert router.routes == {"qwen-max": "scripted", "default": "scripted"}


def test_unroutable_model_is_a_model_error_naming_it() -> None:
    router = ModelRouter({"qwen-max": ScriptedBackend()})
    with pytest.raises(ModelError, match=r'no backend for model "gpt-4o".*no default'):
        router.resolve("gpt-4o")


def test_kit_yaml_routes_build_each_backend_once(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo.yaml").write_text("default: scripted hello\n", encoding="utf-8")
    router = ModelRouter(
        {
            "default": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "demo": {"backend": "scripted", "script": "scripts/demo.yaml", "delay_ms": 3},
            "demo-2": {"backend": "scripted", "script": "scripts/demo.yaml", "delay_ms": 3},
            "inline": {"backend": "scripted", "rules": [{"user": "hi", "reply": "yo"}]},
        },
        base_dir=tmp_path,
    )
    demo = router.resolve("demo")
    assert isinstance(demo, ScriptedBackend) and demo.delay_ms == 3
    assert router.resolve("demo") is demo
    assert router.resolve("demo-2") is demo  # same configuration, one shared backend
    assert isinstance(router.resolve("inline"), ScriptedBackend)
    upstream = router.resolve("qwen-max")
    assert isinstance(upstream, OpenAIChatBackend)
    assert upstream.upstream_model("qwen-max") == "m"


@pytest.mark.anyio
async def test_scripted_route_answers_from_its_script(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("default: scripted hello\n", encoding="utf-8")
    router = ModelRouter(
        {"default": {"backend": "scripted", "script": "demo.yaml"}}, base_dir=tmp_path
    )
    request = ModelRequest(model="x", messages=(ChatMessage("user", "hi"),))
    events = [e async for e in router.resolve("x").stream(request)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "scripted hello"
    await router.aclose()


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        pytest.param({"default": {"backend": "gpt"}}, "backend must be one of", id="kind"),
        pytest.param({"default": "openai"}, "expected a mapping", id="not-a-mapping"),
        pytest.param({"default": {"backend": "openai"}}, "needs a base_url", id="no-base-url"),
        pytest.param(
            {"default": {"backend": "openai", "base_url": "http://x/v1", "api_key": "sk-1"}},
            "unknown option(s) api_key",
            id="inline-key",
        ),
        pytest.param(
            {"default": {"backend": "openai", "base_url": "ftp://x/v1"}}, "http(s)", id="scheme"
        ),
        pytest.param(
            {"default": {"backend": "scripted", "script": "missing.yaml"}},
            "cannot read the model script",
            id="script-missing",
        ),
        pytest.param(
            {"default": {"backend": "scripted", "script": "s.yaml", "rules": []}},
            "not both",
            id="script-and-rules",
        ),
        pytest.param(
            {"default": {"backend": "scripted", "_places": []}}, "unknown option", id="private"
        ),
        pytest.param(
            {"default": {"backend": "scripted", "rules": [{"user": "x"}]}},
            "exactly one of",
            id="bad-rule",
        ),
    ],
)
def test_bad_routes_are_config_errors(tmp_path: Path, routes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ModelRouter(routes, base_dir=tmp_path)
    assert message in str(info.value)
    assert "sk-1" not in str(info.value)


def test_no_models_config_routes_everything_to_llama_cpp(fake_llama: type[FakeLlama]) -> None:
    router = ModelRouter(None)
    assert router.routes == {"default": "llama-cpp"}
    assert fake_llama.created == []  # nothing loads before the first resolve
    backend = router.resolve("qwen-max")
    assert isinstance(backend, FakeLlama)
    assert router.resolve("another") is backend
    assert len(fake_llama.created) == 1


def test_llama_cpp_options_and_relative_path(tmp_path: Path, fake_llama: type[FakeLlama]) -> None:
    router = ModelRouter(
        {
            "default": {"backend": "llama-cpp", "path": "models/x.gguf", "n_ctx": 512},
            "same": {"backend": "llama-cpp", "path": "models/x.gguf", "n_ctx": 512},
        },
        base_dir=tmp_path,
    )
    assert router.resolve("same") is router.resolve("default")
    assert fake_llama.created == [
        {"path": str(tmp_path / "models/x.gguf"), "n_ctx": 512, "seed": 0}
    ]


def test_bad_llama_cpp_options_fail_on_resolve(fake_llama: type[FakeLlama]) -> None:
    router = ModelRouter({"default": {"backend": "llama-cpp", "gpu": True}})
    with pytest.raises(ModelError, match="bad llama-cpp options"):
        router.resolve("m")


def test_missing_local_model_extra_explains_the_fix(no_llama: None) -> None:
    router = ModelRouter()
    with pytest.raises(ModelError) as info:
        router.resolve("qwen-max")
    message = str(info.value)
    assert 'model "qwen-max"' in message
    assert 'pip install "assistant-kit[local-model]"' in message
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in message
    assert "backend: openai" in message


def test_missing_llama_cpp_python_fails_on_resolve_with_the_fix(
    fake_llama: type[FakeLlama], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    router = ModelRouter({"default": {"backend": "llama-cpp"}})
    with pytest.raises(ModelError, match="llama_cpp") as info:
        router.resolve("local")
    assert 'pip install "assistant-kit[local-model]"' in str(info.value)
    assert fake_llama.created == []


def test_empty_models_mapping_has_no_routes() -> None:
    with pytest.raises(ModelError, match="configured: none"):
        ModelRouter({}).resolve("x")


@pytest.mark.anyio
async def test_aclose_closes_each_backend_once() -> None:
    closed: list[str] = []

    class Tracking(ScriptedBackend):
        async def aclose(self) -> None:
            closed.append("x")

    shared = Tracking()
    router = ModelRouter({"a": shared, "b": shared, "default": shared})
    await router.aclose()
    assert closed == ["x"]


def _schema_options(backend: str) -> set[str]:
    from assistant_kit.spec.validate import load_schema

    branches = load_schema("kit")["$defs"]["model_backend"]["allOf"]
    for branch in branches:
        if branch["if"]["properties"]["backend"]["const"] == backend:
            return set(branch["then"]["properties"]) - {"backend"}
    raise AssertionError(f"no schema branch for {backend}")


def _constructor_options(cls: type) -> set[str]:
    import inspect

    return {
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.name not in {"self", "http", "source"} and not p.name.startswith("_")
    }


@pytest.mark.parametrize(
    ("backend", "module", "cls", "renamed"),
    [
        pytest.param(
            "openai", "openai", "OpenAIChatBackend", {"timeout": "timeout_s"}, id="openai"
        ),
        pytest.param("scripted", "scripted", "ScriptedBackend", {}, id="scripted"),
        pytest.param("llama-cpp", "llama_cpp", "LlamaCppBackend", {}, id="llama-cpp"),
    ],
)
def test_kit_schema_lists_exactly_the_options_each_backend_takes(
    backend: str, module: str, cls: str, renamed: dict[str, str]
) -> None:
    import importlib

    backend_cls = getattr(importlib.import_module(f"assistant_kit.server.models.{module}"), cls)
    options = {renamed.get(name, name) for name in _constructor_options(backend_cls)}
    if backend == "scripted":
        options |= {"script"}  # a file of rules, read by the router
    assert _schema_options(backend) == options


def test_the_schema_knows_every_backend_kind_the_router_builds() -> None:
    backend = load_schema("kit")["$defs"]["model_backend"]["properties"]["backend"]
    assert backend["enum"] == list(KINDS)
