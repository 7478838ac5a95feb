"""Lightspeed's per-key rate limits: 300 / 5 min, 3,000 / hour, 12,000 / day, 20 / s.

Windows slide and are divided by the sandbox time scale. Every API response carries
``X-RateLimit-Limit: 300/3000/12000``, ``X-RateLimit-Remaining: a/b/c`` and
``X-RateLimit-Reset: x/y/z`` (seconds until each window frees a request). Over a limit
the answer is 429 with ``Retry-After`` in seconds, or as an HTTP date when
``retry_after_style`` is ``"http-date"`` (live shops differ).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Literal

from koppel.limits import LIGHTSPEED

from ..control import SandboxControl, SlidingWindow, monotonic

RetryAfterStyle = Literal["seconds", "http-date"]
WINDOW_SECONDS = tuple(seconds for _, seconds in LIGHTSPEED.windows)
DEFAULT_LIMITS = tuple(limit for limit, _ in LIGHTSPEED.windows)
DEFAULT_PER_SECOND = LIGHTSPEED.requests_per_second


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Sliding windows per API key; thread-safe."""

    def __init__(self, control: SandboxControl) -> None:
        self.control = control
        self._lock = threading.Lock()
        self.retry_after_style: RetryAfterStyle = "seconds"
        self.limits = DEFAULT_LIMITS
        self.per_second = DEFAULT_PER_SECOND
        self.enabled = True
        self._keys: dict[str, tuple[list[SlidingWindow], SlidingWindow]] = {}

    def configure(self, *, limits: tuple[int, int, int] | None = None,
                  per_second: int | None = None, retry_after: RetryAfterStyle | None = None,
                  enabled: bool | None = None) -> None:
        with self._lock:
            if limits is not None:
                self.limits = limits
            if per_second is not None:
                self.per_second = per_second
            if retry_after is not None:
                self.retry_after_style = retry_after
            if enabled is not None:
                self.enabled = enabled
            self._keys.clear()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def settings(self) -> dict[str, object]:
        return {"limit_5min": self.limits[0], "limit_hour": self.limits[1],
                "limit_day": self.limits[2], "per_second": self.per_second,
                "retry_after": self.retry_after_style, "enabled": self.enabled}

    def _windows(self, key: str) -> tuple[list[SlidingWindow], SlidingWindow]:
        if key not in self._keys:
            self._keys[key] = ([SlidingWindow(limit, seconds) for limit, seconds
                                in zip(self.limits, WINDOW_SECONDS)],
                               SlidingWindow(self.per_second, 1.0))
        return self._keys[key]

    def _state(self, windows: list[SlidingWindow], now: float) -> list[tuple[int, int, float]]:
        out = []
        for window in windows:
            span = self.control.window(window.seconds)
            out.append((window.limit, window.remaining(now, span), window.reset_in(now, span)))
        return out

    @staticmethod
    def _headers(state: list[tuple[int, int, float]]) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "/".join(str(limit) for limit, _, _ in state),
            "X-RateLimit-Remaining": "/".join(str(rem) for _, rem, _ in state),
            "X-RateLimit-Reset": "/".join(str(math.ceil(reset - 1e-6)) for _, _, reset in state),
        }

    def _retry_after(self, seconds: float) -> str:
        seconds = max(1, math.ceil(seconds))
        if self.retry_after_style == "http-date":
            return formatdate(time.time() + seconds, usegmt=True)
        return str(seconds)

    def take(self, key: str) -> Decision:
        """Count one request for ``key``; the headers for its response."""
        now = monotonic()
        with self._lock:
            windows, second = self._windows(key)
            state = self._state(windows, now)
            if not self.enabled:
                return Decision(True, self._headers(state))
            blocked = [reset for _, rem, reset in state if rem <= 0]
            second_span = self.control.window(1.0)
            if not blocked and second.remaining(now, second_span) <= 0:
                blocked = [second.reset_in(now, second_span)]
            if blocked:
                headers = self._headers(state)
                headers["Retry-After"] = self._retry_after(max(blocked))
                return Decision(False, headers)
            for window in windows:
                window.try_take(now, self.control.window(window.seconds))
            second.try_take(now, second_span)
            return Decision(True, self._headers(self._state(windows, now)))

    def status(self, key: str) -> dict[str, dict[str, object]]:
        """``account/ratelimit.json`` body (without counting a request)."""
        now = monotonic()
        with self._lock:
            windows, _ = self._windows(key)
            state = self._state(windows, now)
        wall = time.time()
        out = {}
        for name, (limit, remaining, reset) in zip(("limit5Min", "limitHour", "limitDay"),
                                                   state):
            reset_s = math.ceil(reset - 1e-6)
            out[name] = {"limit": limit, "remaining": remaining, "reset": reset_s,
                         "resetTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                    time.gmtime(wall + reset_s))}
        return out
