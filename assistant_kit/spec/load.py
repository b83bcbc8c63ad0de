"""Find spec files and parse YAML, keeping ``file:line:col`` for every node.

PyYAML's own loaders forget positions, keep the last of two duplicate keys without a word and
expand aliases blindly. This module drives the YAML *event* stream (libyaml when available)
and builds plain Python values itself, so it can

* record the position of every value and every mapping key (``Document.positions``),
* refuse duplicate keys, tags it does not know and recursive aliases,
* count nodes while composing, aliases included at their full expanded size, and refuse an
  alias bomb ("billion laughs") long before anything is expanded: an alias only stores a
  reference to the anchored value, never a copy,
* refuse files over ``MAX_FILE_BYTES`` without reading them, and bytes that are not UTF-8,
* refuse, before opening it, a file whose real path (links resolved) is outside the folders it
  may come from, or that is not a regular file (a device such as ``/dev/zero``, a FIFO, a socket),
* refuse ``.nan`` / ``.inf`` (and numbers such as ``1e400`` that overflow to them): JSON has no
  such numbers, so no API could take them.

Every refusal is a ``SpecError`` whose issues carry the 1-based position of the offending text.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from assistant_kit.errors import SpecError, SpecIssue

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "FileRefused",
    "JsonPath",
    "Position",
    "display_path",
    "find_spec_files",
    "parse_yaml",
    "read_document",
    "read_regular_file",
]

#: A spec file larger than this is refused without being read.
MAX_FILE_BYTES = 1_000_000
#: Most values one document may hold, counting an alias at the size of what it refers to.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64

#: Where a value sits inside a document: keys and list indexes from the root.
JsonPath = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
#: Tags whose scalars are kept as the text written (timestamps stay strings: JSON has no dates).
_TEXT_TAGS = {_TAG + "str", _TAG + "timestamp"}
_BUILD_TAGS = {
    _TAG + "int": _constructor.construct_yaml_int,
    _TAG + "float": _constructor.construct_yaml_float,
    _TAG + "bool": _constructor.construct_yaml_bool,
    _TAG + "null": _constructor.construct_yaml_null,
}
_COLLECTION_TAGS = {
    "!",
    _TAG + "map",
    _TAG + "seq",
    _TAG + "omap",  # accepted as plain mappings / lists
}


class Position(NamedTuple):
    """A 1-based line and column in a file; ``style`` is the YAML scalar style (``|``, ``>``...).

    A named tuple rather than a dataclass: one is made for every node, and this is the hot path.
    """

    line: int
    col: int
    style: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed YAML file: plain data plus the position of every value and mapping key.

    ``positions[path]`` is where the value at ``path`` starts; ``key_positions[path]`` is where
    its key is written (for values inside mappings).
    """

    file: str
    data: Any
    text: str = ""
    positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)

    def position(self, path: Sequence[str | int]) -> Position:
        """Where the value at ``path`` starts, or its nearest recorded ancestor."""
        key = tuple(path)
        while key:
            found = self.positions.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return self.positions.get((), Position(1, 1))

    def key_position(self, path: Sequence[str | int]) -> Position:
        """Where the key of the value at ``path`` is written (else where the value starts)."""
        found = self.key_positions.get(tuple(path))
        return found if found is not None else self.position(path)

    def issue(self, path: Sequence[str | int], message: str, *, at_key: bool = False) -> SpecIssue:
        """A ``SpecIssue`` pointing at the value (or its key) at ``path``."""
        pos = self.key_position(path) if at_key else self.position(path)
        return SpecIssue(self.file, pos.line, pos.col, message)


class _Refused(Exception):
    """A problem that stops parsing of one file."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


def display_path(path: Path) -> str:
    """The path as users see it in messages: relative to the working directory when inside it.

    Symbolic links are kept as written (a dangling link is named, not the file it points to).
    """
    cwd = Path.cwd()
    for candidate, base in ((Path(os.path.abspath(path)), cwd), (path.resolve(), cwd.resolve())):
        try:
            return str(candidate.relative_to(base))
        except ValueError:
            continue
    return str(path)


class FileRefused(OSError):
    """A file that is not read: outside the allowed folders, not a regular file, or too large."""


def read_regular_file(path: Path, *, within: Iterable[Path] | None, limit: int) -> bytes:
    """The bytes of ``path`` if its real path lies inside one of ``within`` (any path when
    None) and it is a regular file of at most ``limit`` bytes; otherwise ``FileRefused`` (or the
    ``OSError`` of a missing file). Checked before the file is opened, and again on the open file
    descriptor, so neither a link nor a FIFO swapped in between is followed."""
    real = Path(os.path.realpath(path))
    if within is not None:
        roots = [Path(os.path.realpath(folder)) for folder in within]
        if not any(real == root or real.is_relative_to(root) for root in roots):
            raise FileRefused("it is a link to a file outside the project; refused")
    info = os.stat(real)
    _check_regular(info, limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)
    try:
        _check_regular(os.fstat(fd), limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(f"file is too large: more than {limit:,} bytes")
    return b"".join(chunks)


def _check_regular(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused("not a regular file (a device, FIFO, socket or folder); refused")
    if info.st_size > limit:
        raise FileRefused(
            f"file is too large: {info.st_size:,} bytes (spec files are limited to {limit:,} bytes)"
        )


def read_document(
    path: Path,
    file: str | None = None,
    *,
    allow_empty: bool = False,
    within: Iterable[Path] | None = None,
) -> Document:
    """Read and parse one YAML file; raises ``SpecError`` with the position of any problem.

    An empty file (nothing but comments) is refused unless ``allow_empty`` (kit.yaml), when its
    ``data`` is ``None``. With ``within``, a file whose real path is outside those folders is
    refused unread; a file that is not a regular file always is.

    >>> doc = read_document(Path("assistants/art-maestro.yaml"))
    >>> doc.data["model"], doc.position(["model"]).line
    """
    shown = file if file is not None else display_path(path)
    try:
        raw = read_regular_file(path, within=within, limit=MAX_FILE_BYTES)
    except FileRefused as exc:
        raise SpecError([SpecIssue(shown, 1, 1, str(exc))]) from None
    except OSError as exc:
        raise SpecError([SpecIssue(shown, 1, 1, f"cannot read file: {exc.strerror}")]) from exc
    return parse_yaml(raw, shown, allow_empty=allow_empty)


def parse_yaml(source: bytes | str, file: str, *, allow_empty: bool = False) -> Document:
    """Parse one YAML document, keeping positions; raises ``SpecError`` on any problem."""
    if isinstance(source, bytes):
        if len(source) > MAX_FILE_BYTES:
            raise SpecError(
                [
                    SpecIssue(
                        file,
                        1,
                        1,
                        f"file is too large: {len(source):,} bytes (limit {MAX_FILE_BYTES:,})",
                    )
                ]
            )
        try:
            text = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            body = source.removeprefix(b"\xef\xbb\xbf")  # the decoder's offsets skip a BOM
            before = body[: exc.start].decode("utf-8", "replace")
            line, col = _text_position(before, len(before))
            bad = body[exc.start : exc.start + 1].hex()
            raise SpecError(
                [
                    SpecIssue(
                        file, line, col, f"file is not valid UTF-8 (byte 0x{bad}); save it as UTF-8"
                    )
                ]
            ) from None
    else:
        text = source
    builder = _Builder(file, text)
    try:
        data = builder.build(_events(text), allow_empty=allow_empty)
    except _Refused as exc:
        raise SpecError([SpecIssue(file, exc.line, exc.col, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_issue(file, text, exc)]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _reader_position(text, int(exc.position))
        char = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        )
        message = f"character U+{char:04X} is not allowed in YAML (control characters are refused)"
        raise SpecError([SpecIssue(file, line, col, message)]) from None
    except yaml.YAMLError as exc:  # pragma: no cover - libyaml reports unmarked errors rarely
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError([SpecIssue(file, 1, 1, f"YAML error: {first}")]) from None
    if builder.issues:
        raise SpecError(builder.issues)
    return Document(file, data, text, builder.positions, builder.key_positions)


#: Line breaks as YAML counts them (and so every other position of this module).
_YAML_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _reader_position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a reader error; libyaml reports a byte offset into the
    UTF-8 text, the pure-Python reader a character index."""
    if _Loader is not yaml.SafeLoader:
        offset = len(text.encode("utf-8")[:offset].decode("utf-8", "ignore"))
    return _text_position(text, offset)


def _text_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``, lines broken as YAML does."""
    index = max(0, min(index, len(text)))
    line, start = 1, 0
    for found in _YAML_BREAK.finditer(text, 0, index):
        line, start = line + 1, found.end()
    return line, index - start + 1


def _syntax_issue(file: str, text: str, exc: yaml.MarkedYAMLError) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    col = mark.column + 1 if mark is not None else 1
    problem = exc.problem or "syntax error"
    lines = text.splitlines()
    # A tab in the indentation is the most common cause; say so plainly, at the tab.
    for number in range(min(line, len(lines)), 0, -1):
        content = lines[number - 1]
        indent = content[: len(content) - len(content.lstrip(" \t"))]
        if "\t" in indent:
            return SpecIssue(
                file,
                number,
                indent.index("\t") + 1,
                "tab character in indentation: YAML indents with spaces only",
            )
        if content.strip() and number < line:
            break
    at = lines[line - 1][col - 1 : col] if 0 < line <= len(lines) else ""
    if "\t" in problem or "tab" in problem or at == "\t":
        return SpecIssue(file, line, col, "tab character where YAML expects spaces")
    context = ""
    if exc.context and exc.context != problem:
        where = exc.context_mark
        if where is not None and where.line + 1 != line:
            context = (
                f" ({exc.context} started at line {where.line + 1}, column {where.column + 1})"
            )
        else:
            context = f" ({exc.context})"
    return SpecIssue(file, line, col, f"YAML syntax error: {problem}{context}")


def _line_col(event: Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _Builder:
    """Composes plain values from YAML events, recording positions and counting nodes."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.positions: dict[JsonPath, Position] = {}
        self.key_positions: dict[JsonPath, Position] = {}
        self.issues: list[SpecIssue] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0

    def build(self, events: Iterable[Event], *, allow_empty: bool = False) -> Any:
        stream: Iterator[Event] = iter(events)
        first = next(stream)
        assert isinstance(first, StreamStartEvent)
        event = next(stream)
        if isinstance(event, StreamEndEvent):
            if allow_empty:
                return None
            raise _Refused(1, 1, "file is empty: a spec needs at least `name` and `model`")
        assert isinstance(event, DocumentStartEvent)
        data, _ = self._node(next(stream), stream, (), 0)
        end = next(stream)
        assert isinstance(end, DocumentEndEvent)
        after = next(stream)
        if isinstance(after, DocumentStartEvent):
            raise _Refused(
                *_line_col(after),
                "a spec file holds one YAML document; remove the second `---` document",
            )
        return data

    def _count(self, size: int, event: Event) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise _Refused(
                *_line_col(event),
                f"document too large: more than {MAX_NODES:,} values once aliases are "
                "expanded (is this an alias bomb?)",
            )

    def _node(
        self, event: Event, stream: Iterator[Event], path: JsonPath, depth: int
    ) -> tuple[Any, int]:
        kind = type(event)
        if kind is AliasEvent:
            return self._alias(event, path)
        if depth > MAX_DEPTH:
            raise _Refused(*_line_col(event), f"nested more than {MAX_DEPTH} levels deep")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._count(0, event)
        mark: Any = event.start_mark
        anchor = event.anchor  # type: ignore[attr-defined]
        if anchor is not None:
            self.open_anchors.add(anchor)
        value: Any
        if kind is ScalarEvent:
            style = event.style or None  # type: ignore[attr-defined]
            self.positions[path] = Position(mark.line + 1, mark.column + 1, style)
            value, size = self._scalar(event), 1  # type: ignore[arg-type]
        else:
            self.positions[path] = Position(mark.line + 1, mark.column + 1)
            if kind is SequenceStartEvent:
                self._check_collection_tag(event, "list")
                value, size = self._sequence(stream, path, depth)
            elif kind is MappingStartEvent:
                self._check_collection_tag(event, "mapping")
                value, size = self._mapping(stream, path, depth)
            else:  # pragma: no cover - the parser guarantees a node event here
                raise _Refused(*_line_col(event), f"unexpected YAML event {kind.__name__}")
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = (value, size)
        return value, size

    def _alias(self, event: Event, path: JsonPath) -> tuple[Any, int]:
        line, col = _line_col(event)
        anchor = str(event.anchor)  # type: ignore[attr-defined]
        if anchor in self.open_anchors:
            raise _Refused(line, col, f"recursive alias `*{anchor}` refers to itself")
        if anchor not in self.anchors:
            raise _Refused(line, col, f"alias `*{anchor}` has no anchor `&{anchor}` before it")
        shared, size = self.anchors[anchor]
        self._count(size, event)
        self.positions[path] = Position(line, col)
        return shared, size

    def _check_collection_tag(self, event: Event, kind: str) -> None:
        tag = event.tag  # type: ignore[attr-defined]
        if tag is not None and tag not in _COLLECTION_TAGS:
            shown = tag.replace(_TAG, "!!")
            raise _Refused(*_line_col(event), f"unsupported YAML tag `{shown}` on a {kind}")

    def _scalar(self, event: ScalarEvent) -> Any:
        tag = event.tag
        if tag is None:
            if event.style:  # quoted or block scalars without a tag are always text
                return event.value
            tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        elif tag == "!":
            return event.value
        if tag in _TEXT_TAGS:
            return event.value
        build = _BUILD_TAGS.get(tag)
        if build is None:
            shown = tag.replace(_TAG, "!!")
            raise _Refused(*_line_col(event), f"unsupported YAML tag `{shown}`")
        try:
            value = build(yaml.ScalarNode(tag, event.value))
        except Exception:  # PyYAML's constructors raise IndexError/KeyError on a value that
            # does not fit the tag (`!!int ` with nothing after it, `!!bool maybe`)
            shown = tag.replace(_TAG, "!!")
            raise _Refused(
                *_line_col(event), f"`{event.value}` is not a valid `{shown}` value"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            line, col = _line_col(event)
            self.issues.append(
                SpecIssue(
                    self.file,
                    line,
                    col,
                    f"`{event.value}` is not a finite number (JSON, and so every API, has no "
                    "NaN or Infinity)",
                )
            )
        return value

    def _sequence(
        self, stream: Iterator[Event], path: JsonPath, depth: int
    ) -> tuple[list[Any], int]:
        items: list[Any] = []
        size = 1
        for event in stream:
            if type(event) is SequenceEndEvent:
                return items, size
            value, n = self._node(event, stream, (*path, len(items)), depth + 1)
            items.append(value)
            size += n
        raise AssertionError("unterminated sequence")  # pragma: no cover

    def _mapping(
        self, stream: Iterator[Event], path: JsonPath, depth: int
    ) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        merged: list[tuple[dict[str, Any], Position]] = []
        size = 1
        for event in stream:
            kind = type(event)
            if kind is MappingEndEvent:
                break
            mark: Any = event.start_mark
            key_pos = Position(mark.line + 1, mark.column + 1)
            if kind is ScalarEvent:
                key = event.value  # type: ignore[attr-defined]
                is_merge = key == "<<" and event.tag is None and not event.style  # type: ignore[attr-defined]
            elif kind is AliasEvent and isinstance(
                self.anchors.get(str(event.anchor), (None, 0))[0],  # type: ignore[attr-defined]
                str,
            ):
                key, is_merge = self.anchors[str(event.anchor)][0], False  # type: ignore[attr-defined]
            else:
                raise _Refused(
                    key_pos.line,
                    key_pos.col,
                    "mapping keys must be plain text, not lists or mappings",
                )
            value_event = next(stream)
            if is_merge:
                value, n = self._node(value_event, stream, (*path, "<<"), depth + 1)
                self.positions.pop((*path, "<<"), None)
                sources = value if isinstance(value, list) else [value]
                for source in sources:
                    if not isinstance(source, dict):
                        raise _Refused(key_pos.line, key_pos.col, "`<<` merges mappings only")
                    merged.append((source, key_pos))
                size += n
                continue
            child: JsonPath = (*path, key)
            if key in result:
                first = self.key_positions[child]
                self.issues.append(
                    SpecIssue(
                        self.file,
                        key_pos.line,
                        key_pos.col,
                        f"duplicate key `{key}` (first defined at line {first.line}); "
                        "YAML would silently keep only the last one",
                    )
                )
                _, n = self._node(value_event, stream, (*path, f"<duplicate {key}>"), depth + 1)
                size += n
                continue
            self.key_positions[child] = key_pos
            result[key], n = self._node(value_event, stream, child, depth + 1)
            size += n
        for source, key_pos in merged:
            for key, value in source.items():
                if key not in result:
                    result[key] = value
                    merged_path: JsonPath = (*path, key)
                    self.key_positions[merged_path] = key_pos
                    self.positions[merged_path] = key_pos
        return result, size


def _events(text: str) -> Iterator[Event]:
    """YAML events straight from the parser (libyaml when available)."""
    loader = _Loader(text)
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return
            yield event
            if type(event) is StreamEndEvent:
                return
    finally:
        loader.dispose()


def find_spec_files(paths: Iterable[Path], *, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` file named or found (recursively) under ``paths``, sorted.

    Hidden folders and the ``exclude`` folders (the partials folder) are skipped; a file named
    explicitly is always taken.
    """
    skip = {p.resolve() for p in exclude}
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_file():
            found[path] = None
            continue
        if not path.is_dir():
            continue
        for root, dirs, files in os.walk(path):
            here = Path(root)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and (here / d).resolve() not in skip
            )
            for name in sorted(files):
                if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                    found[here / name] = None
    return sorted(found)
