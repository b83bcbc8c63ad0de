from __future__ import annotations

import random

import httpx
import pytest

from assistant_kit.api.wire import decode
from assistant_kit.errors import ApiConnectionError, ApiError
from assistant_kit.sync.retry import RetryPolicy, is_ambiguous, is_retryable


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def error_response(status: int, headers: dict[str, str]) -> ApiError:
    response = httpx.Response(status, headers=headers, json={"error": {"message": "no"}})
    with pytest.raises(ApiError) as info:
        decode(response, "openai")
    return info.value


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"Retry-After": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after-ms": "250", "Retry-After": "3"}, 0.25, id="ms-wins"),
        pytest.param({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0, id="past-date"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({}, None, id="none"),
    ],
)
def test_retry_after_is_read_from_the_response(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert error_response(429, headers).retry_after == seconds


@pytest.mark.parametrize(
    ("error", "retryable", "ambiguous"),
    [
        pytest.param(ApiError(429, "rate", "x"), True, False, id="429"),
        pytest.param(ApiError(500, "boom", "x"), True, True, id="500"),
        pytest.param(ApiError(503, "boom", "x"), True, True, id="503"),
        pytest.param(ApiConnectionError("timeout"), True, True, id="no-answer"),
        pytest.param(ApiError(400, "bad", "x"), False, False, id="400"),
        pytest.param(ApiError(404, "gone", "x"), False, False, id="404"),
    ],
)
def test_which_failures_are_retried(error: ApiError, retryable: bool, ambiguous: bool) -> None:
    assert is_retryable(error) is retryable
    assert is_ambiguous(error) is ambiguous


def test_backoff_grows_exponentially_within_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=random.Random(1))
    error = ApiError(503, "busy", "x")
    for retry, ceiling in enumerate([1, 2, 4, 8, 8, 8]):
        waits = [policy.delay(retry, error) for _ in range(50)]
        assert all(0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered


def test_retry_after_is_honoured_over_backoff() -> None:
    policy = RetryPolicy(base_delay=0.4, max_delay=30.0)
    error = ApiError(429, "rate", "x", retry_after=7.0)
    assert 7.0 <= policy.delay(0, error) <= 7.7
    capped = ApiError(429, "rate", "x", retry_after=600.0)
    assert policy.delay(0, capped) == 30.0


@pytest.mark.anyio
async def test_call_retries_until_success_and_reports_each_retry() -> None:
    sleeps = Sleeps()
    failures = [ApiError(429, "rate", "x", retry_after=2.0), ApiConnectionError("reset")]
    seen: list[int] = []

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=3, sleep=sleeps)
    result = await policy.call(flaky, on_retry=lambda n, e, w: seen.append(n))
    assert result == "ok"
    assert seen == [1, 2]
    assert 2.0 <= sleeps.waits[0] <= 2.2


@pytest.mark.anyio
async def test_call_gives_up_after_the_attempts_and_never_retries_a_400() -> None:
    sleeps = Sleeps()
    calls = 0

    async def always(status: int) -> None:
        nonlocal calls
        calls += 1
        raise ApiError(status, "e", "x")

    with pytest.raises(ApiError):
        await RetryPolicy(attempts=4, sleep=sleeps).call(lambda: always(500))
    assert calls == 4 and len(sleeps.waits) == 3
    calls = 0
    with pytest.raises(ApiError):
        await RetryPolicy(attempts=4, sleep=sleeps).call(lambda: always(400))
    assert calls == 1
