"""Customer identity: who an order belongs to in QBO, and what to create or update.

Rules
-----
* Identity is the e-mail address (case-insensitive). No usable address (missing,
  malformed, too long) → the tenant's default customer; the order is never failed for it.
* Several QBO customers with the same address → the lowest ``Id`` wins (deterministic),
  and the decision says so (``warnings``) when their names differ.
* A mapped customer with a company name becomes a **company customer**:
  ``CompanyName`` and ``DisplayName`` = the company, the person as
  ``GivenName``/``FamilyName`` (the contact). A *second* contact person of a company
  that already exists in QBO (different e-mail) becomes a **sub-customer** of it:
  ``Job: true``, ``ParentRef`` = the company, ``BillWithParent: true``.
* Display names are deterministic, at most 100 characters (cut at a word boundary),
  and unique across Customer, Vendor and Employee in QBO: on a clash koppel first tries
  a suffix derived from the e-mail address (the same customer always gets the same
  name), then `` (2)``, `` (3)``… — it never fails an order over a name.
* Currencies (multicurrency companies): QuickBooks fixes a customer's currency when it is
  created (``CurrencyRef``, "Once set, it cannot be changed") and a sales document must
  be in its customer's currency. So an order only lands on a customer in the order's
  currency (:attr:`CustomerPolicy.wanted_currency`): customers in other currencies are
  not matches. When the e-mail address (or the company) is in QuickBooks only in other
  currencies, a second customer is made, named ``<name> (<CUR>)`` — deterministic, the
  usual clash handling on top. Updates never touch ``CurrencyRef``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from koppel.domain.countries import same_country
from koppel.domain.emails import email_key, usable_email
from koppel.domain.names import (
    MAX_NAME,
    Taken,
    qbo_name,
    resolve_name,
    stable_tag,
    truncate_at_word,
    with_suffix,
)
from koppel.domain.qbo_payloads import customer_payload, sparse_update
from koppel.domain.records import MappedCustomer

MAX_DISPLAY_NAME = MAX_NAME

CustomerAction = Literal["use_default", "use_existing", "create", "create_sub"]


def _clean(value: str | None) -> str | None:
    """A name part as QuickBooks accepts it (no ``:``, tabs or newlines; one space)."""
    return qbo_name(value, limit=10**6)


def person_name(customer: MappedCustomer) -> str | None:
    """``Given Middle Family`` with blanks and double spaces removed (None when empty)."""
    parts = [_clean(customer.given_name), _clean(customer.middle_name), _clean(customer.family_name)]
    joined = " ".join(part for part in parts if part)
    return joined or None


def email_suffix(email: str | None, seed: str = "") -> str:
    """The clash tag of a customer: 6 hex chars of sha256 of its e-mail (or ``seed``)."""
    return stable_tag(email_key(email) if email else seed)


def resolve_display_name(
    base: str,
    *,
    email: str | None,
    taken: Taken,
    seed: str = "",
    limit: int = MAX_DISPLAY_NAME,
) -> str:
    """The first free name of: ``base``, ``base (<hash of e-mail>)``, ``base (2)``, ``base (3)``…

    ``taken`` holds display names already used by *another* Customer, Vendor or Employee
    (compared case-insensitively) or is a predicate. Deterministic for the same inputs.
    """
    return resolve_name(base, identity_tag=email_suffix(email, seed or base), taken=taken, limit=limit)


def display_name_for(customer: MappedCustomer, *, contact_of_company: bool = False) -> str | None:
    """The preferred display name, before clash resolution.

    Company: the company name; a sub-customer contact: ``Company - Given Family``;
    a person: ``Given Middle Family``; nothing usable: the e-mail address.
    """
    company = _clean(customer.company_name)
    person = person_name(customer)
    if company and contact_of_company:
        return truncate_at_word(f"{company} - {person}" if person else company)
    name = company or person or (usable_email(customer.email))
    return truncate_at_word(name) if name else None


def _id_order(record_id: Any) -> tuple[int, str]:
    """Sort key for QBO ids: numerically (they are digit strings), odd ones last."""
    text = str(record_id)
    return (int(text), "") if text.isdigit() else (10**18, text)


def pick_lowest_id(candidates: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The QBO record with the lowest numeric ``Id``."""
    return min(candidates, key=lambda record: _id_order(record["Id"]))


def currency_code(value: Any) -> str | None:
    """An ISO currency code, upper case (``None`` for nothing)."""
    if isinstance(value, Mapping):
        value = value.get("value")
    text = str(value).strip().upper() if value is not None else ""
    return text or None


def customer_currency(record: Mapping[str, Any], home_currency: str | None = None) -> str | None:
    """The currency of a QBO customer: its ``CurrencyRef``, else the home currency (a
    company without multicurrency may leave it out)."""
    return currency_code(record.get("CurrencyRef")) or currency_code(home_currency)


def currency_display_name(base: str, currency: str, limit: int = MAX_DISPLAY_NAME) -> str:
    """``<base> (<CUR>)``: the name of a customer's second customer in another currency
    (``base`` is cut at a word boundary so the whole fits ``limit``)."""
    return with_suffix(base, currency_code(currency) or str(currency), limit)


@dataclass(frozen=True)
class CustomerPolicy:
    """Tenant settings for customers.

    ``currency``: the ``CurrencyRef`` new customers get (a foreign currency; ``None``
    creates them in the home currency, QuickBooks' default). ``home_currency``: the
    company's home currency, when known. Only customers in :attr:`wanted_currency` are
    matches; when neither is known every customer is (a company without multicurrency).
    """

    default_customer_id: str
    bill_with_parent: bool = True
    currency: str | None = None
    home_currency: str | None = None

    @property
    def wanted_currency(self) -> str | None:
        """The currency an order's customer must have (``None``: not known, any)."""
        return currency_code(self.currency) or currency_code(self.home_currency)

    @property
    def foreign(self) -> bool:
        """Whether customers are made in a currency other than the home currency."""
        cur = currency_code(self.currency)
        return cur is not None and cur != currency_code(self.home_currency)

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether the QBO customer ``record`` may take this policy's orders (its currency)."""
        wanted = self.wanted_currency
        return wanted is None or customer_currency(record, self.home_currency) == wanted


@dataclass(frozen=True)
class CustomerDecision:
    """What the customer-upsert step must do for one order's customer.

    ``use_default``/``use_existing``: ``customer_id`` is the answer (``update`` holds a
    sparse update for an existing customer whose data changed). ``create``/``create_sub``:
    POST ``payload`` (already clash-free against ``taken``) and use the new id.
    """

    action: CustomerAction
    customer_id: str | None = None
    payload: dict[str, Any] | None = None
    update: dict[str, Any] | None = None
    reason: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def desired_customer(
    customer: MappedCustomer,
    *,
    display_name: str,
    parent_id: str | None = None,
    policy: CustomerPolicy | None = None,
) -> dict[str, Any]:
    """The Customer body koppel wants in QBO for ``customer``."""
    from koppel.domain.vat import normalise_vat_number

    company = _clean(customer.company_name)
    notes = customer.notes
    if customer.coc_number:  # QuickBooks has no field for a KvK number
        notes = "\n".join(n for n in (notes, f"KvK {customer.coc_number}") if n)
    return customer_payload(
        display_name=display_name,
        company_name=company,
        given_name=_clean(customer.given_name),
        middle_name=_clean(customer.middle_name),
        family_name=_clean(customer.family_name),
        email=customer.email,
        phone=_clean(customer.phone),
        bill_addr=customer.bill_addr,
        ship_addr=customer.ship_addr,
        notes=notes,
        parent_id=parent_id,
        bill_with_parent=policy.bill_with_parent if policy else True,
        currency=policy.currency if policy else None,
        tax_identifier=normalise_vat_number(customer.vat_number),
    )


def decide_customer(
    customer: MappedCustomer | None,
    *,
    policy: CustomerPolicy,
    email_matches: Sequence[Mapping[str, Any]] = (),
    company_match: Mapping[str, Any] | None = None,
    taken: Taken = (),
) -> CustomerDecision:
    """Decide the QBO customer for an order.

    ``email_matches``: QBO customers whose ``PrimaryEmailAddr`` equals the address
    (the caller queries; compared again case-insensitively here). ``company_match``: the
    QBO company customer whose ``CompanyName``/``DisplayName`` equals the mapped company
    name, if any. ``taken``: display names used by other customers, vendors, employees.
    Matches and the company in another currency than ``policy.wanted_currency`` are not
    used (QuickBooks books a document only in its customer's currency).
    """
    if customer is None:
        return CustomerDecision("use_default", policy.default_customer_id, reason="order has no customer")
    email = usable_email(customer.email)
    if email is None:
        reason = "no e-mail address" if not customer.email else "e-mail address not usable"
        return CustomerDecision("use_default", policy.default_customer_id, reason=reason)

    key = email_key(email)
    same_address = [
        record
        for record in email_matches
        if email_key(str((record.get("PrimaryEmailAddr") or {}).get("Address", ""))) == key
    ]
    matches = [record for record in same_address if policy.accepts(record)]
    if matches:
        chosen = pick_lowest_id(matches)
        warnings: tuple[str, ...] = ()
        if len(matches) > 1:
            names = sorted({str(m.get("DisplayName", "")) for m in matches})
            ids = sorted((str(m["Id"]) for m in matches), key=_id_order)
            warnings = (
                f"{len(matches)} QBO customers share this e-mail (ids {', '.join(ids)}"
                + (f"; their display names differ ({len(names)} distinct)" if len(names) > 1 else "")
                + f"); using the lowest id {chosen['Id']}",
            )
        update = customer_changes(chosen, customer, policy=policy)
        return CustomerDecision(
            "use_existing", str(chosen["Id"]), update=update, reason="matched by e-mail", warnings=warnings
        )

    # Only in other currencies: the address (or the company) needs a customer of its own
    # in this currency, named "<name> (<CUR>)".
    elsewhere = bool(same_address)
    company = _clean(customer.company_name)
    if company_match is not None and not policy.accepts(company_match):
        company_match, company_elsewhere = None, True
    else:
        company_elsewhere = False
    note = (f" ({policy.wanted_currency} customer; the address is in QuickBooks only in "
            "other currencies)") if elsewhere else ""
    if company and company_match is not None:
        base = display_name_for(customer, contact_of_company=True) or company
        if elsewhere:
            base = currency_display_name(base, str(policy.wanted_currency))
        name = resolve_display_name(base, email=email, taken=taken)
        payload = desired_customer(
            customer, display_name=name, parent_id=str(company_match["Id"]), policy=policy
        )
        return CustomerDecision(
            "create_sub", payload=payload,
            reason="another contact of a known company: sub-customer" + note,
        )

    base = display_name_for(customer) or email
    if elsewhere or (company and company_elsewhere):
        base = currency_display_name(base, str(policy.wanted_currency))
        if not elsewhere:
            note = (f" ({policy.wanted_currency} customer; the company is in QuickBooks only "
                    "in other currencies)")
    name = resolve_display_name(base, email=email, taken=taken)
    payload = desired_customer(customer, display_name=name, policy=policy)
    return CustomerDecision("create", payload=payload,
                            reason=("new company" if company else "new person") + note)


# --------------------------------------------------------------------------- updates

#: Fields koppel keeps in sync on an existing customer. ``DisplayName`` is not among
#: them: renaming risks clashes and breaks what users searched for in QBO.
_SIMPLE_FIELDS = ("CompanyName", "GivenName", "MiddleName", "FamilyName", "Notes")
_ADDRESS_FIELDS = ("Line1", "Line2", "City", "PostalCode", "Country", "CountrySubDivisionCode")


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _address_differs(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    existing = existing or {}
    for key in _ADDRESS_FIELDS:
        have, want = existing.get(key), desired.get(key)
        if want is None:
            continue
        if key == "Country":
            if not same_country(_text(have) or None, _text(want) or None):
                return True
        elif _text(have) != _text(want):
            return True
    return False


def _same_tax_identifier(have: Any, want: str) -> bool:
    """QuickBooks masks a tax identifier it returns (all but the last characters): the
    visible tail must match the end of the wanted number."""
    visible = str(have or "").lstrip("Xx*•")
    return bool(visible) and want.upper().endswith(visible.upper())


def customer_changes(
    existing: Mapping[str, Any], customer: MappedCustomer, *, policy: CustomerPolicy | None = None
) -> dict[str, Any] | None:
    """A sparse update for ``existing`` (a QBO Customer) when the mapped data changed, else None.

    Only fields the mapped customer has a value for are compared (an empty shop field
    never blanks QBO data); e-mail compares case-insensitively, countries alpha-2 vs
    alpha-3, whitespace is normalised. ``CurrencyRef`` is never part of an update:
    QuickBooks refuses to change a customer's currency.
    """
    desired = desired_customer(customer, display_name=str(existing.get("DisplayName", "")), policy=policy)
    changes: dict[str, Any] = {}
    for key in _SIMPLE_FIELDS:
        if key in desired and _text(existing.get(key)) != _text(desired[key]):
            changes[key] = desired[key]
    if "PrimaryEmailAddr" in desired:
        have = str((existing.get("PrimaryEmailAddr") or {}).get("Address", ""))
        if email_key(have) != email_key(desired["PrimaryEmailAddr"]["Address"]):
            changes["PrimaryEmailAddr"] = desired["PrimaryEmailAddr"]
    if "PrimaryPhone" in desired:
        have = _text((existing.get("PrimaryPhone") or {}).get("FreeFormNumber"))
        if have != _text(desired["PrimaryPhone"]["FreeFormNumber"]):
            changes["PrimaryPhone"] = desired["PrimaryPhone"]
    for key in ("BillAddr", "ShipAddr"):
        if key in desired and _address_differs(existing.get(key), desired[key]):
            changes[key] = desired[key]
    if "PrimaryTaxIdentifier" in desired and not _same_tax_identifier(
            existing.get("PrimaryTaxIdentifier"), desired["PrimaryTaxIdentifier"]):
        changes["PrimaryTaxIdentifier"] = desired["PrimaryTaxIdentifier"]
    if not changes:
        return None
    return sparse_update(existing, changes)
