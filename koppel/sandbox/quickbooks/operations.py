"""Create, read, update, delete and void, with their side effects: inventory quantities
(sales reduce ``QtyOnHand``, credit memos and refunds raise it, adjustments apply
``QtyDiff``) and invoice balances (payments reduce ``Balance`` and link the invoice).

All functions take the realm lock; callers hold it across a whole batch.
"""

from __future__ import annotations

from collections import defaultdict
from copy import deepcopy
from decimal import Decimal
from typing import Any

from koppel.sandbox.quickbooks import currencies, entities, faults, money
from koppel.sandbox.quickbooks.store import Realm, parse_time, stamp, utcnow

STOCK_SIGN = {"SalesReceipt": -1, "Invoice": -1, "CreditMemo": 1, "RefundReceipt": 1}


def resolve_entity(url_name: str) -> str:
    entity = entities.URL_NAMES.get(url_name.lower())
    if entity is None:
        raise faults.QBOFault(610, "Object Not Found",
                              f"Unsupported entity or resource: {url_name}", status=400)
    return entity


def read(realm: Realm, entity: str, obj_id: str) -> dict:
    with realm.lock:
        obj = realm.get(entity, obj_id)
        if obj is None:
            raise faults.not_found(entity, obj_id)
        return deepcopy(obj)


# -- side effects -------------------------------------------------------------------------
def _stock_effect(realm: Realm, entity: str, obj: dict | None) -> dict[str, Decimal]:
    effect: dict[str, Decimal] = defaultdict(Decimal)
    if obj is None:
        return effect
    if entity == "InventoryAdjustment":
        for line in obj.get("Line", []):
            detail = line.get("ItemAdjustmentLineDetail") or {}
            effect[detail["ItemRef"]["value"]] += money.dec(detail.get("QtyDiff")) or 0
        return effect
    sign = STOCK_SIGN.get(entity)
    if sign is None:
        return effect
    for line in obj.get("Line", []):
        detail = line.get("SalesItemLineDetail")
        if line.get("DetailType") != "SalesItemLineDetail" or not detail:
            continue
        item = realm.get("Item", detail.get("ItemRef", {}).get("value"))
        if item is not None and item.get("Type") == "Inventory":
            effect[item["Id"]] += sign * (money.dec(detail.get("Qty")) or 0)
    return effect


def _apply_stock(realm: Realm, entity: str, old: dict | None, new: dict | None) -> None:
    before, after = _stock_effect(realm, entity, old), _stock_effect(realm, entity, new)
    for item_id in set(before) | set(after):
        delta = after.get(item_id, Decimal(0)) - before.get(item_id, Decimal(0))
        item = realm.get("Item", item_id)
        if delta and item is not None:
            changed = deepcopy(item)
            qty = (money.dec(item.get("QtyOnHand")) or Decimal(0)) + delta
            changed["QtyOnHand"] = money.num(qty)
            realm.replace("Item", changed)


def on_hand(realm: Realm, item_id: str, old_adjustment: dict | None) -> Decimal:
    """Quantity on hand as it would be without ``old_adjustment`` (being replaced)."""
    item = realm.get("Item", item_id)
    qty = money.dec((item or {}).get("QtyOnHand")) or Decimal(0)
    return qty - _stock_effect(realm, "InventoryAdjustment", old_adjustment).get(item_id, 0)


def _applied(realm: Realm, invoice_id: str, skip_payment: str | None = None) -> Decimal:
    total = Decimal(0)
    for payment in realm.table("Payment").values():
        if payment["Id"] == skip_payment:
            continue
        for line in payment.get("Line", []):
            if any(link.get("TxnType") == "Invoice" and str(link.get("TxnId")) == invoice_id
                   for link in line.get("LinkedTxn", [])):
                total += money.dec(line.get("Amount")) or 0
    return total


def open_balance(realm: Realm, invoice_id: str, old_payment: dict | None) -> Decimal:
    invoice = realm.get("Invoice", invoice_id)
    total = money.dec((invoice or {}).get("TotalAmt")) or Decimal(0)
    return total - _applied(realm, invoice_id, (old_payment or {}).get("Id"))


def _invoice_ids(payment: dict | None) -> set[str]:
    return {str(link.get("TxnId")) for line in (payment or {}).get("Line", [])
            for link in line.get("LinkedTxn", []) if link.get("TxnType") == "Invoice"}


def _refresh_invoices(realm: Realm, invoice_ids: set[str]) -> None:
    for invoice_id in invoice_ids:
        invoice = realm.get("Invoice", invoice_id)
        if invoice is None:
            continue
        changed = deepcopy(invoice)
        _set_invoice_balance(realm, changed)
        if changed != invoice:
            realm.replace("Invoice", changed)


def _set_invoice_balance(realm: Realm, invoice: dict) -> None:
    applied = _applied(realm, invoice["Id"]) if invoice.get("Id") else Decimal(0)
    total = money.dec(invoice.get("TotalAmt")) or Decimal(0)
    invoice["Balance"] = money.num(total - applied)
    if "HomeTotalAmt" in invoice:  # multicurrency companies
        rate = money.dec(invoice.get("ExchangeRate")) or Decimal(1)
        invoice["HomeBalance"] = money.num(money.q2((total - applied) * rate))
    else:
        invoice.pop("HomeBalance", None)
    links = [{"TxnId": p["Id"], "TxnType": "Payment"} for p in realm.all("Payment")
             if invoice.get("Id") in _invoice_ids(p)]
    if links:
        invoice["LinkedTxn"] = links
    else:
        invoice.pop("LinkedTxn", None)


def _side_effects(realm: Realm, entity: str, old: dict | None, new: dict | None) -> None:
    _apply_stock(realm, entity, old, new)
    if entity == "Customer" and new is not None:
        # "If specified currency is not currently in the company's currency list, it is
        # added." (Customer.CurrencyRef, Intuit's Customer page)
        code = currencies.code_of(new.get("CurrencyRef"))
        if code and code != realm.home_currency:
            add_company_currency(realm, code)
    if entity == "Payment":
        _refresh_invoices(realm, _invoice_ids(old) | _invoice_ids(new))


# -- operations ---------------------------------------------------------------------------
def _prepare(realm: Realm, entity: str, payload: dict, old: dict | None,
             params: dict[str, str]) -> dict:
    sent_tax = entities.clean(payload.get("TxnTaxDetail")) if isinstance(
        payload.get("TxnTaxDetail"), dict) else None
    body = entities.strip_read_only(entity, entities.clean(payload))
    return entities.prepare(
        realm, entity, body, old, params, sent_tax=sent_tax,
        on_hand=lambda item_id, prev: on_hand(realm, item_id, prev),
        open_balance=lambda invoice_id, prev: open_balance(realm, invoice_id, prev))


def _check_sync(entity: str, payload: dict, current: dict) -> None:
    token = payload.get("SyncToken")
    if token is None or token == "":
        raise faults.required("SyncToken")
    if str(token).strip() != str(current.get("SyncToken")):
        raise faults.stale(entity, current["Id"])


def create(realm: Realm, entity: str, payload: dict, params: dict[str, str]) -> dict:
    if entity not in entities.CREATABLE:
        raise faults.unsupported(f"Operation Create is not supported for {entity}.")
    with realm.lock:
        obj = _prepare(realm, entity, payload, None, params)
        obj = realm.insert(entity, obj)
        if entity == "Invoice":
            _set_invoice_balance(realm, obj)
        _side_effects(realm, entity, None, obj)
        return deepcopy(realm.get(entity, obj["Id"]))


def update(realm: Realm, entity: str, payload: dict, params: dict[str, str]) -> dict:
    if entity not in entities.CREATABLE:
        raise faults.unsupported(f"Operation Update is not supported for {entity}.")
    obj_id = payload.get("Id")
    if obj_id in (None, ""):
        raise faults.required("Id")
    with realm.lock:
        current = realm.get(entity, obj_id)
        if current is None:
            raise faults.not_found(entity, obj_id)
        _check_sync(entity, payload, current)
        if payload.get("sparse") is True:
            merged = {**entities.strip_read_only(entity, deepcopy(current)),
                      **{k: v for k, v in payload.items() if k != "TxnTaxDetail"}}
            if "TxnTaxDetail" in payload:
                merged["TxnTaxDetail"] = payload["TxnTaxDetail"]
            elif not realm.vat and entity in entities.SALES_DOCS:
                merged["TxnTaxDetail"] = current.get("TxnTaxDetail")
        else:
            merged = payload
        obj = _prepare(realm, entity, merged, current, params)
        obj["Id"] = current["Id"]
        if entity == "Attachable":
            # an update changes the metadata (e.g. adds items to its ``AttachableRef``, an
            # array: Intuit "Attach images and notes", https://developer.intuit.com/app/
            # developer/qbo/docs/workflows/attach-images-and-notes); the uploaded file and
            # what the server derived from it stay (assumed: docs/sandbox-fidelity.md)
            obj.update({k: current[k] for k in ("Size", "FileAccessUri", "TempDownloadUri")
                        if k in current})
        if entity == "Invoice":
            _set_invoice_balance(realm, obj)
        realm.replace(entity, obj)
        _side_effects(realm, entity, current, obj)
        return deepcopy(realm.get(entity, obj["Id"]))


def delete(realm: Realm, entity: str, payload: dict) -> dict:
    if entity not in entities.DELETABLE:
        raise faults.unsupported(f"Operation Delete is not supported for {entity}; make it "
                                 f"inactive instead (Active: false).")
    obj_id = payload.get("Id")
    if obj_id in (None, ""):
        raise faults.required("Id")
    with realm.lock:
        current = realm.get(entity, obj_id)
        if current is None:
            raise faults.not_found(entity, obj_id)
        _check_sync(entity, payload, current)
        if entity == "Invoice" and _applied(realm, current["Id"]):
            raise faults.business("This invoice has payments applied; delete the payments "
                                  "first.")
        realm.remove(entity, current["Id"])
        _side_effects(realm, entity, current, None)
        return {"status": "Deleted", "domain": "QBO", "Id": current["Id"]}


def void(realm: Realm, entity: str, payload: dict) -> dict:
    """Void: the document stays (DocNumber kept) with zero amounts, note "Voided"."""
    if entity not in entities.VOIDABLE:
        raise faults.unsupported(f"Operation Void is not supported for {entity}.")
    obj_id = payload.get("Id")
    if obj_id in (None, ""):
        raise faults.required("Id")
    with realm.lock:
        current = realm.get(entity, obj_id)
        if current is None:
            raise faults.not_found(entity, obj_id)
        _check_sync(entity, payload, current)
        if entity == "Invoice" and _applied(realm, current["Id"]):
            raise faults.business("This invoice has payments applied; void the payments "
                                  "first.")
        voided = deepcopy(current)
        for line in voided.get("Line", []):
            line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if detail:
                detail["Qty"] = 0
                detail.pop("TaxInclusiveAmt", None)
        if entity == "Payment":
            voided["Line"] = []
            voided["UnappliedAmt"] = 0
        voided["TotalAmt"] = 0
        for key in ("Balance", "HomeTotalAmt", "HomeBalance"):
            if key in voided:
                voided[key] = 0
        if "TxnTaxDetail" in voided:
            voided["TxnTaxDetail"] = {"TotalTax": 0}
        voided["PrivateNote"] = "Voided"
        realm.replace(entity, voided)
        _side_effects(realm, entity, current, voided)
        return deepcopy(realm.get(entity, obj_id))


def attach_upload(realm: Realm, metadata: dict, content: bytes, content_type: str,
                  download_base: str) -> dict:
    """``POST /upload``: store the file and create its Attachable."""
    meta = entities.clean(metadata)
    meta.setdefault("ContentType", content_type)
    if not meta.get("FileName"):
        raise faults.required("FileName")
    with realm.lock:
        obj = _prepare(realm, "Attachable", meta, None, {})
        obj["Size"] = len(content)
        obj = realm.insert("Attachable", obj)
        realm.attachments[obj["Id"]] = content
        # Upload sample (Intuit, "Attach images and notes"): FileAccessUri is the API path
        # of the download resource, TempDownloadUri a short-lived direct link
        obj["FileAccessUri"] = f"/v3/company/{realm.id}/download/{obj['Id']}"
        obj["TempDownloadUri"] = f"{download_base}/{obj['Id']}"
        return deepcopy(obj)


def download_uri(realm: Realm, attachable_id: str, download_base: str) -> str:
    """``GET /download/{id}``: the temporary download URL of an uploaded file."""
    with realm.lock:
        obj = realm.get("Attachable", attachable_id)
        if obj is None or attachable_id not in realm.attachments:
            raise faults.not_found("Attachable", attachable_id)
        return f"{download_base}/{obj['Id']}"


def write(realm: Realm, entity: str, operation: str | None, include: str,
          payload: dict, params: dict[str, str]) -> dict:
    """Dispatch ``POST /{entity}`` by ``operation``/``include`` as QBO does."""
    operation = (operation or "").lower()
    if operation == "delete":
        return delete(realm, entity, payload)
    if operation == "void" or (operation == "update" and "void" in include.lower()):
        return void(realm, entity, payload)
    if operation not in ("", "create", "update"):
        raise faults.unsupported(f"Operation {operation} is not supported.")
    if payload.get("Id") not in (None, "", 0, "0") or operation == "update":
        return update(realm, entity, payload, params)
    return create(realm, entity, payload, params)


def changed_since(realm: Realm, entity: str, since: Any) -> list[dict[str, Any]]:
    """CDC rows of ``entity``: changed objects (inactive/voided included) and tombstones."""
    with realm.lock:
        rows = [deepcopy(obj) for obj in realm.all(entity)
                if (parse_time(obj["MetaData"]["LastUpdatedTime"]) or since) > since]
        rows += [t.as_cdc() for t in realm.tombstones if t.entity == entity
                 and t.deleted_at > since]
        return rows


# -- multicurrency ------------------------------------------------------------------------
def add_company_currency(realm: Realm, code: str) -> dict:
    """The company currency ``code``, added (active) when the company lacks it."""
    with realm.lock:
        existing = entities.company_currency(realm, code)
        if existing is not None:
            return deepcopy(existing)
        obj = realm.insert("CompanyCurrency", {"Code": code.upper(), "Name": currencies.name(code),
                                               "Active": True})
        return deepcopy(obj)


def _rate_object(realm: Realm, code: str, as_of: str, rate: Decimal, target: str,
                 stored: dict | None) -> dict[str, Any]:
    return {"SyncToken": str((stored or {}).get("SyncToken", "0")), "domain": "QBO",
            "AsOfDate": as_of, "SourceCurrencyCode": code, "Rate": money.num(rate),
            "sparse": False, "TargetCurrencyCode": target,
            "MetaData": {"LastUpdatedTime": (stored or {}).get("LastUpdatedTime")
                         or stamp(realm.created)}}


def _require_multicurrency(realm: Realm) -> None:
    if not realm.multicurrency:
        raise faults.business("Multicurrency is not enabled for this company; exchange rates "
                              "are not available.")


def exchange_rate(realm: Realm, code: str | None, as_of: str | None) -> dict[str, Any]:
    """``GET /exchangerate?sourcecurrencycode=&asofdate=``: ``{"ExchangeRate": {...}}``, or
    ``{}`` for a code neither the company nor the global list has (Intuit: "an empty
    response is returned")."""
    _require_multicurrency(realm)
    if not code:
        raise faults.required("sourcecurrencycode")
    if as_of is not None and currencies.as_date(as_of) is None:
        raise faults.QBOFault(2170, "Invalid Enumeration", f"Invalid asofdate : {as_of}",
                              "asofdate")
    code = code.upper()
    if not currencies.known(code):
        return {}
    day = (currencies.as_date(as_of) or utcnow().date()).isoformat()
    with realm.lock:
        rate, stored = entities.rate_on(realm, code, day)
        return {"ExchangeRate": _rate_object(realm, code, day, rate, realm.home_currency,
                                             stored)}


def set_exchange_rate(realm: Realm, payload: dict[str, Any]) -> dict[str, Any]:
    """``POST /exchangerate`` (also the control plane): SourceCurrencyCode, Rate and AsOfDate
    are mandatory, TargetCurrencyCode defaults to the home currency, the home currency can't
    be the source, and source = target sets the rate to 1."""
    _require_multicurrency(realm)
    payload = entities.clean(payload)
    for element in ("SourceCurrencyCode", "Rate", "AsOfDate"):
        if element not in payload:
            raise faults.required(element)
    code = currencies.code_of(payload["SourceCurrencyCode"]) or ""
    target = currencies.code_of(payload.get("TargetCurrencyCode")) or realm.home_currency
    for element, value in (("SourceCurrencyCode", code), ("TargetCurrencyCode", target)):
        if not currencies.known(value):
            raise faults.unknown_currency(element, value)
    if code == realm.home_currency:
        raise faults.business(f"{code} is the home currency; its exchange rate is always 1.",
                              "SourceCurrencyCode")
    if target != realm.home_currency and target != code:
        raise faults.business("Exchange rates are set against the home currency "
                              f"{realm.home_currency}.", "TargetCurrencyCode")
    day = currencies.as_date(payload["AsOfDate"])
    if day is None:
        raise faults.QBOFault(2170, "Invalid Enumeration",
                              f"Invalid AsOfDate : {payload['AsOfDate']}", "AsOfDate")
    rate = money.dec(payload["Rate"])
    if rate is None or rate <= 0:
        raise faults.business("Rate must be a positive number.", "Rate")
    if target == code:  # stored nowhere: a currency is always worth 1 of itself
        return {"ExchangeRate": _rate_object(realm, code, day.isoformat(), Decimal(1), code,
                                             None)}
    with realm.lock:
        per_code = realm.exchange_rates.setdefault(code, {})
        previous = per_code.get(day.isoformat())
        if previous is not None and "SyncToken" in payload \
                and str(payload["SyncToken"]) != previous["SyncToken"]:
            raise faults.stale("ExchangeRate", f"{code}/{day.isoformat()}")
        stored = {"Rate": str(rate), "TargetCurrencyCode": realm.home_currency,
                  "SyncToken": str(int(previous["SyncToken"]) + 1) if previous else "0",
                  "LastUpdatedTime": stamp(utcnow())}
        per_code[day.isoformat()] = stored
        return {"ExchangeRate": _rate_object(realm, code, day.isoformat(), rate,
                                             realm.home_currency, stored)}


def exchange_rate_rows(realm: Realm, as_of: str | None) -> list[dict[str, Any]]:
    """Rows for ``select * from exchangerate``: each active company currency's rate on
    ``as_of`` (today when the query names no ``AsOfDate``)."""
    _require_multicurrency(realm)
    day = (currencies.as_date(as_of) or utcnow().date()).isoformat()
    with realm.lock:
        rows = []
        for obj in realm.all("CompanyCurrency"):
            if obj.get("Active") is False:
                continue
            rate, stored = entities.rate_on(realm, obj["Code"], day)
            rows.append(_rate_object(realm, obj["Code"], day, rate, realm.home_currency, stored))
        return rows
