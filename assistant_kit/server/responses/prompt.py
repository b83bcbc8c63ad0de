"""``prompt: {id, version, variables}``: an applied assistant as a Responses prompt.

``id`` is an assistant id (``asst_…``, as ``kit apply`` reports it) or ``kit:NAME``, the assistant
``kit apply`` manages as spec ``NAME`` (its ``kit_name`` metadata mark). The assistant supplies
what the request leaves out: model, instructions, tools, temperature, top_p and response format.
With ``variables``, the stored instructions are rendered as a Jinja2 template (sandboxed,
undefined names are an error): ``kit apply`` renders a spec's own variables, so a slot meant for
Responses callers is written ``{% raw %}{{ customer }}{% endraw %}`` in the spec. ``version`` is
accepted and echoed; an assistant has one version, its current one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from assistant_kit.catalog import KIT_NAME
from assistant_kit.server.ids import parse_id
from assistant_kit.server.responses.request import bad
from assistant_kit.server.services import Services
from assistant_kit.server.store.base import PageQuery
from assistant_kit.server.store.records import AssistantRecord

#: The prefix of the alias form of a prompt id: ``kit:NAME``.
ALIAS = "kit:"

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


async def prompt_assistant(services: Services, prompt: Any) -> AssistantRecord:
    """The assistant a ``prompt`` names (400 when there is none)."""
    if not isinstance(prompt, Mapping) or not isinstance(prompt.get("id"), str):
        raise bad("prompt.id", "Missing required parameter: 'prompt.id'.")
    wanted = str(prompt["id"])
    if wanted.startswith(ALIAS):
        name = wanted[len(ALIAS) :]
        after: str | None = None
        while True:
            page = await services.list_assistants(PageQuery(100, "asc", after, None))
            for assistant in page.items:
                if assistant.metadata.get(KIT_NAME) == name:
                    return assistant
            if not page.has_more or not page.items:
                break
            after = page.items[-1].id
        raise bad("prompt.id", f"No assistant is applied as kit_name {name!r}.")
    uid = parse_id("assistant", wanted)
    found = await services.store.get_assistant(uid) if uid else None
    if found is None:
        raise bad("prompt.id", f"No assistant with id {wanted!r} (use asst_… or kit:NAME).")
    return found


def prompt_instructions(assistant: AssistantRecord, variables: Any) -> str:
    """The assistant's instructions, rendered with ``variables`` when there are any."""
    text = assistant.instructions or ""
    if not variables:
        return text
    if not isinstance(variables, Mapping):
        raise bad("prompt.variables", "Invalid 'prompt.variables': expected an object.")
    values = {
        k: v if isinstance(v, str) else str(v.get("text", "")) if isinstance(v, Mapping) else v
        for k, v in variables.items()
    }
    try:
        return _ENV.from_string(text).render(values)
    except jinja2.TemplateError as exc:
        raise bad("prompt.variables", f"The prompt's instructions do not render: {exc}") from exc
