from datetime import date
from decimal import Decimal as D

from koppel.domain.items import (
    ItemPolicy,
    desired_item,
    duplicate_skus,
    fold_category_path,
    item_changes,
    item_content_hash,
    item_name,
    resolve_item_name,
)
from koppel.domain.qbo_payloads import ItemAccounts
from koppel.domain.records import MappedItem

INVENTORY = ItemPolicy(inventory_enabled=True)
ACCOUNTS = ItemAccounts(income_account_id="79", expense_account_id="80", asset_account_id="81")


def variant(**overrides):
    data = {"source_product_id": 10, "source_variant_id": 100, "sku": "TS-M-RED", "name": "T-shirt Basic",
            "description": "Soft cotton", "price_excl": "10.00", "price_incl": "12.10", "tax_rate": 21,
            "purchase_cost": "4.00", "quantity": 5, "track_stock": True, "ean": "8712345678906",
            "options": [{"name": "Size", "value": "M"}, {"name": "Colour", "value": "Red"}],
            "category_path": ["Clothing", "Shirts"]}
    data.update(overrides)
    return MappedItem.model_validate(data)


def test_simple_and_variant_names():
    assert item_name(variant(options=None)) == "T-shirt Basic"
    assert item_name(variant()) == "T-shirt Basic - M / Red"
    assert item_name(variant(name="Ratio: 1:2")) == "Ratio - 1-2 - M / Red"


def test_long_names_keep_options():
    name = item_name(variant(name="Extraordinarily " * 10 + "Shirt"))
    assert len(name) <= 100 and name.endswith(" - M / Red")


def test_item_name_clash_uses_sku_then_counter():
    taken = {"T-shirt Basic - M / Red"}
    assert resolve_item_name(variant(), taken) == "T-shirt Basic - M / Red (TS-M-RED)"
    assert resolve_item_name(variant(), taken | {"T-shirt Basic - M / Red (TS-M-RED)"}) == "T-shirt Basic - M / Red (2)"
    no_sku = resolve_item_name(variant(sku=None), taken)
    assert no_sku == resolve_item_name(variant(sku=None), taken) and no_sku != "T-shirt Basic - M / Red"


def test_category_folding():
    folded = fold_category_path(["A", "B", "C", "D", "E", "F"])
    assert folded.names == ("A", "B", "C", "D > E > F") and folded.folded and folded.original_depth == 6
    plain = fold_category_path(["A", "B: Sub"])
    assert plain.names == ("A", "B - Sub") and not plain.folded
    assert fold_category_path(["A", "B", "C", "D"]).names == ("A", "B", "C", "D")


def test_prices_excl_or_incl_and_ean_target():
    assert desired_item(variant(), name="N", policy=ItemPolicy(), accounts=ACCOUNTS)["Type"] == "NonInventory"
    excl = desired_item(variant(), name="N", policy=INVENTORY, accounts=ACCOUNTS, category_id="5",
                        inventory_start_date=date(2024, 1, 1))
    assert excl["UnitPrice"] == 10 and excl["SalesTaxIncluded"] is False
    assert excl["Description"] == "Soft cotton\nEAN: 8712345678906"
    assert excl["Type"] == "Inventory" and excl["QtyOnHand"] == 5 and excl["ParentRef"] == {"value": "5"}
    incl = desired_item(variant(track_stock=False), name="N", accounts=ACCOUNTS,
                        policy=ItemPolicy(prices_include_tax=True, ean_target="purchase_description"))
    assert incl["UnitPrice"] == 12.1 and incl["SalesTaxIncluded"] is True
    assert incl["Description"] == "Soft cotton" and incl["PurchaseDesc"] == "EAN: 8712345678906"
    assert incl["Type"] == "NonInventory" and "QtyOnHand" not in incl


def existing_item(**overrides):
    record = {"Id": "31", "SyncToken": "2", "Name": "Old name", "Sku": "TS-M-RED", "Type": "Inventory",
              "Description": "Soft cotton\nEAN: 8712345678906", "UnitPrice": 10.0, "SalesTaxIncluded": False,
              "PurchaseCost": 4, "Active": True, "ParentRef": {"value": "5"}, "QtyOnHand": 99}
    record.update(overrides)
    return record


def test_item_changes_none_when_unchanged_and_name_is_create_only():
    desired = desired_item(variant(), name="T-shirt Basic - M / Red", policy=INVENTORY, accounts=ACCOUNTS,
                           category_id="5", inventory_start_date=date(2024, 1, 1))
    assert item_changes(existing_item(), desired) is None


def test_item_changes_honours_update_policy():
    desired = desired_item(variant(price_excl="11.50"), name="New name", policy=INVENTORY, accounts=ACCOUNTS,
                           category_id="6", inventory_start_date=date(2024, 1, 1))
    update = item_changes(existing_item(), desired)
    assert update == {"Id": "31", "SyncToken": "2", "sparse": True, "UnitPrice": 11.5}
    full = item_changes(existing_item(), desired, {"Name": "always", "ParentRef": "always", "UnitPrice": "create_only"})
    assert full["Name"] == "New name" and full["ParentRef"] == {"value": "6"} and full["SubItem"] is True
    assert "UnitPrice" not in full


def test_content_hash_stable_and_sensitive():
    assert item_content_hash(variant()) == item_content_hash(variant(price_excl="10.000"))
    assert item_content_hash(variant()) == item_content_hash(variant(quantity=7))
    assert item_content_hash(variant()) != item_content_hash(variant(price_excl="10.01"))


def test_duplicate_skus_reported():
    items = [variant(), variant(source_variant_id=101), variant(source_variant_id=102, sku="OTHER"),
             variant(source_variant_id=103, sku=None), variant(source_variant_id=104, sku=None)]
    assert duplicate_skus(items) == {"ts-m-red": ("100", "101")}


def test_every_qbo_name_is_cleaned_in_one_place():
    """QuickBooks rejects ``:``, tab and newline in names (docs/vendor-facts.md): customer
    and item payloads pass every name field through ``koppel.domain.names.qbo_name``."""
    from koppel.domain.names import qbo_name
    from koppel.domain.qbo_payloads import category_payload, customer_payload

    assert qbo_name("Bakkerij De Zon: Utrecht") == "Bakkerij De Zon - Utrecht"
    assert qbo_name("Tab\there\nand\r\nthere") == "Tab here and there"
    assert qbo_name(" : ") == "-"
    assert qbo_name("x" * 120 + " tail") == "x" * 100
    body = customer_payload(display_name="Bakkerij De Zon: Utrecht",
                            company_name="Bakkerij De Zon:\tUtrecht", given_name="Jan:",
                            family_name="Jansen:BV")
    assert body["DisplayName"] == "Bakkerij De Zon - Utrecht"
    assert body["CompanyName"] == "Bakkerij De Zon - Utrecht"
    assert (body["GivenName"], body["FamilyName"]) == ("Jan-", "Jansen-BV")
    assert category_payload("Kaas: Oud")["Name"] == "Kaas - Oud"


def test_features_reach_the_description_the_tenant_maps_them_to():
    from koppel.domain.items import ItemPolicy, desired_item

    item = variant(attributes={"Made in": "Nederland", "Levertijd": " 2 dagen ", "Leeg": ""})
    accounts = ItemAccounts(income_account_id="1", expense_account_id="2", asset_account_id="3")
    plain = desired_item(item, name="T", policy=ItemPolicy(), accounts=accounts)
    assert plain["Description"] == "Soft cotton\nEAN: 8712345678906"
    into_description = desired_item(item, name="T", accounts=accounts,
                                     policy=ItemPolicy(attributes_target="description"))
    assert into_description["Description"] == \
        "Soft cotton\nEAN: 8712345678906\nMade in: Nederland\nLevertijd: 2 dagen"
    into_purchase = desired_item(item, name="T", accounts=accounts,
                                 policy=ItemPolicy(attributes_target="purchase_description",
                                                   ean_target="none"))
    assert into_purchase["PurchaseDesc"] == "Made in: Nederland\nLevertijd: 2 dagen"
