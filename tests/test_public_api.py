from __future__ import annotations

import subprocess
import sys

import pytest

import assistant_kit


def test_all_is_sorted() -> None:
    assert assistant_kit.__all__ == sorted(assistant_kit.__all__)


@pytest.mark.parametrize("name", assistant_kit.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(assistant_kit, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        assistant_kit.nope  # noqa: B018


def test_importing_the_package_stays_cheap() -> None:
    heavy = "('httpx', 'jinja2', 'jsonschema', 'starlette')"
    code = f"import sys, assistant_kit; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
