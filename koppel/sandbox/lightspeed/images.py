"""Tiny, valid PNG files standing in for the shop's product photos on its CDN."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=4096)
def png_bytes(color: tuple[int, int, int], size: int = 16) -> bytes:
    """A ``size``×``size`` RGB PNG: a solid colour with a lighter diagonal stripe."""
    r, g, b = color
    light = (min(255, r + 80), min(255, g + 80), min(255, b + 80))
    raw = bytearray()
    for y in range(size):
        raw.append(0)  # filter type: none
        for x in range(size):
            raw.extend(light if abs(x - y) <= 1 else (r, g, b))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _chunk(b"IEND", b""))
