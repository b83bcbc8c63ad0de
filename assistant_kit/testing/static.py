"""What `kit validate` can know about a project's tests without running them.

The spec layer checks each file on its own; these checks need the project around it:

* a ``judge:`` check needs a judge model, on the check or in kit.yaml ``test.judge``, and a judge
  target kit.yaml defines;
* a ``python: module:function`` check must import (from the spec's folder or the project root, as
  ``kit test`` imports it) and name a callable.

Each problem is a ``SpecIssue`` at the check's line::

    issues = static_test_issues(project)       # [] when every test could run
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assistant_kit.errors import SpecIssue
from assistant_kit.spec.model import AssistantSpec, Expectation, TestCase
from assistant_kit.spec.project import Project
from assistant_kit.testing.judge import load_callable

__all__ = ["static_test_issues"]


def static_test_issues(project: Project) -> list[SpecIssue]:
    """Every judge and python check of ``project`` that could not run, in file order."""
    judge = project.test.get("judge") or {}
    issues: list[SpecIssue] = []
    for spec in project.specs:
        for case in spec.tests:
            if case.skip:
                continue  # it never runs: it needs nothing
            for turn in case.turns:
                for check in turn.expect:
                    issues.extend(_issues(project, spec, case, check, judge))
    return issues


def _issues(
    project: Project, spec: AssistantSpec, case: TestCase, check: Expectation, judge: object
) -> Iterator[SpecIssue]:
    defaults = judge if isinstance(judge, dict) else {}
    if check.kind == "judge":
        value = check.value if isinstance(check.value, dict) else {}
        if not (value.get("model") or defaults.get("model")):
            yield _at(
                case,
                check,
                "judge: no judge model: set kit.yaml `test: {judge: {model: ...}}` or `model:` "
                "on the check",
            )
        target = value.get("target") or defaults.get("target")
        if isinstance(target, str) and target not in project.targets:
            known = ", ".join(sorted(project.targets))
            yield _at(case, check, f"judge: target `{target}` is not defined in kit.yaml ({known})")
    elif check.kind == "python" and isinstance(check.value, str) and ":" in check.value:
        spec_dir = Path(case.file or spec.file or ".").resolve().parent
        try:
            load_callable(check.value, (str(spec_dir), str(project.root)))
        except Exception as exc:  # whatever importing the user's module raised
            yield _at(
                case, check, f"python: cannot import {check.value}: {type(exc).__name__}: {exc}"
            )


def _at(case: TestCase, check: Expectation, message: str) -> SpecIssue:
    """An issue at the check's key (``judge:``, ``python:``) on its line."""
    col = 1
    try:
        lines = Path(case.file).read_text(encoding="utf-8").splitlines()
        col = lines[check.line - 1].find(f"{check.kind}:") + 1 or 1
    except (OSError, IndexError, UnicodeDecodeError):
        pass
    return SpecIssue(case.file, check.line, col, message)
