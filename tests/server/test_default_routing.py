"""Routing defaults end to end: a project with no `server.models` on the embedded target.

Every model name goes to the in-process llama-cpp model. Without llama-cpp-python (simulated by
``sys.modules["llama_cpp"] = None``) a run fails with a ``last_error`` that says how to install
the extra or route to a chat-completions endpoint, and is never answered by the scripted double.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant_kit.api.base import AssistantParams, MessageParams
from assistant_kit.api.runs import RunParams
from assistant_kit.connect import open_target
from assistant_kit.spec.project import load_project

INSTALL = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "assistant-kit[local-model]"'

#: `python -m assistant_kit ...` with llama-cpp-python made unimportable first.
WITHOUT_LLAMA = (
    "import sys; sys.modules['llama_cpp'] = None; "
    "from assistant_kit.cli import main; main(sys.argv[1:])"
)

SPEC = """\
name: tutor
model: {model}
instructions: Answer in one short sentence.
tests:
  - name: knows a capital
    turns:
      - user: What is the capital of France?
        expect: [{{icontains: Paris}}]
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_project(root: Path, model: str = "qwen-max") -> Path:
    """A project whose kit.yaml says nothing about models (only a test default)."""
    (root / "kit.yaml").write_text("test: {timeout_s: 60}\n", encoding="utf-8")
    (root / "assistants").mkdir()
    (root / "assistants" / "tutor.yaml").write_text(SPEC.format(model=model), encoding="utf-8")
    return root


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_without_llama_cpp_a_run_fails_saying_how_to_install_or_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    write_project(tmp_path)
    (tmp_path / "kit.yaml").write_text(
        f"targets:\n  local: {{provider: local, dialect: {dialect}}}\n", encoding="utf-8"
    )
    project = load_project(cwd=tmp_path)
    async with open_target(project) as client:
        runs = []
        for model in ("qwen-max", "gpt-4o"):  # every name takes the default route
            bot = await client.create_assistant(AssistantParams(model=model, name="b"))
            thread = await client.create_thread(messages=[MessageParams("Hello?")])
            run = await client.create_run(thread.id, RunParams(assistant_id=bot.id))
            runs.append(await client.wait_run(thread.id, run.id, timeout=30))
            messages = await client.list_all_messages(thread.id)
            assert [m.role for m in messages] == ["user"]  # nobody answered, not even a double
    for run, model in zip(runs, ("qwen-max", "gpt-4o"), strict=True):
        assert run.status == "failed"
        error = run.last_error or {}
        message = str(error.get("message"))
        assert f'model "{model}" routes to the in-process llama-cpp backend' in message
        assert INSTALL in message
        assert "backend: openai" in message and "base_url" in message  # or route elsewhere


def test_kit_test_without_the_extra_errors_with_the_fix_and_no_traceback(tmp_path: Path) -> None:
    write_project(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LLAMA, "test", "--ephemeral"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("ERROR  tutor::knows a capital")
    assert "the run failed" in done.stdout and INSTALL in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
