"""The local sandbox keeps state per thread and contains what a cell does, while serving on.

Each escape test runs the escape, checks the tool output says what happened, then checks that the
same thread and another thread still get answers. Limits are small so the suite stays fast.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sandbox_cells import LIMITS, in_thread, needs_namespaces

from assistant_kit.server.tools.base import ToolContext
from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.sandbox import LocalSandbox, SandboxLimits
from assistant_kit.server.tools.sandbox_launch import Isolation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tool() -> AsyncIterator[CodeInterpreterTool]:
    tool = CodeInterpreterTool(LocalSandbox(LIMITS))
    yield tool
    await tool.aclose()


async def assert_still_serving(tool: CodeInterpreterTool, context: ToolContext) -> None:
    again = await tool.call({"code": "print(6 * 7)"}, context)
    other = await tool.call({"code": "print('other thread')"}, in_thread(context, "thread_other"))
    assert (again.output, again.is_error) == ("42", False)
    assert (other.output, other.is_error) == ("other thread", False)


async def test_variables_survive_between_calls_of_one_thread(tool, context):
    first = await tool.call({"code": "total = 40\ndef bump(n):\n    return n + 2"}, context)
    second = await tool.call({"code": "bump(total)"}, context)
    assert (first.output, first.is_error) == ("(no output)", False)
    assert (second.output, second.is_error) == ("42", False)


async def test_threads_do_not_share_variables(tool, context):
    await tool.call({"code": "secret_plan = 1"}, context)
    other = await tool.call({"code": "secret_plan"}, in_thread(context, "thread_b"))
    assert other.is_error
    assert "NameError: name 'secret_plan' is not defined" in other.output


async def test_an_exception_shows_only_the_cells_traceback(tool, context):
    result = await tool.call({"code": "x = 1\n1 / 0"}, context)
    assert result.is_error
    assert result.output == (
        "Traceback (most recent call last):\n"
        '  File "<cell>", line 2, in <module>\n'
        "ZeroDivisionError: division by zero"
    )
    await assert_still_serving(tool, context)


async def test_environment_secrets_do_not_reach_the_code(tool, context, monkeypatch):
    monkeypatch.setenv("KIT_TEST_SECRET", "sentinel-5ecret-value")
    code = "import os\nprint(sorted(os.environ))\nprint('KIT_TEST_SECRET' in os.environ)"
    result = await tool.call({"code": code}, context)
    assert "sentinel-5ecret-value" not in result.output
    assert result.output.splitlines()[-1] == "False"
    await assert_still_serving(tool, context)


@needs_namespaces
async def test_the_servers_environment_cannot_be_read_through_proc(tool, context, monkeypatch):
    monkeypatch.setenv("KIT_TEST_SECRET", "sentinel-5ecret-value")
    code = (
        "try:\n"
        f"    print(open('/proc/{os.getpid()}/environ', 'rb').read())\n"
        "except OSError as exc:\n"
        "    print('refused:', type(exc).__name__)\n"
    )
    result = await tool.call({"code": code}, context)
    assert "sentinel-5ecret-value" not in result.output
    assert result.output.startswith("refused: ")
    await assert_still_serving(tool, context)


@needs_namespaces
async def test_the_network_is_cut(tool, context):
    # Inside an empty network namespace nothing can leave the machine, so trying is harmless.
    code = (
        "import socket\n"
        "print(socket.if_nameindex())\n"
        "socket.create_connection(('192.0.2.1', 80), timeout=0.5)\n"
    )
    result = await tool.call({"code": code}, context)
    assert result.is_error
    assert result.output.startswith("[(1, 'lo')]\n")
    assert "OSError: [Errno 101] Network is unreachable" in result.output
    await assert_still_serving(tool, context)


@needs_namespaces
async def test_a_fork_bomb_stops_at_the_process_limit(tool, context):
    result = await tool.call({"code": "import os\nwhile True:\n    os.fork()"}, context)
    assert result.is_error
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in result.output
    await assert_still_serving(tool, context)


@needs_namespaces
async def test_processes_started_by_a_cell_do_not_outlive_it(tool, context):
    code = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "print('started')\n"
    )
    started = await tool.call({"code": code}, context)
    left = await tool.call(
        {"code": "import os\nsorted({int(p) for p in os.listdir('/proc') if p.isdigit()})"},
        context,
    )
    here = await tool.call({"code": "os.getpid()"}, context)
    assert started.output == "started"
    # the supervisor (init of its pid namespace) and the interpreter, nothing else
    assert left.output == f"[1, {here.output}]"


async def test_a_memory_bomb_fails_with_memory_error(tool, context):
    result = await tool.call({"code": "hog = bytearray(2 * 1024**3)"}, context)
    assert result.is_error
    assert result.output.endswith("MemoryError")
    await assert_still_serving(tool, context)


async def test_a_growing_memory_bomb_is_stopped(tool, context):
    code = "hog = []\nwhile True:\n    hog.append(bytearray(8 * 1024**2))"
    result = await tool.call({"code": code}, context)
    assert result.is_error
    assert "MemoryError" in result.output or "restarted" in result.output
    await tool.call({"code": "hog = None"}, context)
    await assert_still_serving(tool, context)


async def test_writing_10_gb_stops_at_the_file_size_limit(tool, context):
    code = (
        "chunk = bytes(1024**2)\n"
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(10 * 1024):\n"
        "        f.write(chunk)\n"
    )
    result = await tool.call({"code": code}, context)
    assert result.is_error
    assert "OSError: [Errno 27] File too large" in result.output
    await assert_still_serving(tool, context)


@needs_namespaces
async def test_many_files_stop_at_the_disk_quota(tool, context):
    code = (
        "chunk = bytes(1024**2)\n"
        "for n in range(10 * 1024):\n"
        "    with open(f'part{n}.bin', 'wb') as f:\n"
        "        f.write(chunk * 3)\n"
    )
    result = await tool.call({"code": code}, context)
    assert result.is_error
    assert "OSError: [Errno 28] No space left on device" in result.output
    await assert_still_serving(tool, context)


async def test_an_infinite_loop_hits_the_cpu_limit_and_keeps_state(context):
    # A generous wall clock, so that the CPU limit ends the loop even on a loaded machine.
    tool = CodeInterpreterTool(LocalSandbox(replace(LIMITS, timeout_s=30)))
    try:
        await tool.call({"code": "kept = 'still here'"}, context)
        result = await tool.call({"code": "while True:\n    pass"}, context)
        after = await tool.call({"code": "kept"}, context)
        assert result.is_error
        assert "CpuTimeExceeded: CPU time limit exceeded" in result.output
        assert after.output == "'still here'"
        await assert_still_serving(tool, context)
    finally:
        await tool.aclose()


async def test_a_cell_past_the_wall_clock_is_killed_and_the_worker_restarted(context):
    tool = CodeInterpreterTool(LocalSandbox(replace(LIMITS, timeout_s=1)))
    try:
        await tool.call({"code": "kept = 1"}, context)
        result = await tool.call({"code": "import time\ntime.sleep(60)"}, context)
        after = await tool.call({"code": "kept"}, context)
        assert result.is_error
        assert result.output == (
            "TimeoutError: the code ran longer than 1 s; "
            "the interpreter was restarted and its variables are lost"
        )
        assert "NameError" in after.output
        await assert_still_serving(tool, context)
    finally:
        await tool.aclose()


async def test_output_is_capped(tool, context):
    result = await tool.call({"code": "print('x' * 100_000)"}, context)
    assert result.output == "x" * 4096 + "\n[output truncated]"
    await assert_still_serving(tool, context)


async def test_output_of_child_processes_is_captured(tool, context):
    result = await tool.call({"code": "import os\nos.system('echo from a shell')"}, context)
    assert result.output.splitlines() == ["from a shell", "0"]


async def test_an_idle_worker_is_stopped(context):
    import anyio

    sandbox = LocalSandbox(SandboxLimits(timeout_s=4, idle_timeout_s=0.2))
    tool = CodeInterpreterTool(sandbox)
    try:
        await tool.call({"code": "kept = 1"}, context)
        await anyio.sleep(0.8)
        after = await tool.call({"code": "kept"}, context)
    finally:
        await tool.aclose()
    assert "NameError: name 'kept' is not defined" in after.output


async def test_forgetting_a_thread_stops_its_interpreter(tool, context):
    await tool.call({"code": "kept = 1"}, context)
    await tool.forget_thread("thread_1")
    after = await tool.call({"code": "kept"}, context)
    assert "NameError: name 'kept' is not defined" in after.output


async def test_past_max_workers_the_least_recently_used_thread_is_stopped(context):
    tool = CodeInterpreterTool(LocalSandbox(replace(LIMITS, max_workers=2)))
    try:
        for thread in ("a", "b", "c"):
            await tool.call({"code": f"name = {thread!r}"}, in_thread(context, thread))
        oldest = await tool.call({"code": "name"}, in_thread(context, "a"))
        newest = await tool.call({"code": "name"}, in_thread(context, "c"))
    finally:
        await tool.aclose()
    assert "NameError" in oldest.output
    assert newest.output == "'c'"


async def test_a_worker_that_cannot_start_is_an_error_output(context):
    sandbox = LocalSandbox(LIMITS)
    sandbox._isolation = Isolation(namespaces=True, separate_uid=False, unshare="/bin/false")
    tool = CodeInterpreterTool(sandbox)
    result = await tool.call({"code": "1"}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output.startswith(
        "code_interpreter failed: RuntimeError: the code interpreter's worker failed to start"
    )


async def test_calls_on_one_thread_run_one_after_another(tool, context):
    import anyio

    results = {}

    async def run(name: str, code: str) -> None:
        results[name] = await tool.call({"code": code}, context)

    await tool.call({"code": "log = []"}, context)
    async with anyio.create_task_group() as group:
        group.start_soon(run, "slow", "import time\ntime.sleep(0.3)\nlog.append('slow')")
        await anyio.sleep(0.1)
        group.start_soon(run, "fast", "log.append('fast')\nlog")
    assert results["slow"].output == "(no output)"
    assert results["fast"].output == "['slow', 'fast']"


async def test_a_call_waiting_behind_a_timeout_gets_a_fresh_interpreter(context):
    import anyio

    tool = CodeInterpreterTool(LocalSandbox(replace(LIMITS, timeout_s=1)))
    results = {}

    async def run(name: str, code: str) -> None:
        results[name] = await tool.call({"code": code}, context)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run, "stuck", "import time\ntime.sleep(60)")
            await anyio.sleep(0.2)
            group.start_soon(run, "next", "print('fresh')")
    finally:
        await tool.aclose()
    assert results["stuck"].output.startswith("TimeoutError")
    assert (results["next"].output, results["next"].is_error) == ("fresh", False)
