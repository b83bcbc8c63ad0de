"""Dense vectors from any OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

Configured in kit.yaml (optional; without it retrieval is BM25 alone)::

    server:
      embeddings:
        base_url: http://127.0.0.1:8080/v1     # llama.cpp server, vLLM, Ollama, OpenAI, ...
        model: nomic-embed-text
        api_key_env: EMBEDDINGS_API_KEY         # the key is read from this variable, never stored
        batch_size: 64

``Embedder.embed(texts)`` returns one vector per text, in order, or raises ``EmbeddingError``
with a message that names the endpoint (never the key).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from assistant_kit.errors import ConfigError

_KEYS = {"base_url", "model", "api_key_env", "batch_size", "timeout"}


class EmbeddingError(Exception):
    """The embeddings endpoint failed or answered something that is not embeddings."""


@dataclass(frozen=True, slots=True)
class EmbeddingsConfig:
    base_url: str
    model: str
    api_key_env: str | None = None
    batch_size: int = 64
    timeout: float = 60.0

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any], where: str = "server.embeddings"
    ) -> EmbeddingsConfig:
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        base_url, model = raw.get("base_url"), raw.get("model")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url must be an http(s) URL")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}.model must name the embeddings model")
        key_env = raw.get("api_key_env")
        if key_env is not None and not isinstance(key_env, str):
            raise ConfigError(f"{where}.api_key_env must be the name of an environment variable")
        batch = raw.get("batch_size", 64)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ConfigError(f"{where}.batch_size must be a positive integer")
        timeout = raw.get("timeout", 60.0)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"{where}.timeout must be a positive number of seconds")
        return cls(base_url.rstrip("/"), model, key_env, batch, float(timeout))


class Embedder:
    """Calls the configured endpoint, ``batch_size`` texts per request."""

    def __init__(self, config: EmbeddingsConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client

    @property
    def model(self) -> str:
        return self.config.model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        step = self.config.batch_size
        for first in range(0, len(texts), step):
            vectors.extend(await self._batch(list(texts[first : first + step])))
        return vectors

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        url = f"{self.config.base_url}/embeddings"
        headers = {}
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise EmbeddingError(
                    f"embeddings: environment variable {self.config.api_key_env} is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": self.config.model, "input": texts}
        try:
            if self._client is not None:
                response = await self._client.post(url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=self.config.timeout) as client:
                    response = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as e:
            raise EmbeddingError(f"embeddings: {url} could not be reached ({e})") from None
        if response.status_code != 200:
            raise EmbeddingError(
                f"embeddings: {url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda d: d["index"])
            vectors = [[float(x) for x in d["embedding"]] for d in ordered]
        except (ValueError, KeyError, TypeError) as e:
            raise EmbeddingError(f"embeddings: {url} answered no embeddings list ({e})") from None
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"embeddings: {url} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        return vectors
