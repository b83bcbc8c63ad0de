"""Functions the `python:` assertion tests import by `module:function`."""

from __future__ import annotations


def mentions_order(turn):
    return "order" in turn.reply


def with_reason(turn):
    return ("42" in turn.reply, f"looked for 42 in {len(turn.reply)} characters")


async def async_check(turn):
    return turn.reply.startswith("It")


def explodes(turn):
    raise RuntimeError("boom")


def answers_garbage(turn):
    return "yes"


not_callable = 42
