"""Personal data never reaches a log or the activity log.

``scrub(text, known)`` replaces e-mail addresses, phone numbers and any of the record's
own personal values (names, streets, cities, companies…) in a message — typically an
API error such as QBO's "The name supplied already exists: <name>". ``pii_values``
collects those values from a source record by field name."""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# International (+31 6 1234 5678) and Dutch/Belgian/German national forms (06-12345678,
# 0612345678); not SKUs such as KLA-20417803 nor EAN codes.
PHONE = re.compile(r"(?<![\w.\-/])(?:\+\d[\d ()-]{7,16}\d|0\d{1,3}[ -]\d{6,8}|0[1-9]\d{8})(?![\w.])")
_PII_KEY = re.compile(
    r"(name|email|e_mail|street|phone|mobile|address|city|zip|postal|company|contact|"
    r"firstname|lastname|middlename|line1|line2|region)", re.IGNORECASE)
_MIN_VALUE_LEN = 3


def pii_values(data: Any, _key: str = "") -> set[str]:
    """String values held under personal-data keys anywhere in ``data``."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found |= pii_values(value, str(key))
    elif isinstance(data, (list, tuple)):
        for value in data:
            found |= pii_values(value, _key)
    elif isinstance(data, str) and _key and _PII_KEY.search(_key):
        value = data.strip()
        if len(value) >= _MIN_VALUE_LEN and not value.isdigit():
            found.add(value)
    return found


def scrub(text: str | None, known: Iterable[str] = ()) -> str | None:
    if not text:
        return text
    for value in sorted(set(known), key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, "<redacted>")
    text = EMAIL.sub("<email>", text)
    return PHONE.sub("<phone>", text)


class RedactPersonalData(logging.Filter):
    """A logging filter that scrubs e-mail addresses and phone numbers from messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
