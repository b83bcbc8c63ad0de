"""The README's annotated spec example is a valid spec."""

from __future__ import annotations

import re
from pathlib import Path

from assistant_kit.spec.project import load_project

from .conftest import ProjectDir

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def test_the_annotated_example_in_the_readme_is_valid(project_dir: ProjectDir) -> None:
    section = README.read_text().split("## Spec format", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    project_dir.kit("vars: {company: Acme}\n")
    project_dir.partial("tone.md.j2", "Sign off as {{ signature }}.")
    project_dir.spec("order-desk.yaml", example.group(1))
    (spec,) = load_project(environ={}).specs
    assert spec.name == "order-desk"
    assert spec.instructions is not None
    assert spec.instructions.endswith("Sign off as The Order Desk.")
    assert [t.key for t in spec.tools] == [
        "quark_search",
        "text_to_image",
        "code_interpreter",
        "get_order_status",
        "weather",
    ]
    assert (spec.tests[0].repeat, spec.tests[0].min_pass) == (3, 2)
