"""code_interpreter: figures as stored files, pluggable executors (step shapes: test_dialects)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.sandbox import Execution, Executor, LocalSandbox, SandboxLimits

pytestmark = pytest.mark.anyio

PLOT = (
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3], [1, 4, 9])\n"
    "plt.title('squares')\n"
    "print('plotted')\n"
)


@pytest.fixture
async def tool() -> AsyncIterator[CodeInterpreterTool]:
    tool = CodeInterpreterTool(LocalSandbox(SandboxLimits(timeout_s=20, cpu_s=10)))
    yield tool
    await tool.aclose()


async def test_a_matplotlib_figure_comes_back_as_a_stored_png(tool, context, files):
    result = await tool.call({"code": PLOT}, context)
    assert not result.is_error
    assert [f.filename for f in result.images] == ["figure-1.png"]
    image = result.images[0]
    assert image.mime_type == "image/png"
    assert files.data[image.id].startswith(b"\x89PNG\r\n\x1a\n")
    assert result.output == f"plotted\n[image: {image.id}]"
    assert result.logs == "plotted"


async def test_figures_are_returned_once(tool, context):
    await tool.call({"code": PLOT}, context)
    again = await tool.call({"code": "print('no new figure')"}, context)
    assert again.images == ()


async def test_missing_code_is_an_error_the_model_sees(tool, context):
    result = await tool.call({"language": "python"}, context)
    assert result.is_error
    assert (
        result.output == "code_interpreter failed: missing the 'code' argument (a non-empty string)"
    )


class EchoExecutor(Executor):
    """An external executor stand-in: the interface is what is under test here."""

    isolation = "remote"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.closed = False

    async def execute(self, session: str, code: str) -> Execution:
        self.calls.append((session, code))
        return Execution(logs=f"ran {len(code)} chars\n", images=(b"\x89PNG fake",))

    async def reset(self, session: str) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


async def test_an_external_executor_replaces_the_local_sandbox(context, files):
    executor = EchoExecutor()
    tool = CodeInterpreterTool(executor)
    result = await tool.call({"code": "x = 1"}, context)
    await tool.aclose()
    assert executor.calls == [("thread_1", "x = 1")]
    assert result.output == "ran 5 chars\n[image: file-1]"
    assert files.data["file-1"] == b"\x89PNG fake"
    assert executor.closed


class BrokenExecutor(EchoExecutor):
    async def execute(self, session: str, code: str) -> Execution:
        raise ConnectionError("executor unreachable")


async def test_an_executor_failure_becomes_an_error_output(context):
    result = await CodeInterpreterTool(BrokenExecutor()).call({"code": "1"}, context)
    assert result.is_error
    assert result.output == "code_interpreter failed: ConnectionError: executor unreachable"


async def test_figures_past_the_image_limit_are_left_out_with_a_note(context):
    tool = CodeInterpreterTool(LocalSandbox(SandboxLimits(timeout_s=20, cpu_s=10, max_images=1)))
    code = "import matplotlib.pyplot as plt\nfor n in range(3):\n    plt.figure()\n"
    result = await tool.call({"code": code}, context)
    await tool.aclose()
    assert len(result.images) == 1
    assert result.output.startswith("[2 figure(s) left out: too many or too large]\n[image: ")
