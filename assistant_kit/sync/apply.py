"""Carrying out a ``Plan``: bounded concurrency, retries, and never a second create.

``apply_plan`` takes a plan (what was shown is what runs), resolves every payload first (a missing
plug-in token stops it before any write), then runs the changes at most ``parallelism`` at a
time. Each call is retried on 429, 5xx, timeouts and lost connections (see ``retry``). A create
whose failure is ambiguous (the server may have done it) lists the target by ``kit_name``
before trying again and adopts what it finds, so faults never leave a duplicate. A failure
of one change does not stop the others; the report says what succeeded and what failed, and
running the same specs again converges::

    report = await apply_plan(client, plan, parallelism=8)
    report.ok, report.failed
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.api.base import AssistantClient, AssistantParams, RemoteAssistant
from assistant_kit.catalog import SETTINGS
from assistant_kit.errors import ApiError, KitError, PlanError, absorb_interrupt
from assistant_kit.spec.model import AssistantSpec, Dialect
from assistant_kit.sync.diff import actual_state, managed_name, marks_of, state_digest
from assistant_kit.sync.plan import Change, Plan, list_remote
from assistant_kit.sync.retry import RetryPolicy, is_ambiguous, is_retryable

__all__ = [
    "DEFAULT_PARALLELISM",
    "ApplyReport",
    "Outcome",
    "apply_plan",
    "params_for",
    "spec_params",
]

#: How many changes run at once unless told otherwise.
DEFAULT_PARALLELISM = 8

_CLEARABLE = ("description", "instructions")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change: ``ok``, the remote id, the error text, attempts made.

    ``adopted`` marks a create whose first attempt failed ambiguously but had gone through: the
    assistant was found by its ``kit_name`` instead of being created again.
    """

    change: Change
    ok: bool
    remote_id: str | None = None
    error: str | None = None
    attempts: int = 1
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """Every outcome of one apply, in plan order."""

    plan: Plan
    outcomes: tuple[Outcome, ...] = ()
    #: Cancelled (Ctrl-C) before every change finished: ``outcomes`` are the finished ones.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def counts(self) -> dict[str, int]:
        """Changes carried out per action, plus ``failed``."""
        counts = {"created": 0, "updated": 0, "deleted": 0, "failed": 0}
        done = {"create": "created", "update": "updated", "delete": "deleted"}
        for outcome in self.outcomes:
            counts[done[outcome.change.action] if outcome.ok else "failed"] += 1
        return counts


def params_for(
    change: Change, dialect: Dialect, *, environ: Mapping[str, str] | None = None
) -> AssistantParams:
    """The create/update parameters of a create or update ``change``, marks included.

    Plug-in tokens are read from ``environ`` (default ``os.environ``). On update, a field the
    spec leaves out but the target has set is cleared (sent as ``None``).
    """
    assert change.spec is not None and change.desired is not None
    payload: dict[str, Any] = change.spec.to_payload(
        dialect,
        environ=os.environ if environ is None else environ,
    )
    marks = marks_of(change.name, change.desired, change.project)
    payload["metadata"] = {**(payload["metadata"] or {}), **marks}
    if change.action == "update":
        changed = {f.field for f in change.fields}
        for key in (*_CLEARABLE, *SETTINGS[dialect]):
            if key not in payload and key in changed:
                payload[key] = None
    return _params(payload)


def spec_params(
    spec: AssistantSpec,
    dialect: Dialect,
    *,
    marks: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AssistantParams:
    """The create parameters of ``spec`` as it is, ``marks`` added to its metadata: the temporary
    assistants of ``kit test --ephemeral`` and ``kit chat --ephemeral``.

    Plug-in tokens are read from ``environ`` (default ``os.environ``); a missing one is a
    ``ConfigError``.
    """
    payload = spec.to_payload(dialect, environ=os.environ if environ is None else environ)
    payload["metadata"] = {**(payload["metadata"] or {}), **(marks or {})}
    return _params(payload)


def _params(payload: Mapping[str, Any]) -> AssistantParams:
    fields = {k: v for k, v in payload.items() if k in AssistantParams.__dataclass_fields__}
    return AssistantParams(**fields)


class _Counter:
    def __init__(self) -> None:
        self.attempts = 1

    def __call__(self, retry: int, error: BaseException, wait: float) -> None:
        self.attempts += 1


async def _find(
    client: AssistantClient, name: str, project: str | None, policy: RetryPolicy
) -> list[RemoteAssistant]:
    remotes, _ = await list_remote(client, retry=policy)
    return [r for r in remotes if managed_name(r, project) == name]


async def _create(
    client: AssistantClient,
    change: Change,
    params: AssistantParams,
    policy: RetryPolicy,
    dialect: Dialect,
) -> Outcome:
    assert change.desired is not None
    attempts = 0
    while True:
        attempts += 1
        try:
            created = await client.create_assistant(params)
            return Outcome(change, True, created.id, attempts=attempts)
        except ApiError as exc:
            if not is_retryable(exc) or attempts >= policy.attempts:
                raise
            wait = policy.delay(attempts - 1, exc)
            policy.report(attempts, exc, wait)
            await policy.sleep(wait)
            if not is_ambiguous(exc):
                continue
            # the create may have gone through: look before creating again
            found = await _find(client, change.name, change.project, policy)
            if len(found) > 1:
                ids = ", ".join(r.id for r in found)
                raise PlanError(f"`{change.name}` now exists {len(found)} times ({ids})") from exc
            if found:
                remote = found[0]
                if state_digest(actual_state(remote, dialect)) != change.digest:
                    counter = _Counter()
                    await policy.call(
                        functools.partial(client.update_assistant, remote.id, params),
                        on_retry=counter,
                    )
                    attempts += counter.attempts
                return Outcome(change, True, remote.id, attempts=attempts, adopted=True)


async def _update(
    client: AssistantClient, change: Change, params: AssistantParams, policy: RetryPolicy
) -> Outcome:
    assert change.remote is not None
    remote_id = change.remote.id
    counter = _Counter()
    try:
        await policy.call(lambda: client.update_assistant(remote_id, params), on_retry=counter)
    except ApiError as exc:
        if exc.status == 404:
            raise PlanError(
                f"{remote_id} was deleted after the plan was made; run `kit plan` again"
            ) from exc
        raise
    return Outcome(change, True, remote_id, attempts=counter.attempts)


async def _delete(client: AssistantClient, change: Change, policy: RetryPolicy) -> Outcome:
    assert change.remote is not None
    remote_id = change.remote.id
    counter = _Counter()
    try:
        await policy.call(lambda: client.delete_assistant(remote_id), on_retry=counter)
    except ApiError as exc:
        if exc.status != 404:  # gone already (perhaps by an attempt whose answer was lost)
            raise
    return Outcome(change, True, remote_id, attempts=counter.attempts)


async def apply_plan(
    client: AssistantClient,
    plan: Plan,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    retry: RetryPolicy | None = None,
    environ: Mapping[str, str] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> ApplyReport:
    """Carry out ``plan`` on ``client``'s target; raises ``PlanError`` if it has conflicts.

    ``on_outcome`` is called as each change finishes (for progress output). Cancelled (Ctrl-C
    under ``asyncio.run``), it returns what finished with ``interrupted`` set; a create cut off
    half-way is found by its marks on the next plan, never made twice.
    """
    plan.check()
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    policy = retry or RetryPolicy()
    pending = plan.pending
    params = {
        i: params_for(c, plan.dialect, environ=environ)
        for i, c in enumerate(pending)
        if c.action != "delete"
    }
    gate = asyncio.Semaphore(parallelism)

    async def run(index: int, change: Change) -> Outcome:
        async with gate:
            try:
                if change.action == "create":
                    outcome = await _create(client, change, params[index], policy, plan.dialect)
                elif change.action == "update":
                    outcome = await _update(client, change, params[index], policy)
                else:
                    outcome = await _delete(client, change, policy)
            except KitError as exc:
                outcome = Outcome(change, False, change.remote_id, error=str(exc))
        finished[index] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    finished: dict[int, Outcome] = {}
    tasks = [asyncio.ensure_future(run(i, c)) for i, c in enumerate(pending)]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:  # gather gives up at the first cancelled one: let them all end
            task.cancel()
        await asyncio.wait(tasks)
        if not absorb_interrupt():
            raise  # cancelled from elsewhere as well: not ours to swallow
        return ApplyReport(plan, tuple(finished[i] for i in sorted(finished)), interrupted=True)
    return ApplyReport(plan, tuple(finished[i] for i in sorted(finished)))
