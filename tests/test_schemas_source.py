"""The JSON Schemas have one source, assistant_kit/schemas: the repo's schemas/ (what specs'
`$schema` comments point editors at) is a link to it, and the wheel ships every file in it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ROOT / "assistant_kit" / "schemas"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_the_repo_schemas_folder_is_a_link_to_the_packaged_one() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist ships only the package's schemas)")
    mode, blob = git("ls-files", "-s", "schemas").split()[:2]
    assert mode == "120000", "schemas/ must stay a symlink, not a second copy"
    assert git("cat-file", "-p", blob) == "assistant_kit/schemas"
    # a checkout made without symlink support would hold a text file here instead
    assert (ROOT / "schemas").resolve() == PACKAGED.resolve()


def test_the_wheel_ships_every_schema() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["assistant_kit"]
    shipped = {path for pattern in patterns for path in (ROOT / "assistant_kit").glob(pattern)}
    files = set(PACKAGED.rglob("*.json"))
    assert files and files <= shipped, sorted(map(str, files - shipped))
