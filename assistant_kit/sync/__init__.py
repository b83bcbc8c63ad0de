"""Sync: desired (specs) vs actual (a target) -> ``Plan`` -> apply with retries and concurrency.

No state file: the kit marks what it manages with the metadata keys ``kit_name`` and
``kit_digest``. ``build_plan`` lists the target and changes nothing; ``apply_plan`` carries out a
plan; ``import_assistants`` writes specs for assistants made elsewhere::

    async with open_target(project) as client:
        plan = await build_plan(client, project.specs, target="local", dialect="openai")
        report = await apply_plan(client, plan)
"""

from __future__ import annotations

from assistant_kit.catalog import KIT_DIGEST, KIT_NAME
from assistant_kit.sync.apply import DEFAULT_PARALLELISM, ApplyReport, Outcome, apply_plan
from assistant_kit.sync.diff import FieldChange
from assistant_kit.sync.importer import Imported, import_assistants
from assistant_kit.sync.plan import Change, Conflict, Plan, build_plan, destroy_plan, plan_from
from assistant_kit.sync.render import apply_json, plan_json, render_plan, render_report
from assistant_kit.sync.retry import RetryPolicy

__all__ = [
    "DEFAULT_PARALLELISM",
    "KIT_DIGEST",
    "KIT_NAME",
    "ApplyReport",
    "Change",
    "Conflict",
    "FieldChange",
    "Imported",
    "Outcome",
    "Plan",
    "RetryPolicy",
    "apply_json",
    "apply_plan",
    "build_plan",
    "destroy_plan",
    "import_assistants",
    "plan_from",
    "plan_json",
    "render_plan",
    "render_report",
]
