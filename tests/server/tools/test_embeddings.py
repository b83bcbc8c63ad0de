"""The embeddings client against a real HTTP endpoint on loopback (OpenAI's /embeddings shape):
batching, order by index, the key from its variable, and clear failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from assistant_kit.errors import ConfigError
from assistant_kit.server.knowledge.embeddings import Embedder, EmbeddingError, EmbeddingsConfig

pytestmark = pytest.mark.anyio
#: The ``loopback`` fixture of this folder's conftest: starts a server answering with a handler.
Start = Callable[[Callable[[Any], Any]], Any]


def _lengths(seen: Any) -> tuple[int, dict[str, str], object]:
    texts = json.loads(seen.body)["input"]
    data = [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(texts)]
    return 200, {}, {"object": "list", "data": list(reversed(data))}


def _embedder(url: str, **extra: Any) -> Embedder:
    return Embedder(EmbeddingsConfig.from_mapping({"base_url": url + "/v1", "model": "m", **extra}))


async def test_batches_in_order(loopback: Start) -> None:
    server = loopback(_lengths)
    vectors = await _embedder(server.url, batch_size=2).embed(["a", "bb", "ccc"])
    assert vectors == [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    assert [json.loads(s.body)["input"] for s in server.seen] == [["a", "bb"], ["ccc"]]
    assert {s.path for s in server.seen} == {"/v1/embeddings"}
    assert json.loads(server.seen[0].body)["model"] == "m"


async def test_key_from_environment(loopback: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = loopback(_lengths)
    embedder = _embedder(server.url, api_key_env="KIT_TEST_EMBED_KEY")
    monkeypatch.delenv("KIT_TEST_EMBED_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="KIT_TEST_EMBED_KEY is not set"):
        await embedder.embed(["a"])
    monkeypatch.setenv("KIT_TEST_EMBED_KEY", "sk-embed-secret")
    await embedder.embed(["a"])
    assert server.seen[-1].headers["authorization"] == "Bearer sk-embed-secret"


async def test_failures_name_the_endpoint_not_the_key(
    loopback: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_TEST_EMBED_KEY", "sk-embed-secret")
    refused = loopback(lambda seen: (401, {}, {"error": {"message": "bad key"}}))
    with pytest.raises(EmbeddingError) as e:
        await _embedder(refused.url, api_key_env="KIT_TEST_EMBED_KEY").embed(["a"])
    assert "answered HTTP 401" in str(e.value) and "sk-embed-secret" not in str(e.value)
    wrong = loopback(lambda seen: (200, {}, {"data": [{"index": 0}]}))
    with pytest.raises(EmbeddingError, match="answered no embeddings list"):
        await _embedder(wrong.url).embed(["a"])
    short = loopback(lambda seen: (200, {}, {"data": []}))
    with pytest.raises(EmbeddingError, match="returned 0 vectors for 1 texts"):
        await _embedder(short.url).embed(["a"])


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"model": "m"}, "base_url must be an http(s) URL"),
        ({"base_url": "http://127.0.0.1:1", "model": ""}, "model must name"),
        (
            {"base_url": "http://127.0.0.1:1", "model": "m", "api_key": "x"},
            "unknown key(s) api_key",
        ),
        ({"base_url": "http://127.0.0.1:1", "model": "m", "batch_size": 0}, "positive integer"),
    ],
)
def test_config_errors(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        EmbeddingsConfig.from_mapping(raw)
    assert says in str(e.value)
