"""E-mail addresses: is this one usable as a customer identity and as a QBO ``BillEmail``?

Deliberately pragmatic (no DNS): one ``@``, a non-empty local part without spaces, a
domain with a dot and labels of letters/digits/hyphens, and at most 100 characters (QBO's
``PrimaryEmailAddr.Address`` limit; a longer one is fault 2050). QBO rejects malformed
addresses with fault 2210, so an address that fails here must not be sent.
"""

from __future__ import annotations

import re

MAX_EMAIL_LENGTH = 100

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}$")


def usable_email(raw: str | None) -> str | None:
    """The trimmed address when it is usable, else ``None`` (missing, malformed, too long)."""
    if raw is None:
        return None
    candidate = raw.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        return None
    if not _EMAIL.match(candidate):
        return None
    return candidate


def email_key(address: str) -> str:
    """Case-insensitive comparison key for an address."""
    return address.strip().casefold()


def email_hash(address: str) -> str:
    """The search key of an address in koppel's activity log: sha256 of
    :func:`email_key`, hex. Pseudonymous, not anonymous (anyone holding the address can
    compute it), so it is erased with the customer's other traces (GDPR erasure)."""
    import hashlib

    return hashlib.sha256(email_key(address).encode("utf-8")).hexdigest()
