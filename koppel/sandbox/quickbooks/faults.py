"""QBO error envelopes: the ``Fault`` body, the lowercase OAuth 401 body and the
throttle answer (XML by default, as the live API sends it even when JSON was asked).

Codes used (as QBO uses them): 500 unsupported operation, 610 object not found, 2020
required parameter missing, 2050 string too long (also DocNumber > 21 chars), 2170
invalid enumeration, 2210 invalid e-mail, 2500 invalid reference, 3001 throttled, 3100
application not authorised for the realm, 3200 authentication failed, 4000 query parse
error, 4001 query validation error (unknown entity/property, MAXRESULTS > 1000), 5010
stale object, 6000 business validation (catch-all, also batch > 30 items), 6070 amount ≠
qty × unit price, 6140 duplicate document number, 6240 duplicate name.

Names and currencies (sources in :mod:`koppel.sandbox.quickbooks.entities` and
:mod:`koppel.sandbox.quickbooks.currencies`): a name past its documented maximum is 2050;
a name with a colon, tab or newline is 6000 (Intuit documents the rule, not the code:
assumed); an unknown currency code is 2500 (assumed); a foreign currency without
multicurrency, a currency that is not an active company currency, a document whose
currency differs from its customer's and a changed customer currency are 6000 (assumed).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timezone
from typing import Any

from starlette.responses import JSONResponse, Response


def now_stamp() -> str:
    """QBO-style timestamp with milliseconds and an explicit offset."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class QBOFault(Exception):
    """A fault raised anywhere in the emulator; rendered as QBO's ``Fault`` envelope."""

    def __init__(self, code: str | int, message: str, detail: str = "", element: str = "",
                 status: int = 400, fault_type: str = "ValidationFault") -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = str(code)
        self.message = message
        self.detail = detail
        self.element = element
        self.status = status
        self.fault_type = fault_type

    def fault(self) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail,
                                 "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.fault_type}

    def body(self) -> dict[str, Any]:
        return {"Fault": self.fault(), "time": now_stamp()}


# -- constructors for the common faults ---------------------------------------------------
def required(element: str) -> QBOFault:
    return QBOFault(2020, "Required param missing, need to supply the required value for the API",
                    f"Required parameter {element} is missing in the request", element)


def too_long(element: str, max_len: int, length: int) -> QBOFault:
    return QBOFault(2050, "String length is either shorter or longer than supported by specification",
                    f"String length specified does not match the supported length. Min:0 "
                    f"Max:{max_len} supported. Supplied length:{length}", element)


def invalid_enum(element: str, value: Any) -> QBOFault:
    return QBOFault(2170, "Invalid Enumeration", f"Invalid Enumeration : {value}", element)


def invalid_email(element: str) -> QBOFault:
    return QBOFault(2210, "Invalid Email Address format",
                    "Invalid E-mail address format : provide a valid e-mail address", element)


def invalid_reference(element: str, entity: str, ref: Any) -> QBOFault:
    return QBOFault(2500, "Invalid Reference Id",
                    f"Invalid Reference Id : {entity} assigned to this transaction has been "
                    f"deleted or does not exist ({element}={ref})", element)


def not_found(entity: str, obj_id: Any) -> QBOFault:
    return QBOFault(610, "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive. "
                    f"Check the fields with accounts, customers, items, vendors or employees. "
                    f"({entity} Id={obj_id})")


def stale(entity: str, obj_id: Any) -> QBOFault:
    return QBOFault(5010, "Stale Object Error",
                    f"Stale Object Error : You and another user were working on the same thing. "
                    f"Please try again. ({entity} Id={obj_id})")


def duplicate_name(kind: str) -> QBOFault:
    return QBOFault(6240, "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {kind} is already using "
                    f"this name. Please use a different name.")


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> QBOFault:
    return QBOFault(6140, "Duplicate Document Number Error",
                    f"Duplicate Document Number Error : You must specify a different number. "
                    f"This number has already been used. DocNumber={doc_number} is assigned to "
                    f"TxnType={txn_type} with TxnId={txn_id}")


def amount_mismatch(line_num: int) -> QBOFault:
    return QBOFault(6070, "Amount is not equal to UnitPrice * Qty",
                    f"Amount is not equal to UnitPrice * Qty. Supplied value:Line {line_num}",
                    "Line.Amount")


def business(detail: str, element: str = "") -> QBOFault:
    return QBOFault(6000, "A business validation error has occurred while processing your request",
                    f"Business Validation Error: {detail}", element)


INVALID_NAME_CHARACTERS = {":": "colon (:)", "\t": "tab (\\t)", "\n": "newline (\\n)"}


def invalid_characters(element: str, found: str) -> QBOFault:
    """A name with a character Intuit documents as invalid (code assumed: 6000)."""
    return business(f"{element} must not contain colon (:), tab (\\t), or newline (\\n) "
                    f"characters; found a {INVALID_NAME_CHARACTERS.get(found, repr(found))}.",
                    element)


def unknown_currency(element: str, code: Any) -> QBOFault:
    return QBOFault(2500, "Invalid Reference Id",
                    f"Invalid Reference Id : Currency {code} is not a supported currency "
                    f"code ({element}={code})", element)


def multicurrency_off(element: str, code: str, home: str) -> QBOFault:
    return business(f"Multicurrency is not enabled for this company: {element} must be the "
                    f"home currency {home}, not {code}.", element)


def currency_not_active(element: str, code: str) -> QBOFault:
    return business(f"The currency {code} is not an active currency of this company; add it "
                    f"(CompanyCurrency) or reactivate it first.", element)


def currency_mismatch(code: str, customer_code: str) -> QBOFault:
    return business(f"The transaction currency {code} differs from the currency of the "
                    f"customer ({customer_code}); a customer can only have transactions in "
                    f"its own currency.", "CurrencyRef")


def unsupported(detail: str) -> QBOFault:
    return QBOFault(500, "Unsupported Operation", detail)


def query_parse(detail: str) -> QBOFault:
    return QBOFault(4000, "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QBOFault:
    return QBOFault(4001, "Invalid query", f"QueryValidationError: {detail}")


def fault_response(fault: QBOFault) -> JSONResponse:
    return JSONResponse(fault.body(), status_code=fault.status)


# -- authentication -----------------------------------------------------------------------
AUTH_FAILED_BODY = {"fault": {"error": [{
    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
    "code": "3200"}], "type": "AUTHENTICATION"}}


def auth_failed_response() -> JSONResponse:
    """What QBO answers for a missing, unknown or expired access token (lowercase keys)."""
    return JSONResponse(AUTH_FAILED_BODY, status_code=401)


def realm_forbidden_response() -> JSONResponse:
    """A valid token used on a realm it was not issued for."""
    return JSONResponse({"Fault": {"Error": [{
        "Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "Detail": "", "code": "3100"}], "type": "AUTHENTICATION"}, "time": now_stamp()},
        status_code=403)


# -- throttling ----------------------------------------------------------------------------
THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
THROTTLE_DETAIL = "The request limit was reached.  Try again later"

#: Throttle headers. Intuit's limits page documents no header on a 429, only "wait 60
#: seconds before retrying the request"
#: (https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles).
#: ``intuit_tid`` (Intuit's transaction id, quoted to Intuit support) is on every answer,
#: 429s included: observed by SDK users (https://github.com/apigrate/quickbooks/releases
#: v4.3 "intuit_tid response header on API transactions ... on all ApiError and
#: ApiThrottlingError objects"; https://github.com/intuit/QuickBooks-V3-Java-SDK/issues/181).
#: ``Retry-After`` is reported by one user only
#: (https://github.com/intuit/QuickBooks-V3-PHP-SDK/issues/184: "specifically
#: 'Retry-After'"): assumed, so the sandbox sends it only when told to
#: (``PUT /_sandbox/throttle-headers``, :mod:`koppel.sandbox.quickbooks.control_routes`).
INTUIT_TID_HEADER = "intuit_tid"


def intuit_tid() -> str:
    """A fresh Intuit transaction id (``1-<8 hex>-<24 hex>``, the observed shape)."""
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def throttle_headers(retry_after: float | None = None, tid: str | None = None) -> dict[str, str]:
    """``intuit_tid`` always; ``Retry-After`` (whole seconds, rounded up) when given."""
    headers = {INTUIT_TID_HEADER: tid or intuit_tid()}
    if retry_after is not None:
        headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
    return headers


def throttle_response(fmt: str = "xml", *, retry_after: float | None = None,
                      tid: str | None = None) -> Response:
    """HTTP 429 as the live API sends it: an XML ``IntuitResponse`` (``fmt='xml'``), or
    the JSON ``Fault`` form (``fmt='json'``), with :func:`throttle_headers`."""
    stamp = now_stamp()
    headers = throttle_headers(retry_after, tid)
    if fmt == "json":
        return JSONResponse({"Fault": {"Error": [{"Message": THROTTLE_MESSAGE,
                                                  "Detail": THROTTLE_DETAIL, "code": "3001"}],
                                       "type": "SERVICE"}, "time": stamp}, status_code=429,
                            headers=headers)
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           f'<IntuitResponse time="{stamp}" xmlns="http://schema.intuit.com/finance/v3">\n'
           '    <Fault type="SERVICE">\n'
           '        <Error code="3001">\n'
           f'            <Message>{THROTTLE_MESSAGE}</Message>\n'
           f'            <Detail>{THROTTLE_DETAIL}</Detail>\n'
           '        </Error>\n'
           '    </Fault>\n'
           '</IntuitResponse>')
    return Response(xml, status_code=429, media_type="application/xml", headers=headers)


def server_error_response(status: int) -> JSONResponse:
    """An injected 5xx/404 in QBO's envelope."""
    if status == 404:
        return JSONResponse({"Fault": {"Error": [{"Message": "Resource not found",
                                                  "Detail": "", "code": "610"}],
                                       "type": "ValidationFault"}, "time": now_stamp()},
                            status_code=404)
    return JSONResponse({"Fault": {"Error": [{
        "Message": "An application error has occurred while processing your request",
        "Detail": f"System Failure Error: service answered {status}", "code": "10000"}],
        "type": "SystemFault"}, "time": now_stamp()}, status_code=status)
