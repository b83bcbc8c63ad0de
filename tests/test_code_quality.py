"""ruff (lint and format) and mypy (strict) over the package, as part of the suite: the one check
command STYLE.md asks for, so CI holds the code to it on every change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)


# ruff and mypy are pinned in the test extra, like pytest itself: without them these fail (with
# "No module named ...") rather than skip, so a CI install that lost them cannot pass silently


def test_ruff_finds_nothing_to_fix() -> None:
    lint = _run(sys.executable, "-m", "ruff", "check", "assistant_kit", "tests", "bench")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--check", "assistant_kit", "tests", "bench")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict_passes_on_the_package() -> None:
    done = _run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout + done.stderr


def test_test_files_have_unique_basenames_outside_packages() -> None:
    # test folders without __init__.py import their files by basename: two alike would clash
    seen: dict[str, Path] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        if (path.parent / "__init__.py").exists():
            continue
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path
