"""The sandbox's notion of "now" for new and changed records (settable by tests)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


class Clock:
    """Wall-clock UTC time, optionally frozen or shifted (``/_sandbox/clock``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        with self._lock:
            moment = self._frozen or (datetime.now(timezone.utc) + self._offset)
        return moment.replace(microsecond=0)

    def freeze(self, moment: datetime) -> None:
        with self._lock:
            self._frozen = moment.astimezone(timezone.utc)

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def release(self) -> None:
        """Back to the wall clock (keeps any offset made while frozen out of it)."""
        with self._lock:
            self._frozen = None
            self._offset = timedelta()

    def state(self) -> dict[str, object]:
        with self._lock:
            frozen = self._frozen is not None
        return {"now": self.now().isoformat(), "frozen": frozen}
