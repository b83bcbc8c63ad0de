"""What the sandbox tests share: the machine's isolation, small limits, and calls on a thread."""

from __future__ import annotations

import pytest

from assistant_kit.server.tools.base import ToolContext
from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.sandbox import SandboxLimits
from assistant_kit.server.tools.sandbox_launch import probe_isolation

ISOLATION = probe_isolation()
needs_namespaces = pytest.mark.skipif(
    not ISOLATION.namespaces,
    reason="unshare cannot create namespaces here: the sandbox is NOT isolated from the network "
    "or the host's files, and cannot contain a fork bomb on this machine",
)

#: Small limits, so that every escape ends within seconds.
LIMITS = SandboxLimits(
    timeout_s=4,
    cpu_s=1,
    memory_mb=256,
    max_processes=16,
    file_mb=4,
    disk_mb=16,
    max_output_bytes=4096,
    idle_timeout_s=60,
)


def in_thread(context: ToolContext, thread_id: str) -> ToolContext:
    return ToolContext(thread_id=thread_id, run_id="run_2", save_file=context.save_file)


async def run(tool: CodeInterpreterTool, context: ToolContext, code: str) -> str:
    """The tool's output for ``code`` on ``context``'s thread."""
    return (await tool.call({"code": code}, context)).output
