"""Products → QBO items: names, categories, prices, EANs, update policy, change detection.

* A simple product's item is named after the product; a variant's after the product
  plus its option values: ``"T-shirt Basic - M / Red"``. Names are at most 100
  characters (the title is shortened, the options are kept) and have no ``:`` (QBO's
  hierarchy separator in ``FullyQualifiedName``). A name taken by another item gets the
  SKU (or a tag of the variant id) as suffix, then a counter — deterministically.
* Lightspeed category trees may be deeper than QBO's four levels: levels 4..n are
  joined into the fourth name (``"D > E > F"``) and the folding is reported.
* Prices go out excl or incl VAT per tenant, with ``SalesTaxIncluded`` saying which.
* QBO has no EAN field: by default it is appended to the description as ``EAN: …``.
* Updates honour the tenant's policy per field: ``create_only`` fields are written when
  the item is created and never again; ``always`` fields are kept in sync.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Literal, Mapping

from koppel.domain.hashing import content_hash
from koppel.domain.money import to_decimal
from koppel.domain.names import (
    MAX_NAME,
    Taken,
    clean_text,
    qbo_safe,
    resolve_name,
    stable_tag,
    truncate_at_word,
)
from koppel.domain.qbo_payloads import ItemAccounts, item_payload, sparse_update
from koppel.domain.records import MappedItem

QBO_MAX_CATEGORY_DEPTH = 4
CATEGORY_FOLD_SEPARATOR = " > "
OPTION_SEPARATOR = " / "

UpdateMode = Literal["create_only", "always"]
EanPlacement = Literal["description", "purchase_description", "none"]

#: The QBO item fields koppel writes, and how each is updated by default.
DEFAULT_UPDATE_POLICY: Mapping[str, UpdateMode] = {
    "Name": "create_only",
    "Sku": "create_only",
    "Description": "always",
    "PurchaseDesc": "always",
    "UnitPrice": "always",
    "SalesTaxIncluded": "always",
    "PurchaseCost": "always",
    "Active": "always",
    "ParentRef": "create_only",
}


def item_name(item: MappedItem, limit: int = MAX_NAME) -> str:
    """``Title`` or ``Title - Opt1 / Opt2`` within ``limit`` (the title gives way first)."""
    title = qbo_safe(item.name)
    values = [clean_text(qbo_safe(str(v))) for v in item.options.values()]
    values = [v for v in values if v]
    if not values:
        return truncate_at_word(title, limit)
    suffix = " - " + OPTION_SEPARATOR.join(values)
    if len(suffix) > limit // 2:
        suffix = truncate_at_word(suffix, limit // 2)
    return f"{truncate_at_word(title, limit - len(suffix))}{suffix}"


def resolve_item_name(item: MappedItem, taken: Taken, limit: int = MAX_NAME) -> str:
    """:func:`item_name`, made unique against ``taken`` (names of *other* items)."""
    tag = qbo_safe(item.sku) if item.sku else stable_tag(f"variant:{item.source_variant_id}")
    return resolve_name(item_name(item, limit), identity_tag=tag, taken=taken, limit=limit)


@dataclass(frozen=True)
class FoldedPath:
    """A category path fitted to QBO's depth; ``folded`` says whether levels were joined."""

    names: tuple[str, ...]
    folded: bool
    original_depth: int


def fold_category_path(
    path: Iterable[str], max_depth: int = QBO_MAX_CATEGORY_DEPTH, separator: str = CATEGORY_FOLD_SEPARATOR
) -> FoldedPath:
    """Fit a category path to ``max_depth`` levels by joining the deepest ones.

    ``["A", "B", "C", "D", "E", "F"]`` → ``("A", "B", "C", "D > E > F")``. Every name is
    made QBO-safe and at most 100 characters (a joined name keeps its last levels).
    """
    parts = [qbo_safe(p) for p in path]
    parts = [p for p in parts if p]
    depth = len(parts)
    folded = depth > max_depth
    if folded:
        head, tail = parts[: max_depth - 1], parts[max_depth - 1 :]
        joined = separator.join(tail)
        if len(joined) > MAX_NAME:
            joined = "…" + joined[-(MAX_NAME - 1) :].lstrip()
        parts = head + [joined]
    return FoldedPath(names=tuple(truncate_at_word(p) for p in parts), folded=folded, original_depth=depth)


@dataclass(frozen=True)
class ItemPolicy:
    """Tenant settings for products → items."""

    prices_include_tax: bool = False
    ean_target: EanPlacement = "description"
    #: where the product's features/attributes ("kenmerken": ``Made in: NL``) go
    attributes_target: EanPlacement = "none"
    inventory_enabled: bool = False
    untracked_type: Literal["NonInventory", "Service"] = "NonInventory"
    update_policy: Mapping[str, UpdateMode] = field(default_factory=lambda: dict(DEFAULT_UPDATE_POLICY))


def item_type_for(item: MappedItem, policy: ItemPolicy) -> Literal["Inventory", "NonInventory", "Service"]:
    """Inventory when the shop tracks stock and the QBO plan has inventory, else untracked type."""
    if item.track_stock and policy.inventory_enabled:
        return "Inventory"
    return policy.untracked_type


def _with_ean(text: str | None, ean: str | None) -> str | None:
    if not ean:
        return text
    line = f"EAN: {ean}"
    return f"{text}\n{line}" if text else line


def item_price(item: MappedItem, policy: ItemPolicy) -> tuple[Decimal | None, bool]:
    """The ``UnitPrice`` and ``SalesTaxIncluded`` for the tenant's price basis."""
    price = item.price_incl if policy.prices_include_tax else item.price_excl
    return price, policy.prices_include_tax


def desired_item(
    item: MappedItem,
    *,
    name: str,
    policy: ItemPolicy,
    accounts: ItemAccounts,
    category_id: str | None = None,
    inventory_start_date: date | None = None,
) -> dict[str, Any]:
    """The Item body koppel wants in QBO for ``item`` (``name`` already resolved)."""
    description = clean_text(item.description)
    purchase_description = None
    if policy.ean_target == "description":
        description = _with_ean(description, item.ean)
    elif policy.ean_target == "purchase_description":
        purchase_description = _with_ean(None, item.ean)
    features = "\n".join(f"{clean_text(k)}: {clean_text(str(v))}"
                         for k, v in item.attributes.items() if clean_text(str(v)))
    if features and policy.attributes_target == "description":
        description = f"{description}\n{features}" if description else features
    elif features and policy.attributes_target == "purchase_description":
        purchase_description = f"{purchase_description}\n{features}" if purchase_description \
            else features
    price, tax_included = item_price(item, policy)
    item_type = item_type_for(item, policy)
    return item_payload(
        name=name,
        item_type=item_type,
        accounts=accounts,
        sku=item.sku,
        description=description,
        purchase_description=purchase_description,
        unit_price=price,
        sales_tax_included=tax_included if price is not None else None,
        purchase_cost=item.purchase_cost,
        category_id=category_id,
        quantity_on_hand=item.quantity if item_type == "Inventory" else None,
        inventory_start_date=inventory_start_date if item_type == "Inventory" else None,
        active=item.active,
    )


def _same(field_name: str, have: Any, want: Any) -> bool:
    if field_name in ("UnitPrice", "PurchaseCost"):
        if have is None or want is None:
            return have is None and want is None
        return to_decimal(have) == to_decimal(want)
    if field_name == "ParentRef":
        return str((have or {}).get("value")) == str((want or {}).get("value"))
    if isinstance(want, str) or isinstance(have, str):
        return " ".join(str(have or "").split()) == " ".join(str(want or "").split())
    return have == want


def item_changes(
    existing: Mapping[str, Any],
    desired: Mapping[str, Any],
    update_policy: Mapping[str, UpdateMode] | None = None,
) -> dict[str, Any] | None:
    """A sparse update for ``existing`` (a QBO Item) or None when nothing to change.

    Only fields whose policy is ``always`` are compared; a field the mapping leaves
    empty (absent from ``desired``) is never blanked in QBO.
    """
    policy = dict(DEFAULT_UPDATE_POLICY)
    policy.update(update_policy or {})
    changes: dict[str, Any] = {}
    for field_name, mode in policy.items():
        if mode != "always" or field_name not in desired:
            continue
        if not _same(field_name, existing.get(field_name), desired[field_name]):
            changes[field_name] = desired[field_name]
            if field_name == "ParentRef":
                changes["SubItem"] = True
    if not changes:
        return None
    return sparse_update(existing, changes)


def item_content_hash(item: MappedItem) -> str:
    """Hash of everything koppel maps for an item (stock level excluded: the stock flow owns it)."""
    return content_hash(item.model_dump(exclude={"quantity"}))


def duplicate_skus(items: Iterable[MappedItem]) -> dict[str, tuple[str, ...]]:
    """SKUs carried by more than one variant → the variant ids (sorted). Blank SKUs are ignored.

    koppel matches QBO items on SKU, so a duplicate in the shop makes the match ambiguous:
    the caller reports these variants instead of guessing which is meant.
    """
    seen: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.sku:
            seen[item.sku.strip().casefold()].add(item.source_variant_id)
    return {
        sku: tuple(sorted(ids, key=lambda v: (len(v), v)))
        for sku, ids in sorted(seen.items())
        if len(ids) > 1
    }
