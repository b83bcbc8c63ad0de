"""The interface of the built-in tools the server runs itself (code_interpreter, text_to_image,
quark_search, plugins).

The engine shows each enabled built-in tool to the model as a function (``definition()``); when the
model calls it, the engine runs ``call()`` inside the run loop and records a ``tool_calls`` step
holding the neutral result, which each wire dialect renders its own way. A tool never fails a
run: errors come back as a ``ToolOutput`` with ``is_error=True`` and a message the model can read.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file the server keeps (e.g. a generated image), addressable by id."""

    id: str
    filename: str
    mime_type: str
    size: int


#: Saves bytes as a server file and returns its record: ``await save(data, filename, mime_type)``.
SaveFile = Callable[[bytes, str, str], Awaitable[StoredFile]]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the call it serves."""

    thread_id: str
    run_id: str
    save_file: SaveFile
    #: The assistant's tool entry (e.g. DashScope plugin ``auth``), as stored.
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """The result of one built-in tool call.

    ``output`` is the text the model sees next. ``logs`` and ``images`` (stored files) are what a
    dialect shows besides it (e.g. OpenAI's ``code_interpreter.outputs``); ``urls`` are image URLs
    a client can show.
    """

    output: str
    is_error: bool = False
    logs: str = ""
    images: tuple[StoredFile, ...] = ()
    urls: tuple[str, ...] = ()
    #: What a search found (``file_search``): ``{"file_id", "filename", "score", "text"}``
    #: each, the file id neutral.
    results: tuple[Mapping[str, Any], ...] = ()


class BuiltinTool(abc.ABC):
    """A tool the server runs itself."""

    #: The canonical tool type, e.g. ``code_interpreter``; ``aliases`` lists other accepted names.
    type: str = ""
    aliases: tuple[str, ...] = ()

    @abc.abstractmethod
    def definition(self) -> Mapping[str, Any]:
        """The function the model sees: ``{"name", "description", "parameters"}``."""

    @abc.abstractmethod
    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        """Run the tool; never raise for a failure the model should hear about."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop workers and release resources."""
