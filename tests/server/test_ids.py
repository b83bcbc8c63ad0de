from __future__ import annotations

import pytest

from assistant_kit.server.ids import new_id, now_ms, parse_id, render_id


def test_a_message_id_renders_with_each_dialects_prefix() -> None:
    uid = new_id()
    assert render_id("message", uid, "dashscope") == f"message_{uid}"
    assert render_id("message", uid, "openai") == f"msg_{uid}"
    assert render_id("message", None, "openai") is None


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
