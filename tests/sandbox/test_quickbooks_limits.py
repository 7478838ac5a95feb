"""Throttling of the QBO sandbox: 429 with the live API's XML body (or JSON), request and
batch windows per realm, scaled by the time scale; the control plane is never limited."""

from __future__ import annotations

import json
import time

import pytest
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.customer import Customer

from quickbooks_fixtures import *  # noqa: F401,F403
from quickbooks_fixtures import connect


def _batch(qb) -> dict:
    return qb.batch_operation(json.dumps({"BatchItemRequest": [
        {"bId": "1", "Query": "SELECT COUNT(*) FROM Term"}]}))


def test_batch_limit_answers_429_xml_then_recovers(sandbox, qb):
    for _ in range(40):
        _batch(qb)
    with pytest.raises(QuickbooksException) as error:
        _batch(qb)
    assert error.value.error_code == 10000  # python-quickbooks cannot read the XML
    assert "ThrottleExceeded" in error.value.message and "<IntuitResponse" in error.value.message
    assert sandbox.get("/_sandbox/stats").json()["throttled"] == 1
    Customer.all(qb=qb)  # ordinary requests still pass
    sandbox.put("/_sandbox/time-scale", json={"scale": 6000})  # 60 s window → 10 ms
    time.sleep(0.05)
    assert _batch(qb)["BatchItemResponse"][0]["QueryResponse"]["totalCount"] == 4


def test_request_limit_per_realm_and_json_format(sandbox, qb):
    url = f"{qb.api_url}/company/{qb.company_id}/preferences"
    statuses = [qb.session.get(url, params={"minorversion": 75}).status_code
                for _ in range(501)]
    assert statuses.count(200) == 500 and statuses[-1] == 429  # the token refresh is free
    answer = qb.session.get(url, params={"minorversion": 75})
    assert answer.status_code == 429
    assert answer.headers["content-type"].startswith("application/xml")
    assert "errorCode=003001; statusCode=429" in answer.text
    sandbox.put("/_sandbox/throttle-format", json={"format": "json"})
    answer = qb.session.get(url, params={"minorversion": 75})
    assert answer.json()["Fault"]["Error"][0]["code"] == "3001"
    assert answer.json()["Fault"]["type"] == "SERVICE"
    us = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "US")
    assert Customer.all(qb=connect(sandbox, us["realm_id"]))  # other realm unaffected
    assert sandbox.get("/_sandbox/stats").status_code == 200  # control plane not limited


def test_injected_429_uses_the_qbo_throttle_body(sandbox, qb):
    sandbox.post("/_sandbox/faults", json={"path": "/query$", "sequence": ["429", "ok"]})
    with pytest.raises(QuickbooksException) as error:
        Customer.all(qb=qb)
    assert "ThrottleExceeded" in error.value.message
    assert Customer.all(qb=qb)
