"""The sandbox keeps the interpreter visible wherever it is installed: a virtualenv under /tmp
(which the sandbox replaces with a private tmpfs) or under a folder other users may not enter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant_kit.server.tools.sandbox_launch import probe_isolation

REPO = Path(__file__).resolve().parents[3]

_CELL = """
import asyncio
from assistant_kit.server.tools.sandbox import LocalSandbox, SandboxLimits

async def main() -> None:
    sandbox = LocalSandbox(SandboxLimits(timeout_s=30, cpu_s=10))
    try:
        result = await sandbox.execute("s", "import sys; print(6 * 7, sys.prefix)")
        print(result.error or result.logs)
    finally:
        await sandbox.aclose()

asyncio.run(main())
"""


def test_a_virtualenv_under_tmp_still_runs_cells(tmp_path: Path) -> None:
    if not probe_isolation().namespaces:
        pytest.skip("this machine gives the sandbox no namespaces, so /tmp is not replaced")
    assert str(tmp_path).startswith("/tmp/"), "pytest's tmp_path is where the case arises"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    # the new virtualenv sees this one's packages and the repo, as an installed project would
    outer = [p for p in sys.path if p.endswith("site-packages")]
    (site / "outer.pth").write_text("\n".join([*outer, str(REPO)]) + "\n", encoding="utf-8")
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _CELL],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", str(venv)]


@pytest.mark.anyio
async def test_stopping_a_worker_never_reaps_behind_asyncios_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Popen.send_signal (behind asyncio's Process.kill) polls first, which reaps a leader the
    # process-group kill just ended; asyncio's child watcher then logs an "Unknown child process"
    # on stderr. Stopping must signal with os.kill/os.killpg only.
    import subprocess as subprocess_module

    from assistant_kit.server.tools.sandbox import LocalSandbox, SandboxLimits

    signalled: list[int] = []
    real = subprocess_module.Popen.send_signal

    def spy(self: subprocess_module.Popen[bytes], sig: int) -> None:
        signalled.append(sig)
        real(self, sig)

    monkeypatch.setattr(subprocess_module.Popen, "send_signal", spy)
    sandbox = LocalSandbox(SandboxLimits(timeout_s=30, cpu_s=10))
    try:
        assert (await sandbox.execute("s", "x = 1")).error is None
        await sandbox.reset("s")  # kills the worker's process group
        assert (await sandbox.execute("t", "x = 2")).error is None
    finally:
        await sandbox.aclose()
    assert signalled == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
