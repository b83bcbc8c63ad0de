"""The ``code_interpreter`` built-in tool: Python run in a sandbox, with state kept per thread.

The code runs in an ``Executor`` (``LocalSandbox`` by default; see ``sandbox.py`` for what it
contains and what it does not). Matplotlib figures left open by a cell come back as PNG files saved
through ``ToolContext.save_file``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant_kit.errors import ToolError
from assistant_kit.server.tools.base import BuiltinTool, StoredFile, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import guarded, string_argument
from assistant_kit.server.tools.sandbox import Executor, LocalSandbox, SandboxLimits

_DESCRIPTION = (
    "Run Python code in a stateful sandbox (variables persist between calls in this thread). "
    "Print what you want to see; the value of a final expression is shown. Matplotlib figures "
    "are returned as images. There is no network access."
)


class CodeInterpreterTool(BuiltinTool):
    """Runs the model's Python in ``executor``, one interpreter per thread::

    tool = CodeInterpreterTool(LocalSandbox(SandboxLimits(timeout_s=10)))
    result = await tool.call({"code": "2 + 2"}, context)   # result.output == "4"
    """

    type = "code_interpreter"

    def __init__(self, executor: Executor | None = None, *, timeout_s: float | None = None) -> None:
        self.executor = executor or LocalSandbox()
        limits = getattr(self.executor, "limits", None)
        default = 2 * limits.timeout_s + 30 if isinstance(limits, SandboxLimits) else 120.0
        #: The tool's own deadline: waiting for room under ``max_workers`` (at most the sandbox's
        #: wall clock), the wall clock itself, and time to start a worker.
        self.timeout_s = timeout_s if timeout_s is not None else default

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": "code_interpreter",
            "description": _DESCRIPTION,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python source to run"}},
                "required": ["code"],
            },
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return await guarded(self.type, self._run(arguments, context), timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        await self.executor.aclose()

    async def forget_thread(self, thread_id: str) -> None:
        """Stop the thread's interpreter (e.g. when the thread is deleted)."""
        await self.executor.reset(thread_id)

    async def _run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        code = string_argument(arguments, "code", "input")
        session = context.thread_id or context.run_id
        if not session:
            raise ToolError("no thread to run the code in")
        result = await self.executor.execute(session, code)
        images: list[StoredFile] = []
        for number, data in enumerate(result.images, start=1):
            images.append(await context.save_file(data, f"figure-{number}.png", "image/png"))
        parts = [result.logs.rstrip("\n")] if result.logs.strip() else []
        if result.truncated:
            parts.append("[output truncated]")
        if result.error:
            parts.append(result.error.rstrip("\n"))
        parts += [f"[image: {image.id}]" for image in images]
        if not parts:
            parts.append("(no output)")
        return ToolOutput(
            output="\n".join(parts),
            is_error=result.error is not None,
            logs="\n".join(p for p in parts if not p.startswith("[image: ")),
            images=tuple(images),
        )
