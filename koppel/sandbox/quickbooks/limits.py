"""QBO's per-realm throttles: 500 requests/minute, 10 concurrent requests, 40 batch
requests/minute. Windows are shrunk by the sandbox time scale."""

from __future__ import annotations

import threading

from koppel.limits import QUICKBOOKS
from koppel.sandbox.control import SandboxControl, SlidingWindow, monotonic

REQUESTS_PER_MINUTE = QUICKBOOKS.requests_per_minute
CONCURRENT_REQUESTS = QUICKBOOKS.concurrent_requests
BATCHES_PER_MINUTE = QUICKBOOKS.batch_requests_per_minute
WINDOW_SECONDS = QUICKBOOKS.window_seconds


class RealmLimits:
    """Thread-safe throttle state of one realm."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = SlidingWindow(REQUESTS_PER_MINUTE, WINDOW_SECONDS)
        self.batches = SlidingWindow(BATCHES_PER_MINUTE, WINDOW_SECONDS)
        self.in_flight = 0

    def acquire(self, control: SandboxControl, batch: bool = False) -> bool:
        """Take one request slot (and a batch slot); False means answer 429."""
        window = control.window(WINDOW_SECONDS)
        now = monotonic()
        with self._lock:
            if self.in_flight >= CONCURRENT_REQUESTS:
                return False
            if self.requests.remaining(now, window) <= 0:
                return False
            if batch and not self.batches.try_take(now, window):
                return False
            self.requests.try_take(now, window)
            self.in_flight += 1
            return True

    def retry_in(self, control: SandboxControl, batch: bool = False) -> float:
        """Seconds (scaled) until a refused request would be accepted: the oldest request
        (or batch) leaving the minute window; 1 s when only concurrency refused it."""
        window = control.window(WINDOW_SECONDS)
        now = monotonic()
        with self._lock:
            waits = [control.window(1.0)] if self.in_flight >= CONCURRENT_REQUESTS else []
            if self.requests.remaining(now, window) <= 0:
                waits.append(self.requests.reset_in(now, window))
            if batch and self.batches.remaining(now, window) <= 0:
                waits.append(self.batches.reset_in(now, window))
            return max(waits, default=0.0)

    def release(self) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
