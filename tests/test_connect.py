"""open_target(): a kit.yaml target -> a client (the embedded server in-process, or HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from assistant_kit.connect import base_url_of, open_target
from assistant_kit.errors import ConfigError
from assistant_kit.spec.project import Target, load_project

#: The hosted DashScope API, where a `dashscope` target without `base_url` goes.
DASHSCOPE_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("config", "url"),
    [
        pytest.param({"provider": "dashscope"}, DASHSCOPE_BASE_URL, id="dashscope-default"),
        pytest.param(
            {"provider": "openai", "base_url": "http://127.0.0.1:9/v1/"},
            "http://127.0.0.1:9/v1",
            id="openai",
        ),
        pytest.param(
            {"provider": "local", "base_url": "http://127.0.0.1:8900"},
            "http://127.0.0.1:8900/v1",
            id="serve-openai",
        ),
        pytest.param(
            {"provider": "local", "base_url": "http://127.0.0.1:8900", "dialect": "dashscope"},
            "http://127.0.0.1:8900/api/v1",
            id="serve-dashscope",
        ),
    ],
)
def test_base_url_of_each_provider(config: dict[str, str], url: str) -> None:
    assert base_url_of(Target.from_config("t", config)) == url


def project_with(tmp_path: Path, targets: str) -> Path:
    (tmp_path / "assistants").mkdir()
    (tmp_path / "kit.yaml").write_text(f"targets:\n{targets}", encoding="utf-8")
    return tmp_path


async def test_a_dashscope_target_sends_its_key_to_the_hosted_url(tmp_path: Path) -> None:
    folder = project_with(tmp_path, "  ds: {provider: dashscope, api_key_env: DS_KEY}\n")
    project = load_project(target="ds", cwd=folder)
    seen: list[httpx.Request] = []

    def hosted(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "has_more": False})

    def wrap(real: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(hosted)

    async with open_target(project, environ={"DS_KEY": "sk-test"}, wrap=wrap) as client:
        assert client.dialect == "dashscope"
        assert await client.list_all_assistants() == []
    (request,) = seen
    assert str(request.url).startswith(f"{DASHSCOPE_BASE_URL}/assistants?")
    assert request.headers["Authorization"] == "Bearer sk-test"


async def test_a_remote_target_without_its_key_is_a_config_error(tmp_path: Path) -> None:
    folder = project_with(
        tmp_path, "  oai: {provider: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: K}\n"
    )
    project = load_project(target="oai", cwd=folder)
    with pytest.raises(ConfigError, match="reads its API key from K, which is not set"):
        async with open_target(project, environ={}):
            pass


async def test_the_embedded_target_keeps_its_state_in_the_project(tmp_path: Path) -> None:
    from assistant_kit.api.base import AssistantParams

    folder = project_with(tmp_path, "  local: {provider: local, dialect: dashscope}\n")
    project = load_project(cwd=folder)
    async with open_target(project) as client:
        made = await client.create_assistant(AssistantParams(model="m"))
    assert (folder / ".kit" / "server.db").is_file()
    async with open_target(project) as client:
        assert [a.id for a in await client.list_all_assistants()] == [made.id]


async def test_the_embedded_target_routes_models_as_kit_yaml_says(tmp_path: Path) -> None:
    from assistant_kit.api import AssistantParams, MessageParams
    from assistant_kit.api.runs import RunParams

    (tmp_path / "assistants").mkdir()
    (tmp_path / "kit.yaml").write_text(
        "server:\n"
        "  models:\n"
        "    default: {backend: scripted, rules: [{user: '(?i)capital', reply: Paris.}]}\n",
        encoding="utf-8",
    )
    project = load_project(cwd=tmp_path)
    async with open_target(project) as client:
        bot = await client.create_assistant(AssistantParams(model="any-model", name="geo"))
        thread = await client.create_thread()
        await client.create_message(thread.id, MessageParams("What is the capital of France?"))
        run = await client.create_run(thread.id, RunParams(assistant_id=bot.id))
        run = await client.wait_run(thread.id, run.id)
        assert run.status == "completed"
        messages = await client.list_all_messages(thread.id)
        assert [m.text for m in messages if m.role == "assistant"] == ["Paris."]


async def test_an_embedded_store_that_is_not_sqlite_is_a_config_error(tmp_path: Path) -> None:
    folder = project_with(tmp_path, "  local: {provider: local}\n")
    (folder / ".kit").mkdir()
    (folder / ".kit" / "server.db").write_bytes(b"not a database " * 20)
    project = load_project(cwd=folder)
    with pytest.raises(ConfigError, match=r"cannot open the embedded server's store .*server\.db"):
        async with open_target(project):
            pass
