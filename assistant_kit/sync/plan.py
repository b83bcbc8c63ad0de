"""Plans: what apply would do to a target, worked out without changing anything.

Every remote assistant is listed (all pages, the largest page size), matched to the specs by its
``kit_name`` mark, and classified: create, update (with a field diff), no-op, or delete (only with
``prune``, and only assistants the kit manages). Assistants without the mark are never touched.
Drift, a remote that no longer matches the ``kit_digest`` apply wrote, is flagged on its change;
two remote assistants claiming one name make a ``Conflict``, never a guess::

    plan = await build_plan(client, project.specs, target="local", dialect="openai")
    plan.counts            # {"create": 1, "update": 0, "delete": 0, "noop": 3}
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant_kit.api.base import AssistantClient, Page, RemoteAssistant
from assistant_kit.catalog import KIT_DIGEST
from assistant_kit.errors import ConfigError, PlanError
from assistant_kit.spec.model import AssistantSpec, Dialect
from assistant_kit.sync.diff import (
    FieldChange,
    actual_state,
    desired_state,
    field_changes,
    managed_name,
    marks_of,
    project_of,
    state_digest,
)
from assistant_kit.sync.retry import RetryPolicy

__all__ = [
    "PAGE_SIZE",
    "Action",
    "Change",
    "Conflict",
    "Plan",
    "build_plan",
    "check_names",
    "destroy_plan",
    "list_remote",
    "plan_from",
]

Action = Literal["create", "update", "delete", "noop"]
#: The largest page both dialects serve.
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Change:
    """What apply does to one assistant.

    ``desired`` is the spec's comparable form (see ``diff``), ``fields`` the differences from the
    remote (marks included). ``drifted`` says the remote was changed outside the kit since the
    last apply; then ``spec_changed`` tells whether the spec moved too (if not, ``fields`` is
    exactly what was changed outside).
    """

    action: Action
    name: str
    spec: AssistantSpec | None = None
    remote: RemoteAssistant | None = None
    desired: Mapping[str, Any] | None = None
    fields: tuple[FieldChange, ...] = ()
    drifted: bool = False
    spec_changed: bool = False
    #: The project whose mark apply writes (kit.yaml ``project``; None: no project mark).
    project: str | None = None

    @property
    def marks_only(self) -> bool:
        """An update that only writes the kit's marks (e.g. right after ``kit import``)."""
        return self.action == "update" and all(f.is_mark for f in self.fields)

    @property
    def remote_id(self) -> str | None:
        return self.remote.id if self.remote is not None else None

    @property
    def digest(self) -> str | None:
        """The ``kit_digest`` apply writes (None for deletes)."""
        return state_digest(self.desired) if self.desired is not None else None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Several remote assistants claim one spec name; the plan will not choose between them."""

    name: str
    ids: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"assistant `{self.name}` is claimed by {len(self.ids)} remote assistants "
            f"({', '.join(self.ids)}); delete all but one (or remove its kit_name mark)"
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Every change for one target, in name order, plus what is left alone and why."""

    target: str
    dialect: Dialect
    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    #: Managed remote assistants with no spec, left alone because ``prune`` is off.
    orphans: tuple[RemoteAssistant, ...] = ()
    #: Remote assistants the kit does not manage (no ``kit_name``).
    unmanaged: tuple[RemoteAssistant, ...] = ()
    #: The project planned for (kit.yaml ``project``); None: every managed assistant is its own.
    project: str | None = None
    #: Managed assistants of other projects (or of no project and no spec here): never touched
    #: nor listed, only counted.
    foreign: int = 0
    prune: bool = False
    destroy: bool = False
    #: List requests the plan made (one per page).
    list_calls: int = 0
    listed: int = field(default=0)

    @property
    def pending(self) -> tuple[Change, ...]:
        """The changes apply will carry out (no-ops left out)."""
        return tuple(c for c in self.changes if c.action != "noop")

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0, "noop": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def check(self) -> None:
        """Raise ``PlanError`` when the plan cannot be applied as it stands (conflicts)."""
        if self.conflicts:
            raise PlanError("; ".join(str(c) for c in self.conflicts))


async def list_remote(
    client: AssistantClient, *, retry: RetryPolicy | None = None, page_size: int = PAGE_SIZE
) -> tuple[list[RemoteAssistant], int]:
    """Every assistant on the target, oldest first, and the number of list calls it took."""
    policy = retry or RetryPolicy()
    seen: dict[str, RemoteAssistant] = {}
    after: str | None = None
    calls = 0
    while True:

        async def fetch(cursor: str | None = after) -> Page[RemoteAssistant]:
            return await client.list_assistants(limit=page_size, order="asc", after=cursor)

        page = await policy.call(fetch)
        calls += 1
        for item in page.data:
            seen.setdefault(item.id, item)
        if not page.has_more or not page.data:
            return list(seen.values()), calls
        after = page.data[-1].id


def check_names(
    names: Collection[str], specs: Sequence[AssistantSpec], managed: Iterable[str]
) -> None:
    """``ConfigError`` for a name that is neither a spec nor managed on the target (a typo)."""
    known = {s.name for s in specs} | set(managed)
    unknown = sorted(set(names) - known)
    if unknown:
        listed = ", ".join(f"`{n}`" for n in unknown)
        raise ConfigError(f"no spec and no managed assistant on the target named {listed}")


def _update_or_noop(
    spec: AssistantSpec, remote: RemoteAssistant, dialect: Dialect, project: str | None
) -> Change:
    desired = desired_state(spec, dialect)
    actual = actual_state(remote, dialect)
    marks = marks_of(spec.name, desired, project)
    remote_marks = {k: remote.metadata[k] for k in marks if k in remote.metadata}
    changes = field_changes(actual, desired, before_marks=remote_marks, after_marks=marks)
    recorded = remote.metadata.get(KIT_DIGEST)
    drifted = recorded is not None and recorded != state_digest(actual)
    spec_changed = recorded is not None and recorded != marks[KIT_DIGEST]
    return Change(
        action="update" if changes else "noop",
        name=spec.name,
        spec=spec,
        remote=remote,
        desired=desired,
        fields=changes,
        drifted=drifted,
        spec_changed=spec_changed,
        project=project,
    )


def plan_from(
    specs: Sequence[AssistantSpec],
    remotes: Sequence[RemoteAssistant],
    *,
    target: str,
    dialect: Dialect,
    names: Collection[str] = (),
    prune: bool = False,
    list_calls: int = 0,
    project: str | None = None,
) -> Plan:
    """The plan for ``specs`` against the listed ``remotes`` (pure: no I/O).

    ``names`` limits the plan to those assistants (spec names or managed remote names).
    ``project`` scopes it: assistants marked by another project are counted, never touched; an
    assistant with no project mark is matched by a spec of its name (and marked by apply), but
    never pruned or listed as an orphan (it may be another project's).
    """
    by_name: dict[str, list[RemoteAssistant]] = {}
    unmanaged: list[RemoteAssistant] = []
    foreign = 0
    spec_names = {s.name for s in specs}
    for remote in remotes:
        name = managed_name(remote)
        if name is None:
            unmanaged.append(remote)
        elif (
            project is not None
            and project_of(remote) != project
            and (project_of(remote) is not None or name not in spec_names)
        ):
            foreign += 1
        else:
            by_name.setdefault(name, []).append(remote)
    if names:
        check_names(names, specs, by_name)
        specs = [s for s in specs if s.name in names]
        by_name = {n: r for n, r in by_name.items() if n in names}

    changes: list[Change] = []
    conflicts: list[Conflict] = []
    orphans: list[RemoteAssistant] = []
    spec_names = {s.name for s in specs}
    for spec in specs:
        claimed = by_name.get(spec.name, [])
        if len(claimed) > 1:
            conflicts.append(Conflict(spec.name, tuple(r.id for r in claimed)))
        elif claimed:
            changes.append(_update_or_noop(spec, claimed[0], dialect, project))
        else:
            desired = desired_state(spec, dialect)
            marks = marks_of(spec.name, desired, project)
            fields = field_changes(None, desired, after_marks=marks)
            changes.append(
                Change(
                    "create", spec.name, spec=spec, desired=desired, fields=fields, project=project
                )
            )
    for name, claimed in sorted(by_name.items()):
        if name in spec_names:
            continue
        for remote in claimed:
            if prune:
                changes.append(Change("delete", name, remote=remote))
            else:
                orphans.append(remote)
    changes.sort(key=lambda c: (c.name, c.remote_id or ""))
    return Plan(
        target=target,
        dialect=dialect,
        changes=tuple(changes),
        conflicts=tuple(conflicts),
        orphans=tuple(orphans),
        unmanaged=tuple(unmanaged),
        prune=prune,
        list_calls=list_calls,
        listed=len(remotes),
        project=project,
        foreign=foreign,
    )


def destroy_plan(
    remotes: Sequence[RemoteAssistant],
    names: Collection[str],
    *,
    target: str,
    dialect: Dialect,
    list_calls: int = 0,
    project: str | None = None,
) -> Plan:
    """A plan deleting every remote assistant ``project`` manages whose ``kit_name`` is in
    ``names`` (see ``managed_name``: another project's are left alone)."""
    changes = [
        Change("delete", name, remote=remote, project=project)
        for remote in remotes
        if (name := managed_name(remote, project)) is not None and name in names
    ]
    changes.sort(key=lambda c: (c.name, c.remote_id or ""))
    return Plan(
        target=target,
        dialect=dialect,
        changes=tuple(changes),
        unmanaged=tuple(r for r in remotes if managed_name(r) is None),
        destroy=True,
        list_calls=list_calls,
        listed=len(remotes),
        project=project,
        foreign=sum(
            1 for r in remotes if managed_name(r) is not None and managed_name(r, project) is None
        ),
    )


async def build_plan(
    client: AssistantClient,
    specs: Sequence[AssistantSpec],
    *,
    target: str,
    dialect: Dialect,
    names: Collection[str] = (),
    prune: bool = False,
    retry: RetryPolicy | None = None,
    project: str | None = None,
) -> Plan:
    """List the target and plan ``specs`` of ``project`` against it; changes nothing."""
    remotes, calls = await list_remote(client, retry=retry)
    return plan_from(
        specs,
        remotes,
        target=target,
        dialect=dialect,
        names=names,
        prune=prune,
        list_calls=calls,
        project=project,
    )
