"""The control plane's *after* faults: the app processes the request (the write is
stored), then the answer is lost (``drop_after``) or replaced by a 5xx in the emulated
API's own error format (``500_after``, ``503_after``, ``504_after``)."""

from __future__ import annotations

import re

import httpx
import pytest
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.customer import Customer
from requests.exceptions import RequestException

from koppel.sandbox.control import AFTER_KINDS, FaultRule
from lightspeed_fixtures import api, control, ls, ls_server  # noqa: F401
from quickbooks_fixtures import qb, qbo_server, sandbox  # noqa: F401


def _variant(api) -> dict:  # noqa: F811
    return api.get("variants.json", params={"limit": 1}).json()["variants"][0]


def test_the_after_kinds_are_valid_rule_kinds():
    assert AFTER_KINDS == {"drop_after", "500_after", "503_after", "504_after"}
    for kind in sorted(AFTER_KINDS):
        assert FaultRule(kind=kind).kind == kind
    with pytest.raises(ValueError):
        FaultRule(kind="502_after")


def test_lightspeed_drop_after_stores_the_write_and_loses_the_answer(control, api):  # noqa: F811
    variant = _variant(api)
    target = variant["stockLevel"] + 17
    control.post("/_sandbox/faults", json={"path": f"/variants/{variant['id']}\\.json$",
                                           "method": "PUT", "kind": "drop_after",
                                           "times": 1}).raise_for_status()
    with pytest.raises(httpx.TransportError):
        api.put(f"variants/{variant['id']}.json", json={"variant": {"stockLevel": target}})
    assert api.get(f"variants/{variant['id']}.json").json()["variant"]["stockLevel"] == target
    stats = control.get("/_sandbox/stats").json()
    assert stats["faults"] == {"drop_after": 1}
    assert stats["by_route"]["PUT /{lang}/variants/{variant_id:int}.json"] == 1
    assert stats["by_status"] == {"200": 3}  # GET list, the PUT (app status), GET one


@pytest.mark.parametrize("status", [500, 503, 504])
def test_lightspeed_5xx_after_stores_the_write_and_answers_the_error(control, api,  # noqa: F811
                                                                     status):
    variant = _variant(api)
    target = variant["stockLevel"] + status
    control.post("/_sandbox/faults", json={"path": "/variants/", "method": "PUT",
                                           "sequence": [f"{status}_after"]}).raise_for_status()
    answer = api.put(f"variants/{variant['id']}.json", json={"variant": {"stockLevel": target}})
    assert answer.status_code == status
    error = answer.json()["error"]
    assert (error["code"], error["method"]) == (status, "PUT")
    assert api.get(f"variants/{variant['id']}.json").json()["variant"]["stockLevel"] == target
    assert control.get("/_sandbox/faults").json()[0]["spent"] is True
    # spent: the next write goes through untouched
    again = api.put(f"variants/{variant['id']}.json", json={"variant": {"stockLevel": 3}})
    assert again.status_code == 200 and again.json()["variant"]["stockLevel"] == 3


def _customers(sandbox, qb) -> list[dict]:  # noqa: F811
    return sandbox.get(f"/_sandbox/realms/{qb.company_id}/entities/Customer").json()["Customer"]


def test_quickbooks_drop_after_creates_the_customer_and_loses_the_answer(sandbox, qb):  # noqa: F811
    before = len(_customers(sandbox, qb))
    sandbox.post("/_sandbox/faults", json={"path": "/customer$", "method": "POST",
                                           "kind": "drop_after", "times": 1}).raise_for_status()
    customer = Customer()
    customer.DisplayName = "Lost Answer BV"
    with pytest.raises(RequestException):
        customer.save(qb=qb)
    after = _customers(sandbox, qb)
    assert len(after) == before + 1
    assert [c["DisplayName"] for c in after].count("Lost Answer BV") == 1
    assert sandbox.get("/_sandbox/stats").json()["faults"] == {"drop_after": 1}


def test_quickbooks_504_after_creates_the_customer_and_answers_a_system_fault(sandbox, qb):  # noqa: F811
    sandbox.post("/_sandbox/faults", json={"path": "/customer$", "method": "POST",
                                           "kind": "504_after", "times": 1}).raise_for_status()
    customer = Customer()
    customer.DisplayName = "Gateway Timeout BV"
    with pytest.raises(QuickbooksException) as raised:
        customer.save(qb=qb)
    assert raised.value.error_code == 10000  # python-quickbooks: SevereException, int code
    names = [c["DisplayName"] for c in _customers(sandbox, qb)]
    assert names.count("Gateway Timeout BV") == 1
    # a retry of the same create is now a duplicate name: the write had happened
    retry = Customer()
    retry.DisplayName = "Gateway Timeout BV"
    with pytest.raises(QuickbooksException) as duplicate:
        retry.save(qb=qb)
    assert duplicate.value.error_code == 6240


# -- QuickBooks fault controls (koppel/sandbox/quickbooks/control_routes.py) -------------
def _token(sandbox, realm: str | None = None) -> tuple[dict, dict]:  # noqa: F811
    """Credentials and a fresh token answer for ``realm`` through Intuit's token endpoint."""
    creds = sandbox.get("/_sandbox/credentials", params={"realm": realm} if realm else
                        None).json()
    answer = sandbox.post("/oauth2/v1/tokens/bearer",
                          data={"grant_type": "refresh_token",
                                "refresh_token": creds["refresh_token"]},
                          auth=(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 200
    return creds, answer.json()


def _company(sandbox, creds: dict, access: str) -> httpx.Response:  # noqa: F811
    return sandbox.get(f"/v3/company/{creds['realm_id']}/companyinfo/{creds['realm_id']}",
                       params={"minorversion": 75},
                       headers={"Authorization": f"Bearer {access}",
                                "Accept": "application/json"})


def _refresh(sandbox, creds: dict, refresh_token: str) -> httpx.Response:  # noqa: F811
    return sandbox.post("/oauth2/v1/tokens/bearer",
                        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                        auth=(creds["client_id"], creds["client_secret"]))


def test_expire_access_tokens_now_keeps_refresh_tokens(sandbox):  # noqa: F811
    creds, token = _token(sandbox)
    assert _company(sandbox, creds, token["access_token"]).status_code == 200
    answer = sandbox.post("/_sandbox/oauth/expire-access-tokens",
                          json={"realm": creds["realm_id"]})
    assert answer.json() == {"realm": creds["realm_id"], "expired": 1}
    refused = _company(sandbox, creds, token["access_token"])
    assert refused.status_code == 401
    assert refused.json()["fault"]["error"][0]["code"] == "3200"
    renewed = _refresh(sandbox, creds, token["refresh_token"])
    assert renewed.status_code == 200
    assert _company(sandbox, creds, renewed.json()["access_token"]).status_code == 200


def test_revoke_a_realm_refuses_refresh_and_access(sandbox):  # noqa: F811
    creds, token = _token(sandbox)
    other = next(r["realm_id"] for r in sandbox.get("/_sandbox/realms").json()
                 if r["realm_id"] != creds["realm_id"])
    other_creds, other_token = _token(sandbox, other)
    answer = sandbox.post("/_sandbox/oauth/revoke", json={"realm": creds["realm_id"]})
    assert answer.json() == {"realm": creds["realm_id"], "revoked": 2}  # used + successor
    assert _company(sandbox, creds, token["access_token"]).status_code == 401
    refused = _refresh(sandbox, creds, token["refresh_token"])
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
    # the other realm's grant is untouched
    assert _company(sandbox, other_creds, other_token["access_token"]).status_code == 200


def test_revoke_needs_exactly_one_of_realm_or_token(sandbox):  # noqa: F811
    assert sandbox.post("/_sandbox/oauth/revoke", json={}).status_code == 422
    assert sandbox.post("/_sandbox/oauth/revoke",
                        json={"refresh_token": "RT1-unknown"}).status_code == 404


def test_touch_makes_the_next_update_stale(sandbox, qb):  # noqa: F811
    customer = Customer()
    customer.DisplayName = "Touched BV"
    customer.save(qb=qb)
    touched = sandbox.post(
        f"/_sandbox/realms/{qb.company_id}/entities/Customer/{customer.Id}/touch",
        json={"changes": {"Notes": "edited by a colleague"}})
    assert touched.status_code == 200
    assert touched.json()["Customer"]["SyncToken"] == "1"
    assert touched.json()["Customer"]["Notes"] == "edited by a colleague"
    customer.CompanyName = "Touched"
    with pytest.raises(QuickbooksException) as stale:
        customer.save(qb=qb)  # still SyncToken 0
    assert stale.value.error_code == 5010
    assert sandbox.post(f"/_sandbox/realms/{qb.company_id}/entities/Customer/999999/touch",
                        json={}).status_code == 404
    assert sandbox.post(
        f"/_sandbox/realms/{qb.company_id}/entities/Customer/{customer.Id}/touch",
        json={"changes": {"SyncToken": "7"}}).status_code == 422


def _invoice(sandbox) -> tuple[str, dict]:  # noqa: F811
    """A new unpaid invoice in the default realm: (realm, invoice)."""
    creds, token = _token(sandbox)
    realm = creds["realm_id"]
    dump = sandbox.get(f"/_sandbox/realms/{realm}/entities/Customer").json()
    items = sandbox.get(f"/_sandbox/realms/{realm}/entities/Item").json()["Item"]
    codes = sandbox.get(f"/_sandbox/realms/{realm}/entities/TaxCode").json()["TaxCode"]
    item = next(i for i in items if i["Type"] in ("Service", "NonInventory"))
    line = {"Amount": 10.0, "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1,
                                    "UnitPrice": 10.0,
                                    "TaxCodeRef": {"value": codes[0]["Id"]}}}
    created = sandbox.post(f"/v3/company/{realm}/invoice", params={"minorversion": 75},
                           json={"CustomerRef": {"value": dump["Customer"][0]["Id"]},
                                 "Line": [line]},
                           headers={"Authorization": f"Bearer {token['access_token']}",
                                    "Accept": "application/json"})
    assert created.status_code == 200, created.text
    return realm, created.json()["Invoice"]


def test_delete_by_hand_tombstones_the_document(sandbox):  # noqa: F811
    realm, unpaid = _invoice(sandbox)
    gone = sandbox.delete(f"/_sandbox/realms/{realm}/entities/Invoice/{unpaid['Id']}")
    assert gone.json() == {"status": "Deleted", "domain": "QBO", "Id": unpaid["Id"]}
    after = sandbox.get(f"/_sandbox/realms/{realm}/entities/Invoice").json()
    assert unpaid["Id"] in after["deleted"]
    assert unpaid["Id"] not in [i["Id"] for i in after["Invoice"]]
    assert sandbox.delete(
        f"/_sandbox/realms/{realm}/entities/Invoice/{unpaid['Id']}").status_code == 404


def test_429_headers_follow_the_setting(sandbox, qb):  # noqa: F811
    creds, token = _token(sandbox)
    assert sandbox.get("/_sandbox/throttle-headers").json() == {"retry_after": "none"}
    sandbox.post("/_sandbox/faults", json={"path": "/companyinfo/", "sequence": ["429"] * 3,
                                           "retry_after": 7}).raise_for_status()
    try:
        documented = _company(sandbox, creds, token["access_token"])
        assert documented.status_code == 429 and "retry-after" not in documented.headers
        assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", documented.headers["intuit_tid"])
        sandbox.put("/_sandbox/throttle-headers", json={"retry_after": "window"})
        assert _company(sandbox, creds, token["access_token"]).headers["retry-after"] == "7"
        sandbox.put("/_sandbox/throttle-headers", json={"retry_after": 2})
        assert _company(sandbox, creds, token["access_token"]).headers["retry-after"] == "2"
        ok = _company(sandbox, creds, token["access_token"])
        assert ok.status_code == 200 and "retry-after" not in ok.headers
        assert ok.headers["intuit_tid"] != documented.headers["intuit_tid"]
    finally:
        sandbox.put("/_sandbox/throttle-headers", json={"retry_after": "none"})
    assert sandbox.put("/_sandbox/throttle-headers",
                       json={"retry_after": -1}).status_code == 422


def test_429_window_retry_after_is_when_the_minute_frees_a_slot(sandbox):  # noqa: F811
    creds, token = _token(sandbox)
    sandbox.put("/_sandbox/time-scale", json={"scale": 10})  # the minute is 6 s
    sandbox.put("/_sandbox/throttle-headers", json={"retry_after": "window"})
    try:
        codes = [_company(sandbox, creds, token["access_token"]) for _ in range(501)]
        assert [r.status_code for r in codes[:500]] == [200] * 500
        assert codes[500].status_code == 429
        assert 1 <= int(codes[500].headers["retry-after"]) <= 6
    finally:
        sandbox.put("/_sandbox/throttle-headers", json={"retry_after": "none"})


def test_void_by_hand_keeps_the_document_with_zero_amounts(sandbox):  # noqa: F811
    realm, invoice = _invoice(sandbox)
    voided = sandbox.delete(f"/_sandbox/realms/{realm}/entities/Invoice/{invoice['Id']}",
                            params={"void": "true"})
    assert voided.status_code == 200
    stored = next(i for i in sandbox.get(f"/_sandbox/realms/{realm}/entities/Invoice")
                  .json()["Invoice"] if i["Id"] == invoice["Id"])
    assert (stored["DocNumber"], float(stored["TotalAmt"])) == (invoice["DocNumber"], 0.0)
    assert stored["SyncToken"] == "1"


def test_lightspeed_revoked_api_key_is_refused_at_once(control, api, ls, ls_server):  # noqa: F811
    assert api.get("shop.json").status_code == 200
    fresh = control.post("/_sandbox/credentials/revoke").json()
    assert (fresh["api_key"], fresh["api_secret"]) != (ls["api_key"], ls["api_secret"])
    assert len(fresh["api_key"]) == len(fresh["api_secret"]) == 32
    refused = api.get("shop.json")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Access denied."
    with httpx.Client(base_url=f"{ls_server.url}/nl/", timeout=30,
                      auth=(fresh["api_key"], fresh["api_secret"])) as renewed:
        assert renewed.get("shop.json").status_code == 200
    control.post("/_sandbox/reset", json={"seed": 1}).raise_for_status()
    assert api.get("shop.json").status_code == 200


def test_an_armed_touch_lands_before_the_next_write(sandbox, qb):  # noqa: F811
    customer = Customer()
    customer.DisplayName = "Raced BV"
    customer.save(qb=qb)
    assert str(customer.SyncToken) == "0"
    armed = sandbox.post(
        f"/_sandbox/realms/{qb.company_id}/entities/Customer/{customer.Id}/touch",
        json={"changes": {"Notes": "saved by a colleague"}, "when": "before_next_write"})
    assert armed.json() == {"armed": 1}
    (stored,) = [c for c in _customers(sandbox, qb) if c["Id"] == customer.Id]
    assert stored["SyncToken"] == "0"  # reads do not fire it
    other = Customer()
    other.DisplayName = "Bystander BV"
    other.save(qb=qb)  # nor writes of other objects
    (stored,) = [c for c in _customers(sandbox, qb) if c["Id"] == customer.Id]
    assert stored["SyncToken"] == "0"
    customer.CompanyName = "Raced"
    with pytest.raises(QuickbooksException) as stale:
        customer.save(qb=qb)
    assert stale.value.error_code == 5010
    (stored,) = [c for c in _customers(sandbox, qb) if c["Id"] == customer.Id]
    assert (stored["SyncToken"], stored["Notes"]) == ("1", "saved by a colleague")
    customer.SyncToken = "1"  # the next write reads the new version: no edit armed any more
    customer.save(qb=qb)
    (stored,) = [c for c in _customers(sandbox, qb) if c["Id"] == customer.Id]
    assert (stored["SyncToken"], stored["CompanyName"]) == ("2", "Raced")
