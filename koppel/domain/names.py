"""Names QBO must accept: no forbidden characters, at most 100 characters, unique, chosen
deterministically — the one place every Customer, Item and Category name passes through.

QuickBooks uses ``:`` as its hierarchy separator (``Parent:Child`` in a FullyQualifiedName)
and rejects it, tabs and newlines in names (see docs/vendor-facts.md for the sources):
:func:`qbo_safe` turns ``": "`` into ``" - "`` and a bare ``:`` into ``-`` and folds every
other whitespace run into one space.

Used for Customer ``DisplayName`` (unique across Customer, Vendor and Employee) and Item
``Name`` (unique among items). A clash (QBO fault 6240) is resolved by trying, in order,
the name itself, the name with a stable tag derived from the record's identity (its
e-mail address, SKU…), then `` (2)``, `` (3)``… — the same inputs always give the same
name, and a record never fails over its name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Collection

MAX_NAME = 100

Taken = Collection[str] | Callable[[str], bool]


_COLON_SPACED = re.compile(r"\s*:\s+")


def qbo_safe(text: str) -> str:
    """``text`` without the characters QuickBooks rejects in names (``:``, tab, newline and
    other control whitespace); ``"Bakkerij De Zon: Utrecht"`` → ``"Bakkerij De Zon -
    Utrecht"``, ``"Ratio 1:2"`` → ``"Ratio 1-2"``."""
    text = _COLON_SPACED.sub(" - ", text).replace(":", "-")
    return " ".join(text.split())


def qbo_name(value: str | None, limit: int = MAX_NAME) -> str | None:
    """A name QuickBooks accepts: :func:`qbo_safe`, cut at a word boundary to ``limit``;
    ``None`` when nothing is left."""
    if value is None:
        return None
    return truncate_at_word(qbo_safe(value), limit) or None


def clean_text(value: str | None) -> str | None:
    """Collapse whitespace; ``None`` when nothing is left."""
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def truncate_at_word(text: str, limit: int = MAX_NAME) -> str:
    """Cut ``text`` to ``limit`` characters at a word boundary (hard cut if one word is longer)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" -,;:/")


def stable_tag(basis: str, length: int = 6) -> str:
    """A short stable tag: the first ``length`` hex characters of sha256(``basis``)."""
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:length]


def with_suffix(base: str, suffix: str, limit: int = MAX_NAME) -> str:
    """``base (suffix)``, shortening ``base`` at a word boundary so the whole fits ``limit``."""
    tail = f" ({suffix})"
    return f"{truncate_at_word(base, limit - len(tail))}{tail}"


def is_taken(name: str, taken: Taken) -> bool:
    """Case-insensitive membership in ``taken`` (or the predicate's answer)."""
    if callable(taken):
        return bool(taken(name))
    folded = name.casefold()
    return any(existing.casefold() == folded for existing in taken)


def resolve_name(base: str, *, identity_tag: str, taken: Taken, limit: int = MAX_NAME) -> str:
    """The first free name of ``base``, ``base (identity_tag)``, ``base (2)``, ``base (3)``…"""
    name = truncate_at_word(base, limit)
    if not is_taken(name, taken):
        return name
    candidate = with_suffix(base, identity_tag, limit)
    if not is_taken(candidate, taken):
        return candidate
    counter = 2
    while True:
        candidate = with_suffix(base, str(counter), limit)
        if not is_taken(candidate, taken):
            return candidate
        counter += 1
