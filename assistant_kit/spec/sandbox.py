"""The Jinja2 environment instructions render in: a sandbox that cannot hang or exhaust memory.

A template cannot make the kit hang or run out of memory: Jinja2's sandbox, plus

* a time budget per render (``RENDER_TIME_S``) and a budget of loop iterations
  (``MAX_ITERATIONS``), checked at every loop step, operator, call, filter and output chunk;
* sizes checked *before* a value is made: ``*``, ``+``, ``~`` and ``%`` on text and lists,
  ``**`` and ``*`` on integers (``MAX_INT_BITS``), the widths of ``center``, ``ljust``,
  ``rjust``, ``zfill``, ``indent``, ``format``, ``wordwrap``, ``replace``, ``join``,
  ``expandtabs``, ``batch`` and ``slice``: no value may exceed ``MAX_VALUE`` characters or items;
* the rendered text is cut off once it is far over ``MAX_INSTRUCTIONS``; ``lipsum`` is removed.

Partials come from one folder only: a name whose real path (links resolved) is outside it, or that
is not a regular file, is refused before it is opened.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

from assistant_kit.spec.load import MAX_FILE_BYTES, FileRefused, read_regular_file

__all__ = [
    "MAX_INSTRUCTIONS",
    "MAX_INT_BITS",
    "MAX_ITERATIONS",
    "MAX_VALUE",
    "RENDER_TIME_S",
    "BoundedSandbox",
    "Refused",
    "TooLong",
    "render_bounded",
    "render_budget",
]

#: Longest rendered instructions the hosted APIs accept.
MAX_INSTRUCTIONS = 32_768

#: Rendering stops once the output passes this many characters (the limit is reported then).
_RENDER_CUTOFF = 4 * MAX_INSTRUCTIONS
#: Seconds one render (the instructions of one spec, partials included) may take.
RENDER_TIME_S = 2.0
#: Loop steps one render may take, all loops together.
MAX_ITERATIONS = 100_000
#: Most characters (text) or items (lists) any value made while rendering may hold.
MAX_VALUE = 1_000_000
#: Largest integer a template may make, in bits (``2 ** 10000`` is about 3,000 digits).
MAX_INT_BITS = 10_000


class Refused(SecurityError):
    """A template asked for more than a render may take (time, loop steps, a value's size) or
    for a partial outside the partials folder."""


class _Budget:
    """The time and loop steps left to one render."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + RENDER_TIME_S
        self.steps = 0

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise Refused(f"rendering took longer than {RENDER_TIME_S:g} s; refused")

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_ITERATIONS:
            raise Refused(f"loops ran more than {MAX_ITERATIONS:,} steps; refused")
        self.tick()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


def _check_size(size: int, what: str = "a value") -> None:
    if size > MAX_VALUE:
        raise Refused(
            f"{what} of {size:,} characters or items is too large (at most {MAX_VALUE:,})"
        )


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict, set)):
        _check_size(len(value))
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise Refused(f"an integer of {value.bit_length():,} bits is too large")
    return value


def _width(value: Any) -> int:
    """A width or count argument, as the size it asks for (0 when it is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return MAX_VALUE + 1
    return abs(int(value))


#: The width and precision of a ``%`` conversion (``%-20.5s``, ``%*d``).
_PERCENT_SPEC = re.compile(r"%[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")
#: The format spec of a ``{}`` field, up to its end or a nested field (``{:>{width}}``).
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)([{}])")
_DIGITS = re.compile(r"\d+")


def _format_size(fmt: str, args: Iterable[Any], *, percent: bool) -> int:
    """About how long ``fmt`` (``%``-style when ``percent``, else ``str.format``) formatted with
    ``args`` can be: the widths and precisions written in its fields count, and numbers among
    the arguments count as widths when a field takes its width from them (``%*s``, ``{:{}}``)."""
    widths: list[str] = []
    takes_widths = False
    if percent:
        for width, precision in _PERCENT_SPEC.findall(fmt):
            widths += [width, precision]
        takes_widths = "*" in widths
    else:
        for spec, end in _BRACE_SPEC.findall(fmt):
            widths += _DIGITS.findall(spec)
            takes_widths = takes_widths or end == "{"
    numbers = [w for w in widths if w.isdigit()]
    if any(len(n) > 9 for n in numbers):
        return MAX_VALUE + 1
    size = len(fmt) + sum(int(n) for n in numbers)
    for arg in args:
        if takes_widths and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            size += _width(arg)
        else:
            size += len(str(arg)[: MAX_VALUE + 1])
    return size


def _lines(text: Any) -> int:
    return str(text).count("\n") + 1


def _join_size(items: Any, sep: Any) -> int:
    if not isinstance(items, (list, tuple, dict, set, str)):
        return 0  # a generator: its items were checked when they were made
    return sum(len(str(i)) for i in items) + len(str(sep)) * max(0, len(items) - 1)


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


#: Estimated result size of a str method called with (text, *args), checked before the call.
_STR_METHODS: dict[str, Callable[..., int]] = {
    "center": lambda s, width=0, *_: max(len(s), _width(width)),
    "ljust": lambda s, width=0, *_: max(len(s), _width(width)),
    "rjust": lambda s, width=0, *_: max(len(s), _width(width)),
    "zfill": lambda s, width=0, *_: max(len(s), _width(width)),
    "expandtabs": lambda s, tabsize=8, *_: len(s) + s.count("\t") * _width(tabsize),
    "replace": lambda s, old="", new="", count=-1, *_: _replace_size(s, old, new, count),
    "join": lambda s, items=(), *_: _join_size(items, s),
    "format": lambda s, *args: _format_size(s, args, percent=False),
    "format_map": lambda s, mapping=None, *_: _format_size(
        s, mapping.values() if isinstance(mapping, Mapping) else (), percent=False
    ),
    "translate": lambda s, table=None, *_: (
        len(s)
        * max(
            [1, *(len(v) for v in table.values() if isinstance(v, (str, bytes)))]
            if isinstance(table, Mapping)
            else [1]
        )
    ),
}

#: Methods that grow a list, dict or set in place: its size after them, checked before.
_GROWING: dict[str, Callable[..., int]] = {
    "append": lambda n, *_: n + 1,
    "insert": lambda n, *_: n + 1,
    "add": lambda n, *_: n + 1,
    "setdefault": lambda n, *_: n + 1,
    "extend": lambda n, items=(), *_: n + (len(items) if hasattr(items, "__len__") else 0),
    "update": lambda n, items=(), *rest: (
        n + (len(items) if hasattr(items, "__len__") else 0) + len(rest)
    ),
}


def _filter_size(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """Estimated result size of the filters that can make a value much larger than their input."""
    value, rest = (args[0], args[1:]) if args else ("", ())

    def arg(index: int, key: str, default: Any) -> Any:
        return rest[index] if len(rest) > index else kwargs.get(key, default)

    if name == "center":
        return max(len(str(value)), _width(arg(0, "width", 80)))
    if name == "indent":
        width = arg(0, "width", 4)
        per_line = len(width) if isinstance(width, str) else _width(width)
        return len(str(value)) + _lines(value) * per_line
    if name == "format":
        return _format_size(str(value), (*rest, *kwargs.values()), percent=True)
    if name == "wordwrap":
        wrap = arg(3, "wrapstring", "\n")
        return len(str(value)) * (1 + len(str(wrap or "\n")))
    if name == "replace":
        return _replace_size(value, arg(0, "old", ""), arg(1, "new", ""), arg(2, "count", -1))
    if name == "join":
        return _join_size(value, arg(0, "d", ""))
    if name in ("batch", "slice"):
        return _width(arg(0, "linecount" if name == "batch" else "slices", 0))
    if name == "round":  # an integer rounded to -N digits computes 10 ** N
        return _width(arg(0, "precision", 0)) * MAX_VALUE // 1000
    if name == "tojson":
        return len(str(value)) * (1 + _width(arg(0, "indent", 0)))
    return 0


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_size(_filter_size(name, _plain_args(func, args), kwargs), f"`{name}`'s result")
        return _sized(func(*args, **kwargs))

    return guarded


def _plain_args(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The filter's arguments without the environment / context Jinja2 passes first."""
    if getattr(func, "jinja_pass_arg", None) is not None and args:
        return args[1:]
    return args


class _Codegen(CodeGenerator):
    """Jinja2's code generator, with every loop's iterable and every ``~`` going through the
    environment, where the budget and sizes are checked (the sandbox has no hook for either)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        hook = node.iter
        guarded = (
            isinstance(hook, nodes.Call)
            and isinstance(hook.node, nodes.EnvironmentAttribute)
            and hook.node.name == "kit_loop"
        )
        if not guarded:
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("kit_loop"), [hook], [], None, None, lineno=hook.lineno
            )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.kit_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class PartialsLoader(jinja2.BaseLoader):
    """Partials from one folder: a name resolving (links followed) outside it, or to anything
    but a regular file, is refused before it is opened."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if self.folder is None:
            raise jinja2.TemplateNotFound(template)
        path = self.folder.joinpath(*split_template_path(template))
        try:
            data = read_regular_file(path, within=[self.folder], limit=MAX_FILE_BYTES)
        except FileRefused as exc:
            raise Refused(f"partial `{template}`: {exc}") from None
        except OSError:
            raise jinja2.TemplateNotFound(template) from None
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(f"partial `{template}` is not valid UTF-8") from None
        return source, str(path), lambda: False


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus the budget and the size checks described in the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _Codegen

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and ints and right > 0:
            if max(left.bit_length() - 1, 0) * right > MAX_INT_BITS:
                raise Refused(f"{left} ** {right} is too large (over {MAX_INT_BITS:,} bits)")
        elif operator == "*" and ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                raise Refused(f"a product of over {MAX_INT_BITS:,} bits is too large")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                if sized and len(seq) * times > _RENDER_CUTOFF:
                    raise TooLong(len(seq) * times)
        elif operator == "+" and isinstance(left, (str, list, tuple)):
            if isinstance(right, (str, list, tuple)):
                _check_size(len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            args = right if isinstance(right, tuple) else (right,)
            _check_size(_format_size(left, args, percent=True), "a `%` formatted text")
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        estimate = _STR_METHODS.get(name)
        if isinstance(owner, bytes):
            owner = owner.decode("latin-1")  # same sizes, one set of estimates
        if isinstance(owner, str) and estimate is not None:
            _check_size(estimate(owner, *args, *kwargs.values()), "a method's result")
        grows = _GROWING.get(name)
        if isinstance(owner, (list, dict, set)) and grows is not None:
            _check_size(grows(len(owner), *args, *kwargs.values()), "a list, dict or set")
        result = SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        if isinstance(owner, (list, dict, set)):
            _sized(owner)
        return _sized(result)

    def kit_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:
                budget.step()
            yield item

    def kit_concat(self, parts: tuple[Any, ...]) -> str:
        _tick()
        texts = [str(part) for part in parts]
        _check_size(sum(len(t) for t in texts), "a `~` joined text")
        return "".join(texts)


class TooLong(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def render_bounded(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render chunk by chunk within the budget, and stop early once the text is far over the
    limit."""
    parts: list[str] = []
    size = 0
    token = _BUDGET.set(_BUDGET.get() or _Budget())
    try:
        for chunk in template.generate(**variables):
            parts.append(chunk)
            size += len(chunk)
            if size > _RENDER_CUTOFF:
                raise TooLong(size)
            _tick()
    finally:
        _BUDGET.reset(token)
    return "".join(parts)  # what render() gives, without building a huge string first


@contextlib.contextmanager
def render_budget() -> Iterator[None]:
    """One time and loop budget for everything rendered inside (compiling included)."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)
