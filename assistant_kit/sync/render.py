"""Plans and apply reports as terraform-like text and as JSON.

Text: a symbol per assistant (``+`` create, ``~`` update, ``-`` delete, ``!`` conflict), the
changed fields indented under it, a count at the end (``No changes.`` when there are none).
Long texts show as a short hash and a line count unless ``diff=True`` asks for the unified diff.
The text is plain: the CLI colours each line by the symbol it starts with. Plug-in tokens
never appear: plans only hold masked tools::

    print(render_plan(plan))
    json.dumps(plan_json(plan))
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from assistant_kit.catalog import KIT_DIGEST, KIT_NAME
from assistant_kit.sync.apply import ApplyReport, Outcome
from assistant_kit.sync.diff import FieldChange, tool_label
from assistant_kit.sync.plan import Change, Plan

__all__ = ["apply_json", "plan_json", "render_outcome", "render_plan", "render_report"]

_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "noop": " "}
_WIDTH = 14


def _value(value: Any) -> str:
    if value is None:
        return "(unset)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def text_summary(text: str | None) -> str:
    """``sha 3f2a91 (40 lines)`` for a text, ``(unset)`` for none."""
    if text is None:
        return "(unset)"
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    lines = len(text.splitlines()) or 1
    return f"sha {sha} ({lines} line{'' if lines == 1 else 's'})"


def _symbol_for(before: Any, after: Any) -> str:
    if before is None or before == []:
        return "+"
    if after is None or after == []:
        return "-"
    return "~"


def _tool_lines(change: FieldChange, indent: str) -> list[str]:
    before = {tool_label(t): t for t in change.before or []}
    after = {tool_label(t): t for t in change.after or []}
    lines = []
    for label in sorted(set(before) | set(after)):
        old, new = before.get(label), after.get(label)
        if old == new:
            continue
        if old is None:
            lines.append(f'{indent}+ tool "{label}"  {_value(new)}')
        elif new is None:
            lines.append(f'{indent}- tool "{label}"')
        else:
            lines.append(f'{indent}~ tool "{label}"  {_value(old)} -> {_value(new)}')
    return lines


def _field_lines(change: FieldChange, *, diff: bool, indent: str) -> list[str]:
    symbol = _symbol_for(change.before, change.after)
    head = f"{indent}{symbol} {change.field:<{_WIDTH}}"
    if change.field == "instructions":
        if change.before is None:
            lines = [f"{head} {text_summary(change.after)}"]
        else:
            lines = [f"{head} {text_summary(change.before)} -> {text_summary(change.after)}"]
        if diff:
            unified = difflib.unified_diff(
                (change.before or "").splitlines(),
                (change.after or "").splitlines(),
                "target",
                "spec",
                lineterm="",
            )
            lines.extend(f"{indent}    {line}" for line in unified)
        return lines
    if change.field == "tools":
        return [head.rstrip(), *_tool_lines(change, indent + "    ")]
    if change.before is None:
        return [f"{head} {_value(change.after)}"]
    if change.after is None:
        return [f"{head} {_value(change.before)} -> (unset)"]
    return [f"{head} {_value(change.before)} -> {_value(change.after)}"]


def _change_lines(change: Change, *, diff: bool) -> list[str]:
    symbol = _SYMBOLS[change.action]
    title = f'assistant "{change.name}"'
    if change.action == "create":
        what = "will be created"
    elif change.action == "delete":
        what = f"will be deleted ({change.remote_id})"
    elif change.marks_only:
        what = f"will be updated in place ({change.remote_id}; kit marks only)"
    else:
        what = f"will be updated in place ({change.remote_id})"
    lines = [f"  {symbol} {title:<30} {what}"]
    if change.drifted:
        how = "the differences below are those changes"
        if change.spec_changed:
            how = "the spec changed too; the differences below mix both"
        lines.append(f"      ! changed outside the kit since the last apply ({how})")
    for field in change.fields:
        # the digest is bookkeeping (kept in --json); the other marks say who owns what
        if (change.action == "create" and field.is_mark) or field.field == _DIGEST_FIELD:
            continue
        lines.extend(_field_lines(field, diff=diff, indent="      "))
    return lines


_DIGEST_FIELD = f"metadata.{KIT_DIGEST}"


def render_plan(plan: Plan, *, diff: bool = False, verb: str = "Plan") -> str:
    """The plan as terraform-like text (no trailing newline)."""
    lines: list[str] = []
    for change in plan.pending:
        lines.extend(_change_lines(change, diff=diff))
    for conflict in plan.conflicts:
        lines.append(f"  ! {conflict}")
    for remote in plan.orphans:
        lines.append(
            f'  ? assistant "{remote.metadata.get(KIT_NAME)}" ({remote.id}) has no spec; '
            "`kit apply --prune` deletes it"
        )
    if lines:
        lines.append("")
    counts = plan.counts
    if plan.conflicts:
        lines.append(f"Error: {len(plan.conflicts)} conflict(s) must be settled first.")
    elif plan.destroy:
        lines.append(
            f"{verb}: {counts['delete']} to destroy." if counts["delete"] else "No changes."
        )
    elif plan.has_changes:
        lines.append(
            f"{verb}: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete."
        )
    else:
        lines.append("No changes. The target matches the specs.")
    if plan.foreign:
        n = plan.foreign
        lines.append(
            f"{n} assistant{'' if n == 1 else 's'} of other projects on the target left alone "
            f"(this project: {plan.project})."
        )
    if plan.unmanaged:
        n = len(plan.unmanaged)
        lines.append(
            f"{n} unmanaged assistant{'' if n == 1 else 's'} on the target left alone "
            "(`kit import` adopts them)."
        )
    return "\n".join(lines)


def render_outcome(outcome: Outcome) -> str:
    """One line per finished change."""
    change = outcome.change
    done = {"create": "created", "update": "updated", "delete": "deleted"}[change.action]
    if not outcome.ok:
        return f'  ! assistant "{change.name}": failed: {outcome.error}'
    extra = f", after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    if outcome.adopted:
        extra += ", found after an unanswered create"
    symbol = _SYMBOLS[change.action]
    return f'  {symbol} assistant "{change.name}": {done} ({outcome.remote_id}{extra})'


def render_report(report: ApplyReport) -> str:
    """The closing summary of an apply (or a destroy)."""
    counts = report.counts
    done = f"{counts['created']} created, {counts['updated']} updated, {counts['deleted']} deleted"
    verb = "Apply"
    if report.plan.destroy:
        verb, done = "Destroy", f"{counts['deleted']} deleted"
    if report.interrupted:
        total = len(report.plan.pending)
        return (
            f"Interrupted: {len(report.outcomes) - counts['failed']} of {total} "
            f"{'deleted' if report.plan.destroy else 'applied'} ({done}): "
            f"run `kit {verb.lower()}` again to finish."
        )
    if report.ok:
        return f"{verb} complete: {done}."
    lines = [f"{verb} failed: {done}, {counts['failed']} failed:"]
    for outcome in report.failed:
        lines.append(f'  assistant "{outcome.change.name}": {outcome.error}')
    lines.append(f"Run `kit {verb.lower()}` again to finish: it only does what is still left.")
    return "\n".join(lines)


def _field_json(field: FieldChange) -> dict[str, Any]:
    return {"field": field.field, "before": field.before, "after": field.after}


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "name": change.name,
        "id": change.remote_id,
        "drifted": change.drifted,
        "spec_changed": change.spec_changed,
        "marks_only": change.marks_only,
        "digest": change.digest,
        "fields": [_field_json(f) for f in change.fields],
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready object (secrets masked)."""
    counts: Mapping[str, int] = plan.counts
    return {
        "target": plan.target,
        "dialect": plan.dialect,
        "prune": plan.prune,
        "project": plan.project,
        "foreign": plan.foreign,
        "has_changes": plan.has_changes,
        "summary": dict(counts),
        "changes": [_change_json(c) for c in plan.changes],
        "conflicts": [{"name": c.name, "ids": list(c.ids)} for c in plan.conflicts],
        "orphans": [{"name": r.metadata.get(KIT_NAME), "id": r.id} for r in plan.orphans],
        "unmanaged": [{"id": r.id, "name": r.name} for r in plan.unmanaged],
        "list_calls": plan.list_calls,
    }


def apply_json(plan: Plan, report: ApplyReport | None) -> dict[str, Any]:
    """The plan and what apply did (``report`` None: nothing was applied)."""
    out = plan_json(plan)
    outcomes = report.outcomes if report is not None else ()
    out["applied"] = [
        {
            "action": o.change.action,
            "name": o.change.name,
            "ok": o.ok,
            "id": o.remote_id,
            "error": o.error,
            "attempts": o.attempts,
            "adopted": o.adopted,
        }
        for o in outcomes
    ]
    out["ok"] = report.ok if report is not None else True
    out["interrupted"] = report.interrupted if report is not None else False
    if report is not None:
        out["result"] = report.counts
    return out
