"""Render instructions with Jinja2: sandboxed, strict about undefined names, one partials folder.

Variables come from kit.yaml ``vars``, overridden by the target's ``vars``, overridden by the
spec's own ``vars``. ``{% include "name" %}`` reads from the project's partials folder and nowhere
else: a partial whose real path (links resolved) is outside that folder, or that is not a regular
file, is refused unread. A template problem becomes a ``SpecIssue`` at the spec file and, for
literal block scalars (``instructions: |``), the very line inside the block; otherwise at the
``instructions`` value.

Templates run in ``spec.sandbox``: bounded in time, loop steps and the size of every value.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes

from assistant_kit.errors import SpecIssue
from assistant_kit.spec.load import Document, display_path
from assistant_kit.spec.sandbox import (
    MAX_INSTRUCTIONS,
    BoundedSandbox,
    PartialsLoader,
    Refused,
    TooLong,
    render_bounded,
    render_budget,
)

__all__ = ["MAX_INSTRUCTIONS", "Renderer", "merge_vars"]

_TEMPLATE_NAME = "<instructions>"


def merge_vars(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers override earlier ones, key by key (kit.yaml < target < spec)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


class Renderer:
    """Renders the instructions of spec documents; one Jinja2 environment per project.

    >>> renderer = Renderer(Path("assistants/partials"), unset_env={"region": "ACME_REGION"})
    >>> text, issues = renderer.render(doc, {"company": "Acme"})
    """

    def __init__(
        self, partials: Path | None, *, unset_env: Mapping[str, str] | None = None
    ) -> None:
        self.partials = partials
        self.unset_env = dict(unset_env or {})
        self.env = BoundedSandbox(
            loader=PartialsLoader(partials),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            auto_reload=False,
        )

    def render(
        self, doc: Document, variables: Mapping[str, Any]
    ) -> tuple[str | None, list[SpecIssue]]:
        """The rendered ``instructions`` of ``doc`` and any issues (text is None on failure)."""
        source = doc.data.get("instructions")
        if source is None:
            return None, []
        try:
            with render_budget():
                text = self._render_simple(source, variables)
                if text is None:
                    text = render_bounded(self.env.from_string(source), variables)
        except Refused as exc:
            return None, [self._issue(doc, _template_line(exc), f"template refused: {exc}")]
        except jinja2.TemplateSyntaxError as exc:
            return None, [self._issue(doc, exc.lineno, _syntax_words(exc))]
        except TooLong as exc:
            message = (
                f"`instructions`: rendered text is too long: more than {exc.size:,} characters "
                f"(at most {MAX_INSTRUCTIONS:,})"
            )
            return None, [doc.issue(("instructions",), message, at_key=True)]
        except jinja2.TemplateNotFound as exc:
            first = self._issue(doc, _template_line(exc), self._not_found_words(str(exc.name)))
            return None, self._every_issue(doc, source, variables, first)
        except jinja2.UndefinedError as exc:
            words = self._undefined_words(exc) + _partial_words(exc, self.partials)
            first = self._issue(doc, _template_line(exc), words)
            return None, self._every_issue(doc, source, variables, first)
        except jinja2.TemplateError as exc:
            return None, [self._issue(doc, _template_line(exc), f"template error: {exc}")]
        except Exception as exc:  # a filter or a sandbox refusal raised something else
            return None, [
                self._issue(
                    doc, _template_line(exc), f"template error: {type(exc).__name__}: {exc}"
                )
            ]
        issues = []
        if len(text) > MAX_INSTRUCTIONS:
            issues.append(
                doc.issue(
                    ("instructions",),
                    f"`instructions`: rendered text is too long: {len(text):,} characters "
                    f"(at most {MAX_INSTRUCTIONS:,})",
                    at_key=True,
                )
            )
        return text, issues

    def _render_simple(self, source: str, variables: Mapping[str, Any]) -> str | None:
        """Render a template made only of text, ``{{ name }}`` and ``{% include "file" %}``
        without compiling it; None when it needs the full engine (or would fail in it).

        Compiling a template to Python is most of the cost of rendering one, and most
        instructions look like this. The output is what Jinja2 gives (``str()`` of each value,
        partials rendered by Jinja2 itself); anything else, errors included, takes the full path.
        """
        try:
            tree = self.env.parse(source)
        except jinja2.TemplateSyntaxError:
            return None
        out: list[str] = []
        for node in tree.body:
            kind = type(node)
            if kind is nodes.Output:
                for child in node.nodes:  # type: ignore[attr-defined]
                    if type(child) is nodes.TemplateData:
                        out.append(child.data)
                    elif type(child) is nodes.Name and child.name in variables:
                        out.append(str(variables[child.name]))
                    else:
                        return None
            elif (
                kind is nodes.Include
                and type(node.template) is nodes.Const  # type: ignore[attr-defined]
                and isinstance(node.template.value, str)  # type: ignore[attr-defined]
                and node.with_context  # type: ignore[attr-defined]
                and not node.ignore_missing  # type: ignore[attr-defined]
            ):
                try:
                    partial = self.env.get_template(node.template.value)  # type: ignore[attr-defined]
                    out.append(render_bounded(partial, variables))
                except Refused:
                    raise
                except Exception:
                    return None
            else:
                return None
        return "".join(out)

    def _every_issue(
        self, doc: Document, source: str, variables: Mapping[str, Any], first: SpecIssue
    ) -> list[SpecIssue]:
        """``first`` (the error rendering stopped at) and every other undefined variable and
        missing include of the template, found in its syntax tree, one issue per name."""
        from jinja2 import meta

        tree = self.env.parse(source)
        undeclared = meta.find_undeclared_variables(tree) - set(variables)
        issues = [first]
        seen: set[str] = set()
        for node in tree.find_all((nodes.Name, nodes.Include)):
            if isinstance(node, nodes.Name):
                name = node.name
                if node.ctx != "load" or name not in undeclared or name in seen:
                    continue
                seen.add(name)
                fake = jinja2.UndefinedError(f"'{name}' is undefined")
                issues.append(self._issue(doc, node.lineno, self._undefined_words(fake)))
            elif (
                isinstance(node, nodes.Include)
                and isinstance(node.template, nodes.Const)
                and isinstance(node.template.value, str)
            ):
                name = node.template.value
                if node.ignore_missing or name in seen:
                    continue
                try:
                    self.env.get_template(name)
                except jinja2.TemplateNotFound:
                    seen.add(name)
                    issues.append(self._issue(doc, node.lineno, self._not_found_words(name)))
                except jinja2.TemplateError:
                    continue  # the partial's own errors are reported when it renders
        unique = {(i.line, i.col, i.message): i for i in issues}
        return sorted(unique.values(), key=lambda i: (i.line, i.col))

    def _not_found_words(self, name: str) -> str:
        folder = (
            f" in {display_path(self.partials)}/"
            if self.partials is not None
            else " (no partials folder)"
        )
        return f"include not found: `{name}`{folder}"

    def _undefined_words(self, exc: jinja2.UndefinedError) -> str:
        message = str(exc.message or exc)
        for name, env in self.unset_env.items():
            if f"'{name}'" in message:
                return (
                    f"undefined template variable `{name}`: kit.yaml maps it to the environment "
                    f"variable {env}, which is not set"
                )
        if message.endswith("is undefined"):
            name = message.removesuffix(" is undefined").strip("'")
            return (
                f"undefined template variable `{name}`; define it in the spec's `vars`, "
                "the target's or kit.yaml's"
            )
        return f"undefined template variable: {message}"

    def _issue(self, doc: Document, template_line: int | None, message: str) -> SpecIssue:
        """Map a line of the template to the spec file where the block scalar allows it."""
        value = doc.position(("instructions",))
        if template_line and value.style == "|" and doc.text:
            line = value.line + template_line
            lines = doc.text.splitlines()
            if line <= len(lines):
                content = lines[line - 1]
                col = len(content) - len(content.lstrip(" ")) + 1
                return SpecIssue(doc.file, line, col, message)
        source = doc.data.get("instructions")
        one_line = isinstance(source, str) and "\n" not in source.strip()
        if template_line == 1 and one_line and value.style in (None, '"', "'"):
            return SpecIssue(doc.file, value.line, value.col, message)
        where = f" (template line {template_line})" if template_line else ""
        key = doc.key_position(("instructions",))
        return SpecIssue(doc.file, key.line, key.col, message + where)


def _syntax_words(exc: jinja2.TemplateSyntaxError) -> str:
    if exc.name and exc.name != _TEMPLATE_NAME and exc.filename:
        return f"template syntax error in partial `{exc.name}` line {exc.lineno}: {exc.message}"
    return f"template syntax error: {exc.message}"


def _partial_words(exc: BaseException, partials: Path | None) -> str:
    """`` (in partial `x` line n)`` when the error was raised inside an included partial."""
    if partials is None:
        return ""
    tb: types.TracebackType | None = exc.__traceback__
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        try:
            name = Path(filename).resolve().relative_to(partials.resolve())
        except (ValueError, OSError):
            name = None
        if name is not None:
            found = f" (in partial `{name}` line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


def _template_line(exc: BaseException) -> int | None:
    """The line of the instructions template the exception came from (Jinja2 rewrites
    tracebacks so that template frames carry template line numbers)."""
    tb: types.TracebackType | None = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
