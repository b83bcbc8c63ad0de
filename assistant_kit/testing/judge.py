"""Checks that call out: ``judge`` (a rubric scored by a model) and ``python`` (user code).

Both turn every failure to get an answer into an ERROR result (the check could not decide), and
keep FAIL for a real "no". The runner builds the judge itself (it owns the targets); this module
gives it the prompt and a strict reply parser::

    async def judge(rubric: str, transcript: str) -> tuple[bool, str]:
        reply = await complete(judge_prompt(rubric, transcript))   # one chat completion
        return parse_judge_reply(reply)                            # JudgeError on garbage
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant_kit.errors import KitError
from assistant_kit.testing.checks import Check, CheckContext, ExpectationError
from assistant_kit.testing.records import CheckResult, TurnRecord, render_transcript

JUDGE_SYSTEM = (
    "You grade an AI assistant's conversation against a rubric. Read the transcript, decide "
    "whether the assistant's last reply satisfies the rubric, and answer with one JSON object "
    'and nothing else: {"verdict": "pass" or "fail", "reason": "<one sentence>"}'
)


class JudgeError(KitError):
    """The judge's answer cannot be read as a verdict."""


def judge_prompt(rubric: str, transcript: str) -> list[dict[str, str]]:
    """The chat messages a judge model receives."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Rubric:\n{rubric}\n\nTranscript:\n{transcript}"},
    ]


_OBJECT = re.compile(r"\{.*\}", re.S)
_PASS = {"pass", "passed", "yes", "true"}
_FAIL = {"fail", "failed", "no", "false"}


def parse_judge_reply(text: str) -> tuple[bool, str]:
    """Read ``{"verdict": "pass"|"fail", "reason": ...}`` from a model's reply (JSON may be wrapped
    in prose or a code fence); raise ``JudgeError`` for anything else."""
    found = _OBJECT.search(text)
    if not found:
        raise JudgeError(f"the judge's reply has no JSON object: {text[:200]!r}")
    try:
        data = json.loads(found.group(0))
    except ValueError as exc:
        raise JudgeError(f"the judge's reply is not valid JSON ({exc}): {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise JudgeError(f"the judge's reply is not a JSON object: {text[:200]!r}")
    verdict = data.get("verdict")
    if isinstance(verdict, str):
        verdict = verdict.strip().lower()
        verdict = True if verdict in _PASS else False if verdict in _FAIL else verdict
    if not isinstance(verdict, bool):
        raise JudgeError(f"the judge's verdict must be pass or fail, got {data.get('verdict')!r}")
    reason = data.get("reason", "")
    return verdict, reason if isinstance(reason, str) else json.dumps(reason)


@dataclass(frozen=True, slots=True)
class JudgeCheck(Check):
    """A rubric scored by the judge of ``target``/``model`` over the conversation so far."""

    rubric: str
    target: str | None = None
    model: str | None = None

    @property
    def label(self) -> str:
        rubric = self.rubric if len(self.rubric) <= 60 else self.rubric[:59] + "…"
        return f"judge: {rubric!r}"

    async def run(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        judge = ctx.judges(self.target, self.model) if ctx.judges else None
        where = {"target": self.target, "model": self.model, "rubric": self.rubric}
        if judge is None:
            return CheckResult.error(
                self.label, "no judge is configured (set test.judge in kit.yaml)", detail=where
            )
        transcript = render_transcript((*ctx.history, turn))
        try:
            answer = await judge(self.rubric, transcript)
        except Exception as exc:  # a judge that cannot answer is an ERROR, not a FAIL
            return CheckResult.error(
                self.label, f"the judge failed: {type(exc).__name__}: {exc}", detail=where
            )
        if not (
            isinstance(answer, (tuple, list))
            and len(answer) == 2
            and isinstance(answer[0], bool)
            and isinstance(answer[1], str)
        ):
            return CheckResult.error(
                self.label,
                f"the judge answered garbage (expected (verdict, reason)): {answer!r:.200}",
                detail=where,
            )
        verdict, reason = answer
        detail = {**where, "verdict": verdict, "reason": reason}
        said = "pass" if verdict else "fail"
        return self.result(
            verdict,
            f"the judge says {said}: {reason}",
            expected=f"rubric: {self.rubric}",
            actual=f"{said}: {reason}",
            detail=detail,
        )


@dataclass(frozen=True, slots=True)
class PythonCheck(Check):
    """``module:function`` called with the turn record; returns a bool or ``(bool, reason)``."""

    ref: str

    @property
    def label(self) -> str:
        return f"python: {self.ref}"

    async def run(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        try:
            func = load_callable(self.ref, ctx.import_paths)
        except Exception as exc:
            return CheckResult.error(
                self.label, f"cannot import {self.ref}: {type(exc).__name__}: {exc}"
            )
        try:
            answer = func(turn)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            return CheckResult.error(self.label, f"{self.ref} raised {type(exc).__name__}: {exc}")
        if isinstance(answer, bool):
            passed, reason = answer, ""
        elif (
            isinstance(answer, (tuple, list))
            and len(answer) == 2
            and isinstance(answer[0], bool)
            and isinstance(answer[1], str)
        ):
            passed, reason = answer[0], answer[1]
        else:
            return CheckResult.error(
                self.label,
                f"{self.ref} must return a bool or (bool, reason), not {answer!r:.200}",
            )
        said = "True" if passed else "False"
        message = f"{self.ref} returned {said}" + (f": {reason}" if reason else "")
        return self.result(passed, message, expected="True", actual=said)


def load_callable(ref: str, import_paths: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Import ``package.module:attr.path``; ``import_paths`` go to the front of ``sys.path``."""
    module_name, _, attr_path = ref.partition(":")
    for path in reversed(import_paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj  # type: ignore[no-any-return]


def build_judge(value: Any) -> JudgeCheck:
    if isinstance(value, str):
        value = {"rubric": value}
    if not isinstance(value, dict):
        raise ExpectationError(f"judge: expected {{rubric: ..., target?, model?}}, got {value!r}")
    unknown = sorted(set(value) - {"rubric", "target", "model"})
    if unknown:
        raise ExpectationError(f"judge: unknown key {', '.join(unknown)}")
    rubric = value.get("rubric")
    if not isinstance(rubric, str) or not rubric.strip():
        raise ExpectationError("judge: needs a non-empty `rubric`")
    for key in ("target", "model"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise ExpectationError(f"judge: {key} must be a name, got {value[key]!r}")
    return JudgeCheck(rubric, value.get("target"), value.get("model"))


_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def build_python(value: Any) -> PythonCheck:
    if not isinstance(value, str) or not _REF.match(value):
        raise ExpectationError(f"python: expected `module:function`, got {value!r}")
    return PythonCheck(value)
