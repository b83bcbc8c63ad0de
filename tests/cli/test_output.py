"""Printing helpers of the commands: the one-line text of an error."""

from __future__ import annotations

import httpx
import pytest

from assistant_kit.api.wire import wire_errors
from assistant_kit.cli.output import error_text
from assistant_kit.errors import ApiConnectionError, ApiError, KitError


def refused(url: str) -> ApiConnectionError:
    request = httpx.Request("GET", url, headers={"Authorization": "Bearer sk-secret"})
    with pytest.raises(ApiConnectionError) as info, wire_errors("openai"):
        raise httpx.ConnectError("All connection attempts failed", request=request)
    return info.value


def test_an_unreachable_target_is_named_by_scheme_host_and_port_only() -> None:
    exc = refused("http://user:pw@127.0.0.1:9/v1/assistants?after=asst_1")
    assert error_text(exc) == (
        "Error: cannot reach http://127.0.0.1:9: openai: ConnectError: "
        "All connection attempts failed\n"
        "hint: nothing listens on port 9 of this machine; start the server with "
        "`kit serve --port 9` (or fix the target's base_url in kit.yaml)"
    )


def test_a_remote_target_that_refuses_gets_no_kit_serve_hint() -> None:
    exc = refused("https://api.example.test/v1/assistants")
    assert "hint" not in error_text(exc) and "kit serve" not in error_text(exc)


def test_a_connection_error_without_its_request_names_the_target() -> None:
    exc = ApiConnectionError("openai: ReadTimeout: timed out", dialect="openai")
    assert error_text(exc) == "Error: cannot reach the target: openai: ReadTimeout: timed out"


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        pytest.param(KitError("boom"), "Error: boom", id="kit-error"),
        pytest.param(
            ApiError(404, "not_found", "no such assistant"),
            "Error: 404 not_found: no such assistant",
            id="api-error",
        ),
    ],
)
def test_other_errors_print_as_they_are(exc: KitError, text: str) -> None:
    assert error_text(exc) == text
