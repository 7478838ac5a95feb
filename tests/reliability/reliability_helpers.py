"""Assertions shared by the reliability tests (a plain module: conftest modules of
different test folders share one import name)."""

from __future__ import annotations

from typing import Any


def assert_no_duplicates(books: dict[str, Any]) -> None:
    """No document, customer or item twice in QuickBooks."""
    doubled = {n: len(d) for n, d in books["documents"].items() if len(d) > 1}
    assert not doubled, f"documents booked more than once: {doubled}"
    assert max(books["customers"].values(), default=1) == 1, books["customers"].most_common(3)
    assert max(books["items"].values(), default=1) == 1, books["items"].most_common(3)
