"""The official ``openai`` SDK's Responses and Conversations APIs on ``kit serve`` (scripted
model, strict response validation): create, function calls, chains, streams, background,
retrieve, delete, input items, input tokens, prompts, conversations and their items, and the same
state through the Assistants surface (a conversation is a thread)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pydantic
import pytest
from kit_server import KitServer, running_kit_server
from openai import OpenAI
from runs_project import WEATHER_TOOL, write_project

#: The weather function in the Responses API's flat tool form.
WEATHER = {"type": "function", **WEATHER_TOOL["function"]}


#: Rules this module adds to the shared script: a JSON reply, and a reply cut off mid-stream.
EXTRA_RULES = """\
  - user: "(?i)^describe the fox as json"
    reply: '{"name": "Vixen", "legs": 4}'
  - user: "(?i)^break"
    reply: "this reply never finishes"
    cut_after: 6
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = write_project(tmp_path_factory.mktemp("kit-responses"))
    with (folder / "scripts" / "models.yaml").open("a", encoding="utf-8") as script:
        script.write(EXTRA_RULES)
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as running:
        yield running


@pytest.fixture
def client(server: KitServer) -> Iterator[OpenAI]:
    sdk = OpenAI(
        base_url=server.openai_url,
        api_key=server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    )
    yield sdk
    sdk.close()


def test_create_from_a_string_completes_with_text_and_usage(client: OpenAI) -> None:
    response = client.responses.create(
        model="qwen-max",
        input="Please draw a picture of a red fox.",
        instructions="Be kind.",
        metadata={"case": "string"},
        temperature=0.5,
        top_p=0.9,
        truncation="auto",
        reasoning={"effort": "low"},
        include=["message.output_text.logprobs"],
    )
    assert response.status == "completed" and response.error is None
    assert response.output_text.startswith("Here is a red fox")
    assert response.output[0].type == "message"
    assert response.output[0].content[0].type == "output_text"
    assert response.instructions == "Be kind." and response.metadata == {"case": "string"}
    assert response.temperature == 0.5 and response.truncation == "auto"
    assert response.usage is not None and response.usage.total_tokens > 0
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.status == "completed"


def test_item_list_input_with_developer_message(client: OpenAI) -> None:
    response = client.responses.create(
        model="qwen-max",
        input=[
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "input_text", "text": "count please"}]},
        ],
    )
    assert response.output_text == "one two three four five six seven eight nine ten"


def test_function_call_then_output_with_previous_response_id(client: OpenAI) -> None:
    first = client.responses.create(
        model="qwen-max",
        input="What is the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    assert first.status == "completed"
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="qwen-max",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.status == "completed" and second.output_text == "The weather is sunny."
    assert second.previous_response_id == first.id


def test_chain_continues_the_conversation_and_shows_as_a_thread(client: OpenAI) -> None:
    first = client.responses.create(model="qwen-max", input="draw a picture of a cat")
    second = client.responses.create(
        model="qwen-max", input="count", previous_response_id=first.id, store=False
    )
    assert second.store is False and second.output_text.startswith("one two")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    third = client.responses.create(
        model="qwen-max", input="draw a picture of a dog", previous_response_id=second.id
    )
    assert third.output_text.startswith("Here is a dog")


def test_a_thread_continues_as_a_conversation(client: OpenAI) -> None:
    threads = client.beta.threads
    assistant = client.beta.assistants.create(model="qwen-max")
    thread = threads.create(messages=[{"role": "user", "content": "draw a picture of a cat"}])
    run = threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    response = client.responses.create(model="qwen-max", input="count", conversation=thread.id)
    assert response.conversation is not None
    assert response.conversation.id == "conv_" + thread.id.removeprefix("thread_")
    messages = threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    last = messages[-1]
    assert last.content[0].type == "text" and last.content[0].text.value.startswith("one two")
    assert last.run_id == "run_" + response.id.removeprefix("resp_")
    followup = client.responses.create(
        model="qwen-max", input="draw a picture of a dog", previous_response_id=response.id
    )
    assert followup.conversation is not None
    assert followup.conversation.id == response.conversation.id
    assert len(threads.messages.list(thread.id).data) == 6


def test_text_format_json_schema_and_max_output_tokens(client: OpenAI) -> None:
    response = client.responses.create(
        model="qwen-max",
        input="draw a picture of a horse",
        text={
            "format": {
                "type": "json_schema",
                "name": "drawing",
                "schema": {"type": "object", "properties": {"what": {"type": "string"}}},
                "strict": False,
            }
        },
        max_output_tokens=3,
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.text is not None and response.text.format.type == "json_schema"


def test_delete_input_items_and_input_tokens(client: OpenAI) -> None:
    response = client.responses.create(
        model="qwen-max",
        input=[
            {"role": "user", "content": "count"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "count again"},
        ],
    )
    items = client.responses.input_items.list(response.id, order="asc")
    texts = [item.content[0].text for item in items.data if item.type == "message"]
    assert texts == ["count", "one", "count again"]
    counted = client.responses.input_tokens.count(model="qwen-max", input="count to ten")
    assert counted.input_tokens > 0
    deleted = client.responses.delete(response.id)
    assert deleted is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_00000000-0000-4000-8000-000000000000")


def test_bad_requests_answer_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="model"):
        client.responses.create(input="hi")  # type: ignore[call-overload]
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        client.responses.create(
            model="qwen-max",
            input=[{"type": "function_call_output", "call_id": "call_x", "output": "1"}],
        )


def test_a_cut_off_reply_fails_with_an_error(client: OpenAI) -> None:
    response = client.responses.create(model="qwen-max", input="break it")
    assert response.status == "failed"
    assert response.error is not None and response.error.code == "server_error"
    assert "cut off" in response.error.message


class Fox(pydantic.BaseModel):
    name: str
    legs: int


def test_parse_with_a_pydantic_text_format(client: OpenAI) -> None:
    parsed = client.responses.parse(
        model="qwen-max", input="describe the fox as json", text_format=Fox
    )
    assert parsed.output_parsed == Fox(name="Vixen", legs=4)
    assert parsed.text is not None and parsed.text.format.type == "json_schema"


def test_stream_helper_text_events_in_order(client: OpenAI) -> None:
    names: list[str] = []
    deltas: list[str] = []
    with client.responses.stream(model="qwen-max", input="count") as stream:
        for event in stream:
            names.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert final.status == "completed" and final.output_text == "".join(deltas)
    assert len(deltas) > 1
    assert names[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.usage is not None and final.usage.output_tokens > 0


def test_stream_function_call_events_and_sequence_numbers(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="qwen-max",
            input="weather in Oslo and Rome",
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
        )
    )
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds.count("response.output_item.added") == 2
    assert kinds.count("response.function_call_arguments.done") == 2
    assert kinds[-1] == "response.completed"
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(e.arguments) for e in done] == [{"city": "Oslo"}, {"city": "Rome"}]
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["function_call", "function_call"]


def test_background_response_retrieve_stream_resume_and_cancel(client: OpenAI) -> None:
    queued = client.responses.create(model="slow", input="count", background=True)
    assert queued.background is True and queued.status in ("queued", "in_progress")
    events = list(client.responses.retrieve(queued.id, stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    resumed = list(client.responses.retrieve(queued.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[4:]]
    assert client.responses.retrieve(queued.id).status == "completed"
    slow = client.responses.create(model="slow", input="count", background=True)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(client.responses.create(model="qwen-max", input="count").id)


def test_prompt_from_an_applied_assistant_by_id_and_by_kit_name(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(
        model="qwen-max",
        instructions="You help {{ customer }} paint.",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        temperature=0.3,
        metadata={"kit_name": "prompt-painter"},
    )
    by_id = client.responses.create(
        prompt={"id": assistant.id, "variables": {"customer": "Ann"}}, input="count"
    )
    assert by_id.model == "qwen-max" and by_id.instructions == "You help Ann paint."
    assert by_id.temperature == 0.3 and [t.type for t in by_id.tools] == ["function"]
    assert by_id.prompt is not None and by_id.prompt.id == assistant.id
    by_name = client.responses.create(
        prompt={"id": "kit:prompt-painter", "variables": {"customer": "Bo"}},
        input="What is the weather in Oslo?",
    )
    assert by_name.instructions == "You help Bo paint."
    assert [item.type for item in by_name.output] == ["function_call"]
    with pytest.raises(openai.BadRequestError, match="customer"):
        client.responses.create(prompt={"id": assistant.id, "variables": {"x": "1"}}, input="hi")
    with pytest.raises(openai.BadRequestError, match="kit_name"):
        client.responses.create(prompt={"id": "kit:nobody"}, input="hi")


@pytest.mark.parametrize(
    "prefix", ["/compatible-mode/v1", "/api/v2/apps/protocols/compatible-mode/v1"]
)
def test_dashscope_compatible_paths_serve_the_same_responses(
    server: KitServer, prefix: str
) -> None:
    with OpenAI(
        base_url=server.base_url + prefix,
        api_key=server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    ) as compatible:
        first = compatible.responses.create(model="qwen-plus", input="draw a picture of an owl")
        assert first.output_text.startswith("Here is a owl")
        second = compatible.responses.create(
            model="qwen-plus", input="count", previous_response_id=first.id
        )
        assert second.output_text.startswith("one two")
    with OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0) as plain:
        assert plain.responses.retrieve(second.id).previous_response_id == first.id


# -- conversations -----------------------------------------------------------------------


def test_conversation_lifecycle_and_items(client: OpenAI) -> None:
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "draw a picture of a cat"}],
        metadata={"topic": "cats"},
    )
    assert conv.id.startswith("conv_") and conv.metadata == {"topic": "cats"}
    assert client.conversations.retrieve(conv.id).id == conv.id
    updated = client.conversations.update(conv.id, metadata={"topic": "dogs"})
    assert updated.metadata == {"topic": "dogs"}
    response = client.responses.create(model="qwen-max", input="count", conversation=conv.id)
    assert response.output_text.startswith("one two")
    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "hello there"}]
    )
    assert len(added.data) == 1 and added.data[0].type == "message"
    items = client.conversations.items.list(conv.id, order="asc")
    roles = [getattr(i, "role", None) for i in items.data if i.type == "message"]
    assert roles == ["user", "user", "assistant", "user"] and len(items.data) == 4
    newest = client.conversations.items.list(conv.id, limit=2)
    assert [i.id for i in newest.data] == [i.id for i in reversed(items.data)][:2]
    assert newest.has_more is True
    one = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert one.id == added.data[0].id
    after = client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    assert after.id == conv.id
    assert len(client.conversations.items.list(conv.id).data) == 3
    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted is True and deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_a_conversation_is_a_thread_on_both_surfaces(client: OpenAI) -> None:
    threads = client.beta.threads
    thread = threads.create(messages=[{"role": "user", "content": "draw a picture of a fox"}])
    assistant = client.beta.assistants.create(model="qwen-max")
    assert threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id).status == (
        "completed"
    )
    conv = client.conversations.retrieve(thread.id)
    assert conv.id == "conv_" + thread.id.removeprefix("thread_")
    assert threads.retrieve(conv.id).id == thread.id
    items = client.conversations.items.list(conv.id, order="asc").data
    messages = threads.messages.list(thread.id, order="asc").data
    assert [i.id for i in items] == [m.id for m in messages]
    assert items[1].type == "message" and items[1].content[0].type == "output_text"
    assert items[1].content[0].text.startswith("Here is a fox")


def test_function_calls_show_as_items(client: OpenAI) -> None:
    conv = client.conversations.create()
    first = client.responses.create(
        model="qwen-max",
        input="weather in Lima",
        tools=[WEATHER],  # type: ignore[list-item]
        conversation=conv.id,
    )
    call = next(i for i in first.output if i.type == "function_call")
    client.responses.create(
        model="qwen-max",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "mild"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    kinds = [i.type for i in client.conversations.items.list(conv.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output", "message"]
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.create(
            conv.id, items=[{"type": "function_call_output", "call_id": "x", "output": "y"}]
        )
