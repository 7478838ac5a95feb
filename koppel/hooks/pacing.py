"""Client-side pacing, so a long sync slows down before a rate limit instead of collecting
429s, and call counting by endpoint template.

- :class:`SlidingWindowLimiter` — at most ``limit`` calls per ``seconds`` in this process
  (Lightspeed's 20/s per shop; QBO's 500/min, 10/s and 40 batch requests/min per realm).
- :class:`HeaderPacer` — reads Lightspeed's slash-separated ``X-RateLimit-*`` windows
  (5 min / hour / day) and spreads the remaining calls over the time left in each window.
- :class:`CallCounter` — ``"GET orders/{id}.json" -> n``, for the activity log and benchmarks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Mapping

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class SlidingWindowLimiter:
    """Blocks until a call fits in the window. Thread-safe; per process."""

    def __init__(self, limit: int, seconds: float, *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:
        if limit < 1 or seconds <= 0:
            raise ValueError("limit must be >= 1 and seconds > 0")
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def _wait_needed(self, now: float) -> float:
        while self._stamps and self._stamps[0] <= now - self.seconds:
            self._stamps.popleft()
        if len(self._stamps) < self.limit:
            return 0.0
        return self._stamps[0] + self.seconds - now

    def acquire(self) -> float:
        """Take a slot, sleeping as needed; returns the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._stamps.append(now)
                    return slept
            self._sleep(wait)
            slept += wait


@dataclass(frozen=True)
class RateWindow:
    limit: int
    remaining: int
    reset: float  # seconds until the window resets


def parse_rate_headers(headers: Mapping[str, str]) -> list[RateWindow]:
    """``X-RateLimit-Limit: 300/3000/12000`` etc. into one :class:`RateWindow` per window.

    Returns ``[]`` when the headers are missing or malformed."""
    try:
        limits = [int(v) for v in headers["x-ratelimit-limit"].split("/")]
        remaining = [int(v) for v in headers["x-ratelimit-remaining"].split("/")]
        resets = [float(v) for v in headers["x-ratelimit-reset"].split("/")]
    except (KeyError, ValueError, AttributeError):
        return []
    if not (len(limits) == len(remaining) == len(resets)):
        return []
    return [RateWindow(l, r, s) for l, r, s in zip(limits, remaining, resets)]


def reset_fallback(headers: Mapping[str, str]) -> float | None:
    """Seconds until the first exhausted window resets (for a 429 without Retry-After)."""
    windows = parse_rate_headers(headers)
    spent = [w.reset for w in windows if w.remaining <= 0]
    if spent:
        return max(spent)
    return min((w.reset for w in windows), default=None)


class HeaderPacer:
    """Spreads calls so no Lightspeed window runs dry before it resets.

    While a window has more than ``low_water`` of its limit left, calls go at full speed;
    below that each call waits ``reset / remaining`` of that window, so the remaining
    budget lasts until the reset. A spent window waits for its reset. The delay is the
    largest over the windows; when it exceeds ``max_pause`` the caller should give up
    (see :meth:`delay`)."""

    def __init__(self, *, low_water: float = 0.2, clock: Clock = time.monotonic) -> None:
        self.low_water = low_water
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: list[RateWindow] = []
        self._seen_at = 0.0
        self._not_before = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        windows = parse_rate_headers(headers)
        if windows:
            with self._lock:
                self._windows = windows
                self._seen_at = self._clock()

    def hold_until(self, seconds_from_now: float) -> None:
        """After a 429, make every caller wait at least this long."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds_from_now)

    def delay(self) -> float:
        """Seconds the next call should wait (0 when there is budget)."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._seen_at
            wait = max(0.0, self._not_before - now)
            for window in self._windows:
                left = window.reset - elapsed
                if left <= 0:
                    continue  # the window has reset since we last heard
                if window.remaining <= 0:
                    wait = max(wait, left)
                elif window.remaining < window.limit * self.low_water:
                    wait = max(wait, left / window.remaining)
            return wait

    def spend(self) -> None:
        """Account one call against the last known budget (until fresh headers arrive)."""
        with self._lock:
            self._windows = [RateWindow(w.limit, max(0, w.remaining - 1), w.reset)
                             for w in self._windows]


class CallCounter:
    """Thread-safe count of API calls by ``"METHOD template"``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, method: str, template: str) -> None:
        with self._lock:
            self._counts[f"{method.upper()} {template}"] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
