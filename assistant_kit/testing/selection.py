"""Choosing which tests run: ``-k`` expressions, ``--tag`` filters and ``--shard i/n``.

``-k`` works like pytest's: words are matched case-insensitively as substrings of the test id
(``assistant::test name``) and of its tags, combined with ``and``, ``or``, ``not`` and parentheses.
Adjacent words form one phrase (``-k "looks up"`` matches ``looks up an order``); quote a phrase
to use a keyword inside it (``-k "'and'"``).

``--shard i/n`` (1-based) sorts the selected ids and deals them round robin, so every selected test
lands in exactly one shard and the shards differ in size by at most one::

    chosen = select(tests, id_of=lambda t: t.id, tags_of=lambda t: t.tags,
                    keyword="smoke and not slow", tags=["billing"], shard=parse_shard("2/4"))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from assistant_kit.errors import ConfigError

T = TypeVar("T")


class SelectionError(ConfigError):
    """A ``-k`` expression or ``--shard`` value that cannot be used (exit 2)."""


_TOKEN = re.compile(
    r"""\s*(?:(?P<paren>[()])|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<word>[^\s()'"][^\s()]*))"""
)
_KEYWORDS = ("and", "or", "not")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "(", ")", "and", "or", "not", "text"
    text: str
    pos: int


def _tokenize(expr: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise SelectionError(f"-k {expr!r}: unexpected character at column {pos + 1}")
        start = m.start(m.lastgroup) if m.lastgroup else pos
        if m.group("paren"):
            tokens.append(_Tok(m.group("paren"), m.group("paren"), start))
        elif m.group("word") in _KEYWORDS:
            tokens.append(_Tok(m.group("word"), m.group("word"), start))
        else:
            text = m.group("word") or m.group("sq") or m.group("dq") or ""
            tokens.append(_Tok("text", text, start))
        pos = m.end()
    return tokens


Matcher = Callable[[Callable[[str], bool]], bool]


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.i = 0

    def error(self, what: str) -> SelectionError:
        where = self.tokens[self.i].pos + 1 if self.i < len(self.tokens) else len(self.expr) + 1
        return SelectionError(f"-k {self.expr!r}: {what} at column {where}")

    def peek(self) -> str | None:
        return self.tokens[self.i].kind if self.i < len(self.tokens) else None

    def parse(self) -> Matcher:
        if not self.tokens:
            return lambda _has: True
        result = self.or_expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.tokens[self.i].text!r}")
        return result

    def or_expr(self) -> Matcher:
        left = self.and_expr()
        while self.peek() == "or":
            self.i += 1
            right = self.and_expr()
            left = (lambda a, b: lambda has: a(has) or b(has))(left, right)
        return left

    def and_expr(self) -> Matcher:
        left = self.not_expr()
        while self.peek() == "and":
            self.i += 1
            right = self.not_expr()
            left = (lambda a, b: lambda has: a(has) and b(has))(left, right)
        return left

    def not_expr(self) -> Matcher:
        kind = self.peek()
        if kind == "not":
            self.i += 1
            inner = self.not_expr()
            return lambda has: not inner(has)
        if kind == "(":
            self.i += 1
            inner = self.or_expr()
            if self.peek() != ")":
                raise self.error("expected ')'")
            self.i += 1
            return inner
        if kind == "text":
            words = []
            while self.peek() == "text":
                words.append(self.tokens[self.i].text)
                self.i += 1
            phrase = " ".join(words).casefold()
            return lambda has: has(phrase)
        raise self.error("expected a word, 'not' or '('" if kind else "expression ends early")


def compile_keyword(expr: str | None) -> Callable[[str, Sequence[str]], bool]:
    """``-k EXPR`` -> ``matches(test_id, tags)``; raises ``SelectionError`` on bad syntax."""
    matcher = _Parser(expr or "").parse()

    def matches(test_id: str, tags: Sequence[str] = ()) -> bool:
        names = [test_id.casefold(), *(t.casefold() for t in tags)]
        return matcher(lambda phrase: any(phrase in name for name in names))

    return matches


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; anything else is a ``SelectionError``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise SelectionError(f"--shard {text!r}: expected i/n, e.g. 1/4")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise SelectionError(f"--shard {text!r}: i must be from 1 to n (n >= 1)")
    return Shard(index, count)


def shard_ids(ids: Iterable[str], shard: Shard) -> set[str]:
    """The ids of one shard: sorted, then dealt round robin."""
    ordered = sorted(set(ids))
    return {tid for i, tid in enumerate(ordered) if i % shard.count == shard.index - 1}


def select(
    items: Sequence[T],
    *,
    id_of: Callable[[T], str],
    tags_of: Callable[[T], Sequence[str]] = lambda _item: (),
    keyword: str | None = None,
    tags: Iterable[str] = (),
    shard: Shard | None = None,
) -> list[T]:
    """The items that match ``-k`` and carry any of ``tags`` (when given), then one shard of
    those; input order is kept."""
    matches = compile_keyword(keyword)
    wanted = {t.casefold() for t in tags}
    chosen = [
        item
        for item in items
        if matches(id_of(item), tags_of(item))
        and (not wanted or wanted & {t.casefold() for t in tags_of(item)})
    ]
    if shard is None:
        return chosen
    mine = shard_ids((id_of(item) for item in chosen), shard)
    return [item for item in chosen if id_of(item) in mine]
