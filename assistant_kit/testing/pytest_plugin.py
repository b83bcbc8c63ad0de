"""pytest plugin (entry point ``pytest11``): the conversation tests declared in specs as items.

``pytest assistants/`` collects every assistant spec that declares ``tests:`` and yields one item
per test, run by the same runner as ``kit test``; so ``-k``, ``-x``, ``--junitxml`` and xdist's
``-n`` work, and a failure shows the report ``kit test`` prints, transcript included.

A YAML file is claimed only when asked: it lies in a spec folder of the nearest ``kit.yaml``
project (``specs:``, default ``assistants``), or ``--kit`` / ini ``kit_collect = always`` is set;
``kit_collect = never`` turns collection off. Other projects' YAML files are never touched.

Options: ``--kit``, ``--kit-target T``, ``--kit-ephemeral``, ``--kit-record DIR``,
``--kit-replay DIR``. The plugin imports the kit only when it claims a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from assistant_kit.spec.model import TestCase
    from assistant_kit.spec.project import Project
    from assistant_kit.testing.records import SuiteResult

_YAML = (".yaml", ".yml")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kit", "assistant-kit conversation tests")
    group.addoption(
        "--kit",
        action="store_true",
        default=False,
        help="Collect the tests: of every assistant spec YAML file, wherever it lies.",
    )
    group.addoption("--kit-target", default=None, help="kit.yaml target to test against.")
    group.addoption(
        "--kit-ephemeral",
        action="store_true",
        default=False,
        help="Test temporary assistants from the current specs instead of the applied ones.",
    )
    group.addoption("--kit-record", default=None, metavar="DIR", help="Record cassettes in DIR.")
    group.addoption("--kit-replay", default=None, metavar="DIR", help="Replay cassettes from DIR.")
    parser.addini(
        "kit_collect",
        "auto (spec folders of the kit.yaml project), always, or never",
        default="auto",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in _YAML or file_path.name in ("kit.yaml", "kit.yml"):
        return None
    config = parent.config
    mode = str(config.getini("kit_collect") or "auto").strip().lower()
    if mode == "never":
        return None
    anywhere = bool(config.getoption("--kit")) or mode == "always"
    if not anywhere and not _in_spec_folder(file_path):
        return None
    if not _declares_tests(file_path):
        return None
    return SpecFile.from_parent(parent, path=file_path)


def _in_spec_folder(path: Path) -> bool:
    """True when ``path`` lies in a spec folder named by the nearest kit.yaml above it."""
    from assistant_kit.spec.project import DEFAULT_SPECS, find_kit_file

    kit_file = find_kit_file(path.parent)
    if kit_file is None:
        return False
    try:
        import yaml

        from assistant_kit.spec.load import MAX_FILE_BYTES, read_regular_file

        raw = read_regular_file(kit_file, within=[kit_file.parent], limit=MAX_FILE_BYTES)
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return False
    specs = data.get("specs", DEFAULT_SPECS) if isinstance(data, dict) else DEFAULT_SPECS
    folders = [specs] if isinstance(specs, str) else list(specs or [])
    root = kit_file.parent.resolve()
    here = path.resolve()
    return any(_under(here, (root / str(f)).resolve()) for f in folders)


def _under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _declares_tests(path: Path) -> bool:
    """An assistant spec (a mapping with ``name`` and ``model``) with a non-empty ``tests:``."""
    from assistant_kit.spec.load import MAX_FILE_BYTES, FileRefused, read_regular_file

    try:  # never a FIFO (it would hang) or a device such as /dev/zero (it never ends)
        text = read_regular_file(path, within=None, limit=MAX_FILE_BYTES).decode("utf-8")
    except FileRefused:
        return True  # the spec layer reports it, rather than it being skipped in silence
    except (OSError, UnicodeDecodeError):
        return False
    if "tests:" not in text:
        return False
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return True  # a broken spec is reported by the spec layer, not silently skipped
    return (
        isinstance(data, dict)
        and "name" in data
        and "model" in data
        and isinstance(data.get("tests"), list)
        and bool(data["tests"])
    )


class KitTestFailed(Exception):
    """A conversation test failed or errored; carries the suite to report."""

    def __init__(self, suite: SuiteResult) -> None:
        super().__init__(suite.tests[0].test_id if suite.tests else "kit test")
        self.suite = suite


class SpecFile(pytest.File):
    """An assistant spec: one item per declared test."""

    def collect(self) -> Iterator[pytest.Item]:
        from assistant_kit.errors import KitError, SpecError
        from assistant_kit.testing.runner import collect, load_test_project

        try:
            project = load_test_project([self.path], self.config.getoption("--kit-target"))
        except SpecError as exc:
            raise self.CollectError("\n".join(str(i) for i in exc.issues)) from None
        except KitError as exc:
            raise self.CollectError(str(exc)) from None
        # the same choice as `kit test` (kit.yaml test.tags / test.exclude_tags apply)
        for test in collect(project):
            item = ConversationItem.from_parent(
                self, name=test.case.name, project=project, spec_name=test.spec.name, case=test.case
            )
            item.extra_keyword_matches.update(test.case.tags)
            item.extra_keyword_matches.add(test.spec.name)
            yield item


class ConversationItem(pytest.Item):
    """One conversation test, run by ``assistant_kit.testing.runner``."""

    def __init__(self, *, project: Project, spec_name: str, case: TestCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.spec_name = spec_name
        self.case = case

    @property
    def test_id(self) -> str:
        return f"{self.spec_name}::{self.case.name}"

    def runtest(self) -> None:
        from assistant_kit.errors import KitError
        from assistant_kit.testing.records import Verdict
        from assistant_kit.testing.runner import RunOptions, Selection, run_suite_sync

        record, replay = (
            self.config.getoption("--kit-record"),
            self.config.getoption("--kit-replay"),
        )
        options = RunOptions(
            ephemeral=bool(self.config.getoption("--kit-ephemeral")),
            record=Path(record) if record else None,
            replay=Path(replay) if replay else None,
        )
        try:
            suite = run_suite_sync(self.project, Selection(names=(self.test_id,)), options)
        except KitError as exc:  # the target or the configuration cannot be used
            pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)
        if not suite.tests:
            pytest.skip("not selected by kit.yaml's test settings")
        result = suite.tests[0]
        if result.verdict is Verdict.SKIP:
            pytest.skip(result.skip_reason or "skipped")
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            raise KitTestFailed(suite)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | Any:
        if isinstance(excinfo.value, KitTestFailed):
            from assistant_kit.testing.report import render_text
            from assistant_kit.testing.secrets import Scrubber, secret_env_names

            scrubber = Scrubber.from_env(secret_env_names(self.project.config))
            return render_text(excinfo.value.suite, scrubber=scrubber).rstrip("\n")
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return self.path, line, f"conversation: {self.case.name}"
