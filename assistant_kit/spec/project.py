"""The project: kit.yaml, its targets, and the rendered specs for one target.

``load_project()`` is the front door of the spec layer::

    project = load_project()                      # kit.yaml found upward from the cwd
    project = load_project(["assistants/art-maestro.yaml"], target="staging")
    for spec in project.specs: ...                # rendered AssistantSpec objects
    project.targets["staging"].base_url
    project.config["server"]["models"]            # plain mappings for the server and test layers

Without a kit.yaml the project is: specs in ``assistants/``, partials in ``assistants/partials``,
one ``local`` target. Problems in specs raise ``SpecError`` with every issue of every file, sorted;
problems in kit.yaml or the options (an unknown target, a missing folder) raise ``ConfigError``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant_kit.errors import ConfigError, SpecError, SpecIssue
from assistant_kit.spec.checks import suggest
from assistant_kit.spec.load import Document, display_path, find_spec_files, read_document
from assistant_kit.spec.model import DIALECTS, AssistantSpec, Dialect
from assistant_kit.spec.render import Renderer, merge_vars
from assistant_kit.spec.validate import check_assistant, check_kit

__all__ = [
    "DEFAULT_SPECS",
    "KIT_FILE",
    "Project",
    "Target",
    "find_kit_file",
    "load_project",
    "project_slug",
    "read_config",
]

#: Name of the project file.
KIT_FILE = "kit.yaml"
#: Spec folder when kit.yaml names none (or there is no kit.yaml).
DEFAULT_SPECS = "assistants"
#: The target every project has unless kit.yaml defines its own ``local``.
LOCAL_TARGET: Mapping[str, Any] = {"provider": "local"}


@dataclass(frozen=True, slots=True)
class Target:
    """A place assistants are synced to and tested against.

    ``provider`` is ``local`` (the embedded server), ``dashscope`` or ``openai``; ``dialect`` is
    the wire dialect to speak (``local`` with a ``base_url`` speaks ``openai`` unless kit.yaml says
    ``dialect: dashscope``). ``options`` is the target's whole kit.yaml mapping.
    """

    name: str
    provider: str
    dialect: Dialect
    base_url: str | None = None
    api_key_env: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # where a dialect name enters the client side: past here it is one of DIALECTS
        if self.dialect not in DIALECTS:
            raise ConfigError(
                f"target `{self.name}`: unknown dialect {self.dialect!r}; "
                f"use one of {', '.join(DIALECTS)}"
            )

    @property
    def embedded(self) -> bool:
        """True for the in-process embedded server (a ``local`` target with no ``base_url``)."""
        return self.provider == "local" and self.base_url is None

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key from the environment variable ``api_key_env`` names (None if unset).

        ``ConfigError`` when it holds what an HTTP header cannot carry (non-ASCII characters,
        line breaks or other control characters)."""
        if self.api_key_env is None:
            return None
        key = (os.environ if environ is None else environ).get(self.api_key_env)
        if key is not None and not (key.isascii() and key.isprintable()):
            raise ConfigError(
                f"target `{self.name}`: the API key in {self.api_key_env} holds non-ASCII or "
                "control characters, which an HTTP header cannot carry; check the variable"
            )
        return key

    @classmethod
    def from_config(cls, name: str, data: Mapping[str, Any]) -> Target:
        provider = data["provider"]
        dialect = data.get("dialect", "openai") if provider == "local" else provider
        return cls(
            name=name,
            provider=provider,
            dialect=dialect,
            base_url=data.get("base_url"),
            api_key_env=data.get("api_key_env"),
            vars=dict(data.get("vars") or {}),
            options=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Project:
    """kit.yaml (or its defaults) plus the specs rendered for ``target``."""

    root: Path
    config: Mapping[str, Any]
    targets: Mapping[str, Target]
    target: Target
    specs: tuple[AssistantSpec, ...] = ()
    config_file: Path | None = None
    partials: Path | None = None
    files: tuple[str, ...] = ()

    @property
    def server(self) -> Mapping[str, Any]:
        """kit.yaml's ``server`` section (``{}`` when absent)."""
        server: Mapping[str, Any] = self.config.get("server") or {}
        return server

    @property
    def project_id(self) -> str:
        """The project's identity on shared targets (the ``kit_project`` mark): kit.yaml
        ``project``, else the name of the project's folder as a slug."""
        declared = self.config.get("project")
        if isinstance(declared, str) and declared:
            return declared
        return project_slug(self.root.resolve().name)

    @property
    def test(self) -> Mapping[str, Any]:
        """kit.yaml's ``test`` section (``{}`` when absent)."""
        test: Mapping[str, Any] = self.config.get("test") or {}
        return test

    def spec(self, name: str) -> AssistantSpec:
        """The spec called ``name``; ``ConfigError`` (with a suggestion) if there is none."""
        for spec in self.specs:
            if spec.name == name:
                return spec
        names = [s.name for s in self.specs]
        hint = suggest(name, names) or (f"; assistants: {', '.join(names)}" if names else "")
        raise ConfigError(f"no assistant named `{name}`{hint}")


def project_slug(folder_name: str) -> str:
    """``"My Assistants"`` -> ``"my-assistants"``: a folder name as a project identity."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", folder_name.lower()).strip("-_")[:64].strip("-_")
    return slug or "project"


def find_kit_file(start: Path) -> Path | None:
    """kit.yaml in ``start`` or the nearest folder above it."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / KIT_FILE
        if candidate.is_file():
            return candidate
    return None


def load_project(
    paths: Iterable[str | os.PathLike[str]] = (),
    target: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    jobs: int = 1,
) -> Project:
    """Load kit.yaml and every spec, rendered for ``target`` (default: kit.yaml's default).

    ``paths`` narrows the specs to those files or folders; kit.yaml is looked for upward from the
    first of them (else from ``cwd``). ``environ`` replaces ``os.environ`` for ``{env: ...}``
    vars. ``jobs > 1`` checks large projects in that many forked processes (the CLI does; a
    library caller with threads should keep the default). Raises ``SpecError`` with all issues,
    sorted, or ``ConfigError``.
    """
    base = (cwd or Path.cwd()).resolve()
    chosen = [Path(p) if Path(p).is_absolute() else base / p for p in paths]
    for path in chosen:
        if not path.exists():
            raise ConfigError(f"no such file or folder: {display_path(path)}")
    kit_file = find_kit_file(chosen[0] if chosen else base)
    env = os.environ if environ is None else environ
    config, root = read_config(kit_file, base)

    spec_dirs = [root / folder for folder in config["specs"]]
    sources: list[Path] = []
    if chosen:
        for path in chosen:
            if path.is_dir() and kit_file is not None and path.resolve() == root:
                sources.extend(spec_dirs)
            else:
                sources.append(path)
    else:
        missing = [d for d in spec_dirs if not d.is_dir()]
        if missing:
            folder = display_path(missing[0])
            if kit_file is not None:
                raise ConfigError(
                    f"kit.yaml names the spec folder `{folder}`, which does not exist"
                )
            raise ConfigError(
                f"no kit.yaml and no `{folder}/` folder here; run `kit init` or pass spec paths"
            )
        sources = spec_dirs
    if config.get("partials"):
        partials: Path | None = root / config["partials"]
    elif kit_file is None and chosen:
        first = chosen[0] if chosen[0].is_dir() else chosen[0].parent
        partials = first / "partials"
    else:
        partials = spec_dirs[0] / "partials"
    if partials is not None and not partials.is_dir():
        partials = None

    targets = {name: Target.from_config(name, data) for name, data in config["targets"].items()}
    target_name = target or config["default_target"]
    if target_name not in targets:
        hint = suggest(target_name, targets) or f"; targets: {', '.join(sorted(targets))}"
        raise ConfigError(f"unknown target `{target_name}`{hint}")
    chosen_target = targets[target_name]
    for each in targets.values():
        each.api_key(env)  # a key no HTTP header can carry is a config error now, not a crash

    kit_vars, unset = _resolve_env(config.get("vars") or {}, env)
    target_vars, target_unset = _resolve_env(chosen_target.vars, env)
    unset = {k: v for k, v in unset.items() if k not in target_vars}
    unset.update(target_unset)
    layered = merge_vars(kit_vars, target_vars)

    files = find_spec_files(sources, exclude=[partials] if partials is not None else [])
    # Specs are read only from inside the project or the folders named on the command line
    # (the folder of a named file): a link to /etc/shadow is refused unread.
    within = [root, *(p if p.is_dir() else p.parent for p in chosen)]
    if kit_file is not None:  # `specs: .` keeps kit.yaml among the specs; it is checked above
        kit_path = kit_file.resolve()
        files = [f for f in files if f.resolve() != kit_path]
    renderer = Renderer(partials, unset_env=unset)
    issues: list[SpecIssue] = []
    specs: list[AssistantSpec] = []
    declared: dict[str, list[SpecIssue]] = {}
    for found, spec, name in _check_files(files, layered, renderer, jobs, within):
        issues.extend(found)
        if spec is not None:
            specs.append(spec)
        if name is not None:
            declared.setdefault(name[0], []).append(name[1])
    issues.extend(_duplicate_names(declared))
    if issues:
        raise SpecError(issues)
    return Project(
        root=root,
        config=config,
        targets=targets,
        target=chosen_target,
        specs=tuple(sorted(specs, key=lambda s: s.name)),
        config_file=kit_file,
        partials=partials,
        files=tuple(display_path(p) for p in files),
    )


#: What checking one file gives: its issues, its spec (if valid), and (name, place) if it names one.
_FileResult = tuple[list[SpecIssue], "AssistantSpec | None", "tuple[str, SpecIssue] | None"]
#: Below this many files, forking workers costs more than it saves.
PARALLEL_MIN_FILES = 200
#: Work the forked workers inherit (set just before the pool forks).
_WORK: tuple[list[Path], dict[str, Any], Renderer, list[Path]] | None = None


def _check_file(
    path: Path, layered: Mapping[str, Any], renderer: Renderer, within: list[Path]
) -> _FileResult:
    try:
        doc = read_document(path, within=within)
    except SpecError as exc:
        return exc.issues, None, None
    name = None
    if isinstance(doc.data, dict) and isinstance(doc.data.get("name"), str):
        name = (doc.data["name"], doc.issue(("name",), "", at_key=True))
    found = check_assistant(doc)
    if found:
        return found, None, name
    instructions, found = renderer.render(doc, merge_vars(layered, doc.data.get("vars")))
    if found:
        return found, None, name
    return [], _build(doc, instructions), name


def _check_chunk(bounds: tuple[int, int]) -> list[_FileResult]:
    assert _WORK is not None
    files, layered, renderer, within = _WORK
    return [_check_file(path, layered, renderer, within) for path in files[bounds[0] : bounds[1]]]


def _check_files(
    files: list[Path], layered: dict[str, Any], renderer: Renderer, jobs: int, within: list[Path]
) -> list[_FileResult]:
    """Check every file, in ``jobs`` forked processes when there are many files.

    Forking shares the compiled schemas and the Jinja2 environment with the workers for free;
    where fork is unavailable, or anything about the pool fails, the files are checked here.
    """
    global _WORK
    jobs = min(jobs, len(files) // (PARALLEL_MIN_FILES // 2) or 1)
    if jobs > 1 and len(files) >= PARALLEL_MIN_FILES and "fork" in mp.get_all_start_methods():
        step = -(-len(files) // jobs)
        bounds = [(start, start + step) for start in range(0, len(files), step)]
        _WORK = (files, layered, renderer, within)
        try:
            with mp.get_context("fork").Pool(len(bounds)) as pool:
                chunks = pool.map(_check_chunk, bounds)
            return [result for chunk in chunks for result in chunk]
        except (OSError, pickle.PicklingError, mp.ProcessError):  # pragma: no cover
            pass
        finally:
            _WORK = None
    return [_check_file(path, layered, renderer, within) for path in files]


def _build(doc: Document, instructions: str | None) -> AssistantSpec:
    return AssistantSpec.from_data(
        doc.data,
        instructions=instructions,
        file=doc.file,
        line_of=lambda path: doc.position(path).line,
    )


def _duplicate_names(declared: Mapping[str, list[SpecIssue]]) -> list[SpecIssue]:
    """One issue per place that declares an assistant name another file declares too."""
    issues = []
    for name, places in declared.items():
        if len(places) < 2:
            continue
        for place in places:
            others = ", ".join(f"{o.file}:{o.line}" for o in places if o is not place)
            issues.append(
                SpecIssue(
                    place.file,
                    place.line,
                    place.col,
                    f"assistant name `{name}` is also declared in {others}",
                )
            )
    return issues


def read_config(kit_file: Path | None, base: Path) -> tuple[dict[str, Any], Path]:
    """kit.yaml checked against its schema, with its defaults filled in, and the project root
    (``base`` when there is no kit.yaml). Raises ``ConfigError`` for a kit.yaml that cannot be
    used; an empty one means every default. ``specs`` is always a list."""
    data: dict[str, Any] = {}
    root = base
    if kit_file is not None:
        root = kit_file.parent.resolve()
        try:
            doc = read_document(kit_file, allow_empty=True, within=[root])
        except SpecError as exc:
            raise ConfigError(str(exc)) from None
        issues = check_kit(doc)
        if issues:
            raise ConfigError(str(SpecError(issues)))
        data = dict(doc.data or {})
    specs = data.get("specs", DEFAULT_SPECS)
    data["specs"] = [specs] if isinstance(specs, str) else list(specs)
    data.setdefault("vars", {})
    data["targets"] = {"local": dict(LOCAL_TARGET), **(data.get("targets") or {})}
    data.setdefault("default_target", "local")
    data.setdefault("server", {})
    data.setdefault("test", {})
    return data, root


def _resolve_env(
    variables: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values ``{env: NAME}`` replaced by the environment; returns (vars, {var: NAME} unset)."""
    resolved: dict[str, Any] = {}
    unset: dict[str, str] = {}
    for key, value in variables.items():
        if isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str):
            name = value["env"]
            if name in environ:
                resolved[key] = environ[name]
            else:
                unset[key] = name
        else:
            resolved[key] = value
    return resolved, unset
