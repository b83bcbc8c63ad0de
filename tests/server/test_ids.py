from __future__ import annotations

import pytest

from assistant_kit.server.dialects import DASHSCOPE, DIALECTS, OPENAI
from assistant_kit.server.ids import ACCEPTED, new_id, now_ms, parse_id


def test_a_message_id_renders_with_each_dialects_prefix() -> None:
    uid = new_id()
    assert DASHSCOPE.id("message", uid) == f"message_{uid}"
    assert OPENAI.id("message", uid) == f"msg_{uid}"
    assert OPENAI.id("message", None) is None


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_id_a_dialect_writes_parses_in_every_dialect(dialect) -> None:
    uid = new_id()
    assert set(dialect.prefixes) == set(ACCEPTED)
    for kind in dialect.prefixes:
        assert parse_id(kind, str(dialect.id(kind, uid))) == uid


@pytest.mark.parametrize("prefix", ["message_", "msg_"])
def test_either_message_prefix_parses_to_the_stored_id(prefix: str) -> None:
    uid = new_id()
    assert parse_id("message", prefix + uid) == uid


@pytest.mark.parametrize(
    "wire_id",
    [
        pytest.param("asst_", id="empty"),
        pytest.param("asst_not-a-uuid", id="not-uuid"),
        pytest.param("thread_3f2a91c4-0000-4000-8000-000000000000", id="other-kind"),
        pytest.param("3f2a91c4-0000-4000-8000-000000000000", id="no-prefix"),
    ],
)
def test_ids_that_cannot_be_assistants_do_not_parse(wire_id: str) -> None:
    assert parse_id("assistant", wire_id) is None


def test_now_ms_is_unix_milliseconds() -> None:
    assert len(str(now_ms())) == 13
