"""``file_search`` in runs, through the openai SDK (strict) against ``kit serve`` with a scripted
model: the step with its results (their text through ``include[]``) and the reply's
``file_citation`` annotations pointing at the file the result came from."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from kit_server import running_kit_server
from openai import OpenAI

pytestmark = pytest.mark.slow

SCRIPT = """\
default: "Ask me about kitchen appliances."
rules:
  - user: "(?i)descale"
    tool_calls:
      - {name: file_search, arguments: {query: "how often to descale the kettle"}}
  - after_tool: file_search
    reply: "Descale it every month with citric acid 【0:0†kettle.md】."
"""
KETTLE = b"# Kettle\n\nDescale the kettle every month with citric acid. The kettle boils water."
TOASTER = b"# Toaster\n\nEmpty the crumb tray of the toaster every week."
CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    folder: Path = tmp_path_factory.mktemp("file-search")
    (folder / "models.yaml").write_text(SCRIPT, encoding="utf-8")
    (folder / "kit.yaml").write_text(
        "server:\n  models:\n    default: {backend: scripted, script: models.yaml}\n",
        encoding="utf-8",
    )
    with running_kit_server(output_dir=folder) as server:
        sdk = OpenAI(
            base_url=server.openai_url,
            api_key=server.api_key,
            max_retries=0,
            _strict_response_validation=True,
        )
        yield sdk
        sdk.close()


def test_file_search_step_results_and_citations(client: OpenAI) -> None:
    kettle = client.files.create(file=("kettle.md", KETTLE), purpose="assistants")
    toaster = client.files.create(file=("toaster.md", TOASTER), purpose="assistants")
    vs = client.vector_stores.create(name="kitchen", file_ids=[kettle.id, toaster.id])
    deadline = time.monotonic() + 30
    while vs.status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
        vs = client.vector_stores.retrieve(vs.id)
    assert vs.file_counts.completed == 2
    assistant = client.beta.assistants.create(
        model="scripted",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How do I descale my kettle?"}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error

    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search"
    results = call.file_search.results
    assert results and results[0].file_id == kettle.id and results[0].file_name == "kettle.md"
    assert results[0].content is None  # the text only when include[] asks for it
    detailed = client.beta.threads.runs.steps.retrieve(
        steps.data[0].id, thread_id=thread.id, run_id=run.id, include=[CONTENT]
    )
    hit = detailed.step_details.tool_calls[0].file_search.results[0]  # type: ignore[union-attr]
    assert hit.content is not None and "citric acid" in (hit.content[0].text or "")

    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    text = reply.content[0].text  # type: ignore[union-attr]
    marker = "【0:0†kettle.md】"
    assert text.value == f"Descale it every month with citric acid {marker}."
    (citation,) = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == kettle.id  # type: ignore[union-attr]
    assert text.value[citation.start_index : citation.end_index] == marker == citation.text


def test_without_a_vector_store_the_model_hears_so(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="scripted", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "descale?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search" and call.file_search.results == []
    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert reply.content[0].text.annotations == []  # type: ignore[union-attr]


def test_attachments_join_the_threads_own_vector_store(client: OpenAI) -> None:
    kettle = client.files.create(file=("kettle.md", KETTLE), purpose="assistants")
    assistant = client.beta.assistants.create(model="scripted", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How do I descale it?",
                "attachments": [{"file_id": kettle.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    thread = client.beta.threads.retrieve(thread.id)
    (store_id,) = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.file_citation.file_id == kettle.id  # type: ignore[union-attr]
    files = client.vector_stores.files.list(store_id)
    assert [f.id for f in files] == [kettle.id]
    with pytest.raises(openai.NotFoundError, match="No file found"):
        client.beta.threads.messages.create(
            thread.id,
            role="user",
            content="and this?",
            attachments=[
                {
                    "file_id": "file-00000000-0000-4000-8000-000000000000",
                    "tools": [{"type": "file_search"}],
                }
            ],
        )
