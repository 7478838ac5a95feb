"""Chunks chosen from the work (kernel ``chunk_length``): as few as the flow's maximum
allows, equally full, aligned to QuickBooks' batch of 30 where the maximum allows."""

from __future__ import annotations

import pytest

from koppel.steps.kernel import chunk_length


@pytest.mark.parametrize("total,maximum,align,size,chunks", [
    (0, 300, 30, 1, 0),          # nothing read: no chunk at all
    (60, 300, 30, 60, 1),        # a small window is one chunk of what it read
    (300, 300, 30, 300, 1),
    (301, 300, 30, 180, 2),      # 180 + 121, not 300 + 1
    (1000, 300, 30, 270, 4),     # 270, 270, 270, 190 — not ten chunks of 100
    (20_000, 300, 30, 300, 67),
    (20, 6, 30, 5, 4),           # a maximum below the batch size is not rounded past
    (250, 100, 1, 84, 3),        # no alignment: 84, 84, 82
    (None, 300, 30, 300, None),  # a stream is cut at the maximum
])
def test_chunk_length(total, maximum, align, size, chunks):
    assert chunk_length(total, maximum, align) == size
    if chunks is not None:
        assert (-(-total // size) if total else 0) == chunks
        assert size <= maximum
