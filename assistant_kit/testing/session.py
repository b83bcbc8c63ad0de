"""Which assistant a test talks to, and the judge that scores rubrics.

Two modes (``AssistantPool``):

* applied (default): the assistant ``kit apply`` put on the target, found by its ``kit_name``
  mark. Missing, duplicated or drifted (its ``kit_digest`` is not the current spec's) is a
  ``SetupError`` that says so and suggests ``kit apply``;
* ephemeral (``--ephemeral``): a temporary assistant created from the current spec and deleted
  afterwards, so a pull request tests its candidate before apply.

``judge_provider`` scores a ``judge:`` rubric with a one-off assistant on the judge's target and
model (kit.yaml ``test.judge: {target, model}``, overridable per check)::

    pool = AssistantPool(client, dialect="openai", ephemeral=True)
    assistant_id = await pool.resolve(spec)
    ...
    await pool.close()                      # deletes the ephemeral assistants
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from assistant_kit.api.base import AssistantClient, AssistantParams
from assistant_kit.api.turn import TurnDriver
from assistant_kit.catalog import KIT_DIGEST, KIT_TEST
from assistant_kit.errors import ConfigError, KitError
from assistant_kit.spec.model import AssistantSpec, Dialect
from assistant_kit.testing.checks import Judge
from assistant_kit.testing.judge import JUDGE_SYSTEM, parse_judge_reply

#: Seconds a judge may take to answer (a judge that does not answer is an ERROR).
JUDGE_TIMEOUT = 120.0


class SetupError(KitError):
    """A test cannot start: its assistant is missing or drifted, or could not be created."""


def drift(spec: AssistantSpec, remote: Any, dialect: Dialect) -> str | None:
    """Why ``remote`` is not ``spec`` as ``kit apply`` left it (``None``: it is), by the digests
    apply writes (``kit_digest``) and would write now."""
    from assistant_kit.sync.diff import actual_state, desired_state, state_digest

    desired = state_digest(desired_state(spec, dialect))
    if remote.metadata.get(KIT_DIGEST) != desired:
        return "the spec changed since `kit apply`"
    if state_digest(actual_state(remote, dialect)) != desired:
        return "it was changed on the target since `kit apply`"
    return None


class AssistantPool:
    """Assistant ids per spec, resolved once (or per call with ``cache=False``: cassettes)."""

    def __init__(
        self,
        client: AssistantClient,
        *,
        dialect: Dialect,
        ephemeral: bool = False,
        target_name: str = "local",
        environ: Mapping[str, str] | None = None,
        project: str | None = None,
    ) -> None:
        self.client = client
        #: Only this project's applied assistants are tested (kit.yaml ``project``).
        self.project = project
        self.dialect = dialect
        self.ephemeral = ephemeral
        self.target_name = target_name
        self.environ = os.environ if environ is None else environ
        self._ids: dict[str, asyncio.Task[str]] = {}
        self._listing: asyncio.Task[list[Any]] | None = None
        self._created: list[str] = []

    async def resolve(self, spec: AssistantSpec, *, cache: bool = True) -> str:
        """The id of the assistant to test ``spec`` against; ``SetupError`` if there is none."""
        if not cache:
            return await self._resolve(spec, listing=None)
        task = self._ids.get(spec.name)
        if task is None:
            listing = None if self.ephemeral else self._list()
            task = asyncio.ensure_future(self._resolve(spec, listing=listing))
            self._ids[spec.name] = task
        return await asyncio.shield(task)

    def _list(self) -> asyncio.Task[list[Any]]:
        if self._listing is None:
            self._listing = asyncio.ensure_future(self.client.list_all_assistants())
        return self._listing

    async def _resolve(self, spec: AssistantSpec, listing: asyncio.Task[list[Any]] | None) -> str:
        if self.ephemeral:
            return await self.create(spec)
        remotes = await (listing if listing is not None else self.client.list_all_assistants())
        return self.applied(spec, remotes)

    async def create(self, spec: AssistantSpec) -> str:
        """A temporary assistant from ``spec`` (tracked for ``close``)."""
        from assistant_kit.sync.apply import spec_params

        marks = {KIT_TEST: f"ephemeral:{spec.name}"}
        try:
            params = spec_params(spec, self.dialect, marks=marks, environ=self.environ)
        except ConfigError as exc:
            raise SetupError(str(exc)) from exc
        remote = await self.client.create_assistant(params)
        self._created.append(remote.id)
        return remote.id

    def applied(self, spec: AssistantSpec, remotes: list[Any]) -> str:
        """The applied assistant of ``spec`` among ``remotes`` (``SetupError`` if unusable)."""
        from assistant_kit.sync.diff import managed_name

        where = f"target `{self.target_name}`"
        found = [r for r in remotes if managed_name(r, self.project) == spec.name]
        if not found:
            raise SetupError(
                f"assistant `{spec.name}` is not applied on {where}; run `kit apply` first "
                "(or `kit test --ephemeral` to test the spec without applying it)"
            )
        if len(found) > 1:
            ids = ", ".join(r.id for r in found)
            raise SetupError(
                f"assistant `{spec.name}` is applied more than once on {where} ({ids}); "
                "run `kit plan` to see them and keep one"
            )
        remote = found[0]
        why = drift(spec, remote, self.dialect)
        if why:
            raise SetupError(
                f"assistant `{spec.name}` on {where} ({remote.id}) is not the current spec "
                f"({why}); run `kit apply` first (or `kit test --ephemeral`)"
            )
        return str(remote.id)

    async def delete(self, assistant_id: str) -> None:
        """Delete one ephemeral assistant now (best effort)."""
        if assistant_id in self._created:
            self._created.remove(assistant_id)
        with contextlib.suppress(KitError):
            await self.client.delete_assistant(assistant_id)

    async def close(self) -> None:
        """Delete every ephemeral assistant still alive (best effort)."""
        pending: list[asyncio.Future[Any]] = [*self._ids.values()]
        if self._listing is not None:
            pending.append(self._listing)
        for task in pending:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for assistant_id in list(self._created):
            await self.delete(assistant_id)


async def ask_judge(client: AssistantClient, model: str, rubric: str, transcript: str) -> str:
    """One judge reply: a temporary assistant on ``model`` reads the rubric and transcript."""
    from assistant_kit.testing.judge import judge_prompt

    prompt = judge_prompt(rubric, transcript)[1]["content"]
    bot = await client.create_assistant(
        AssistantParams(
            model=model,
            name="kit test judge",
            instructions=JUDGE_SYSTEM,
            metadata={KIT_TEST: "judge"},
        )
    )
    driver = TurnDriver(client, bot.id)
    try:
        turn = await driver.send(prompt)
        if turn.status != "completed":
            error = turn.run.last_error if turn.run is not None else None
            raise SetupError(
                f"the judge's run ended {turn.run.status if turn.run else 'without a status'}"
                + (f": {error.get('code')}: {error.get('message')}" if error else "")
            )
        return "\n".join(turn.replies)
    finally:
        if driver.thread_id is not None:
            with contextlib.suppress(KitError):
                await client.delete_thread(driver.thread_id)
        with contextlib.suppress(KitError):
            await client.delete_assistant(bot.id)


JudgeClientFor = Callable[[str | None], Awaitable[AssistantClient]]


def judge_provider(
    defaults: Mapping[str, Any], client_for_target: JudgeClientFor
) -> Callable[[str | None, str | None], Judge | None]:
    """The ``CheckContext.judges`` of a suite: ``(target, model) -> judge`` or ``None`` when no
    model is named (neither on the check nor in kit.yaml ``test.judge``)."""

    timeout = JUDGE_TIMEOUT

    def provide(target: str | None, model: str | None) -> Judge | None:
        model = model or defaults.get("model")
        target = target or defaults.get("target")
        if not model:
            return None

        async def judge(rubric: str, transcript: str) -> tuple[bool, str]:
            client = await client_for_target(target)
            try:
                reply = await asyncio.wait_for(
                    ask_judge(client, str(model), rubric, transcript), timeout
                )
            except asyncio.TimeoutError:
                raise SetupError(f"the judge did not answer within {timeout:g}s") from None
            return parse_judge_reply(reply)

        return judge

    return provide
