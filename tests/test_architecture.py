"""The layers of ARCHITECTURE.md hold: `lint-imports` passes on the package, and fails, naming the
contract, when a module imports the wrong way (tried on a copy with one import injected)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under ``root`` (with its pyproject.toml), no cache."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "named"),
    [
        pytest.param(
            "api/turn.py",
            "import assistant_kit.testing.runner",
            "the kit's layers point down",
            "assistant_kit.api.turn -> assistant_kit.testing.runner",
            id="api-imports-testing",
        ),
        pytest.param(
            "catalog.py",
            "import assistant_kit.spec.model",
            "the kit's layers point down",
            "assistant_kit.catalog -> assistant_kit.spec.model",
            id="ground-floor-imports-spec",
        ),
        pytest.param(
            "server/__init__.py",
            "import assistant_kit.sync.diff",
            "the server imports nothing of the kit but the ground floor",
            "assistant_kit.server -> assistant_kit.sync.diff",
            id="server-imports-sync",
        ),
        pytest.param(
            "testing/records.py",
            "import assistant_kit.server",
            "only connect and cli reach the server",
            "assistant_kit.testing.records -> assistant_kit.server",
            id="testing-imports-server",
        ),
        pytest.param(
            "server/tools/base.py",
            "import assistant_kit.server.app",
            "no import cycles inside the server",
            ".tools -> .app",
            id="server-cycle",
        ),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str, named: str
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "assistant_kit",
        copy / "assistant_kit",
        ignore=shutil.ignore_patterns("__pycache__", "schemas"),
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "assistant_kit" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")

    result = lint_imports(copy)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract} BROKEN" in result.stdout
    assert named in result.stdout  # the report names the import to remove
