"""Retry policy shared by both hooks: exponential backoff with jitter (tenacity) that
honours the server's ``Retry-After`` advice when a :class:`RateLimited` error carries it."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from koppel.hooks.errors import KoppelAPIError, RateLimited

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns ``None`` when the header is missing or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    ``initial`` doubles per attempt up to ``maximum``, plus up to ``jitter`` seconds of
    random jitter; a server's ``Retry-After`` (capped at ``max_retry_after``) replaces
    the backoff for that attempt."""

    attempts: int = 8
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        rng = rng or random
        base = min(self.maximum, self.initial * (2 ** max(0, attempt - 1)))
        return base + rng.uniform(0, self.jitter)

    def wait_for(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(self.max_retry_after, exc.retry_after) + random.uniform(0, self.jitter / 4)
        return self.backoff(state.attempt_number)

    def call(self, fn: Callable[[], T], *, retry_if: Callable[[BaseException], bool] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``fn`` until it succeeds, raises a non-retryable error or attempts run out;
        the last error is re-raised as is."""
        predicate = retry_if or is_retryable
        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=self.wait_for,
                            retry=retry_if_exception(predicate), reraise=True, sleep=sleep)
        return retrying(fn)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, KoppelAPIError) and exc.retryable
