"""Typed errors of both hooks.

Every error carries what a person needs to act on it — the API's own message, the request
(method and path, never credentials or query secrets) and the record id when there is one —
and nothing secret: messages are built from those parts only, never from headers or
request bodies.
"""

from __future__ import annotations

from typing import Any

from quickbooks import exceptions as qb_exceptions
from quickbooks.client import QuickBooks


class KoppelAPIError(Exception):
    """Base of every error raised by a koppel hook."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, method: str | None = None,
                 path: str | None = None, record_id: Any = None) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.record_id = record_id
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.method and self.path:
            parts.append(f"[{self.method} {self.path}]")
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.record_id is not None:
            parts.append(f"record {self.record_id}")
        return " ".join(parts)


class TransientError(KoppelAPIError):
    """A failure worth retrying: 5xx, timeouts, dropped connections."""

    retryable = True


class RateLimited(TransientError):
    """HTTP 429. ``retry_after`` is the server's advice in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class RateLimitExhausted(KoppelAPIError):
    """A rate-limit window is spent for longer than the hook may wait; retry the task later."""

    def __init__(self, message: str, *, resets_in: float, **kw: Any) -> None:
        self.resets_in = resets_in
        super().__init__(message, **kw)


# -- Lightspeed eCom --------------------------------------------------------------------


class LightspeedError(KoppelAPIError):
    """An error answer of the Lightspeed eCom API (``{"error": {...}}``)."""

    def __init__(self, message: str, *, errors: dict[str, Any] | None = None,
                 **kw: Any) -> None:
        self.errors = errors or {}
        super().__init__(message, **kw)

    def _render(self) -> str:
        text = super()._render()
        if self.errors:
            text += f" fields: {self.errors}"
        return text


class LightspeedAuthError(LightspeedError):
    """401/403: the API key or secret is wrong, or lacks the permission."""


class LightspeedNotFound(LightspeedError):
    """404: no such record, or an unknown or inactive shop language."""


class LightspeedValidationError(LightspeedError):
    """400/422: the API refused the payload."""


class LightspeedTransientError(LightspeedError, TransientError):
    """5xx, or a transient 404 on an order endpoint."""


class LightspeedRateLimited(LightspeedError, RateLimited):
    """429 from Lightspeed."""


# -- QuickBooks Online --------------------------------------------------------------------


class QBOError(KoppelAPIError):
    """Base of QuickBooks Online errors."""


class AuthError(QBOError):
    """401/403, fault codes 1–499, or a refused refresh token (``invalid_grant``)."""


class QBOTransientError(QBOError, TransientError):
    """5xx or a network failure talking to QuickBooks."""


class QBOThrottled(QBOError, RateLimited):
    """429 / ThrottleExceeded (code 3001), often answered in XML."""


class QBOFault(QBOError, qb_exceptions.QuickbooksException):
    """A ``Fault`` answer. ``code`` is an int, ``element`` the offending field if named.

    Every fault is also python-quickbooks' exception of its code range (``error_code``,
    ``message`` and ``detail`` as it sets them), so code written for python-quickbooks
    (``except ObjectNotFoundException``) catches koppel's faults unchanged; which range a
    code is in is python-quickbooks' decision (:func:`fault_class`)."""

    def __init__(self, message: str, *, code: int | None = None, detail: str = "",
                 element: str = "", fault_type: str = "", **kw: Any) -> None:
        self.code = code
        self.element = element
        self.fault_type = fault_type
        self.detail = detail
        QBOError.__init__(self, message, **kw)
        # python-quickbooks' attributes (its __init__ ran through the MRO with the
        # rendered text): the API's own message, detail and code.
        self.message, self.detail, self.error_code = message, detail, code or 0

    __str__ = Exception.__str__  # koppel's rendering, not python-quickbooks' "QB Exception …"

    def _render(self) -> str:
        text = f"QBO fault {self.code}: {super()._render()}"
        if self.detail and self.detail != self.message:
            text += f" — {self.detail}"
        if self.element:
            text += f" (element {self.element})"
        return text


class ObjectNotFound(QBOFault, qb_exceptions.ObjectNotFoundException):
    """Fault 610: the object does not exist (or was made inactive)."""


class ValidationFault(QBOFault, qb_exceptions.ValidationException):
    """Fault 2000–4999 (python-quickbooks' validation range), or 6000-range business
    validation not covered below (Intuit's error-code list calls 6000–6999 business
    validation errors; python-quickbooks leaves them generic)."""


class UnsupportedFault(QBOFault, qb_exceptions.UnsupportedException):
    """Fault 500–599: an operation or feature the company does not support."""


class GeneralFault(QBOFault, qb_exceptions.GeneralException):
    """Fault 600–1999 other than 610."""


class SevereFault(QBOFault, qb_exceptions.SevereException):
    """Fault 10000 and up: an error on Intuit's side."""


class StaleObject(QBOFault):
    """Fault 5010: the SyncToken is out of date; refetch and retry the sparse update."""


class DuplicateDocNumber(ValidationFault):
    """Fault 6140: the document number is already used."""


class DuplicateName(ValidationFault):
    """Fault 6240: the name supplied already exists (Customer/Vendor/Employee or Item)."""


class QBOAuthFault(QBOFault, AuthError, qb_exceptions.AuthorizationException):
    """A fault whose code is in the authorisation range (1–499)."""


#: koppel's class for each of python-quickbooks' exception classes
_BY_LIBRARY_CLASS: dict[type[qb_exceptions.QuickbooksException], type[QBOFault]] = {
    qb_exceptions.AuthorizationException: QBOAuthFault,
    qb_exceptions.UnsupportedException: UnsupportedFault,
    qb_exceptions.ObjectNotFoundException: ObjectNotFound,
    qb_exceptions.GeneralException: GeneralFault,
    qb_exceptions.ValidationException: ValidationFault,
    qb_exceptions.SevereException: SevereFault,
}

#: codes koppel acts on itself (recovery, refetch), more specific than a range
_FAULTS_BY_CODE: dict[int, type[QBOFault]] = {
    5010: StaleObject,
    6140: DuplicateDocNumber,
    6240: DuplicateName,
}


def library_class(code: int) -> type[qb_exceptions.QuickbooksException]:
    """python-quickbooks' exception class for a fault code: the range decision of its
    ``QuickBooks.handle_exceptions`` (Intuit's error-code ranges,
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)."""
    try:
        QuickBooks.handle_exceptions({"Error": [{"Message": "", "code": str(code)}]})
    except qb_exceptions.QuickbooksException as exc:
        return type(exc)
    return qb_exceptions.QuickbooksException  # pragma: no cover - it always raises


def fault_class(code: int | None) -> type[QBOFault]:
    """The most specific fault class for a QBO error code: koppel's own for the codes it
    acts on, the 6000 range as validation, else python-quickbooks' range."""
    if code is None:
        return QBOFault
    if code in _FAULTS_BY_CODE:
        return _FAULTS_BY_CODE[code]
    if 6000 <= code < 7000:
        return ValidationFault
    if code <= 0:
        return QBOFault
    return _BY_LIBRARY_CLASS.get(library_class(code), QBOFault)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def fault_from_payload(fault: dict[str, Any], **kw: Any) -> QBOFault:
    """Build the typed error for the first entry of a ``Fault`` object."""
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    code = _int_or_none(first.get("code"))
    message = str(first.get("Message") or first.get("message") or "QuickBooks fault")
    return fault_class(code)(
        message, code=code, detail=str(first.get("Detail") or ""),
        element=str(first.get("element") or ""), fault_type=str(fault.get("type") or ""), **kw)
