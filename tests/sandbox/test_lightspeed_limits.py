"""Rate limits, fault injection and concurrent use of the Lightspeed sandbox."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import httpx
import pytest

from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import GENEROUS


def test_rate_limit_headers_count_down(control, api):
    control.put("/_sandbox/ratelimit", json={"limit_5min": 300, "limit_hour": 3000,
                                             "limit_day": 12000, "clear": True})
    first = api.get("shop.json")
    second = api.get("shop.json")
    assert first.headers["X-RateLimit-Limit"] == "300/3000/12000"
    assert first.headers["X-RateLimit-Remaining"] == "299/2999/11999"
    assert second.headers["X-RateLimit-Remaining"] == "298/2998/11998"
    resets = [int(x) for x in second.headers["X-RateLimit-Reset"].split("/")]
    assert 0 < resets[0] <= 300 and 0 < resets[1] <= 3600 and 0 < resets[2] <= 86400
    status = api.get("account/ratelimit.json").json()["ratelimit"]
    assert status["limit5Min"]["limit"] == 300 and status["limit5Min"]["remaining"] == 297
    assert set(status["limitDay"]) == {"limit", "remaining", "reset", "resetTime"}
    # the control plane is never limited or counted
    control.get("/_sandbox/stats")
    assert api.get("shop.json").headers["X-RateLimit-Remaining"].startswith("296/")


def test_429_with_retry_after_seconds_then_recovery(control, api):
    control.put("/_sandbox/time-scale", json={"scale": 100})  # 5 min window = 3 s
    control.put("/_sandbox/ratelimit", json={"limit_5min": 3, "clear": True})
    assert [api.get("shop.json").status_code for _ in range(3)] == [200, 200, 200]
    throttled = api.get("orders.json")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 3
    assert throttled.headers["X-RateLimit-Remaining"].startswith("0/")
    assert control.get("/_sandbox/stats").json()["throttled"] == 1


def test_retry_after_as_http_date(control, api):
    control.put("/_sandbox/ratelimit", json={"limit_5min": 1, "retry_after": "http-date",
                                             "clear": True})
    api.get("shop.json")
    throttled = api.get("shop.json")
    assert throttled.status_code == 429
    assert parsedate_to_datetime(throttled.headers["Retry-After"]).tzinfo is not None


def test_per_second_limit(control, api):
    control.put("/_sandbox/ratelimit", json={"per_second": 20, "clear": True})
    codes = [api.get("shop.json").status_code for _ in range(25)]
    assert codes[:20] == [200] * 20 and 429 in codes[20:]


@pytest.mark.parametrize("kind", ["500", "503", "404"])
def test_injected_faults_use_lightspeed_envelope(control, api, kind):
    control.post("/_sandbox/faults", json={"path": "^/nl/orders", "kind": kind, "times": 1})
    failed = api.get("orders.json")
    assert failed.status_code == int(kind)
    assert failed.json()["error"]["code"] == int(kind)
    assert failed.json()["error"]["request"] == "/nl/orders.json"
    assert api.get("orders.json").status_code == 200  # transient
    assert api.get("shop.json").status_code == 200
    assert control.get("/_sandbox/stats").json()["faults"] == {kind: 1}


def test_latency_fault_still_answers(control, api):
    control.post("/_sandbox/faults", json={"path": "shop", "kind": "latency",
                                           "latency_ms": 50, "times": 1})
    assert api.get("shop.json").status_code == 200
    assert control.get("/_sandbox/stats").json()["faults_latency"] == 1


def test_dropped_connection_is_a_transport_error(control, api):
    control.post("/_sandbox/faults", json={"path": "orders", "kind": "drop", "times": 1})
    with pytest.raises((httpx.TransportError, httpx.RemoteProtocolError)):
        api.get("orders.json")
    assert api.get("orders.json").status_code == 200


def test_concurrent_reads_and_writes(control, api, ls_server, ls):
    control.put("/_sandbox/ratelimit", json=GENEROUS)
    auth = (ls["api_key"], ls["api_secret"])
    variant = api.get("variants.json").json()["variants"][0]

    def work(i: int) -> list[int]:
        with httpx.Client(base_url=f"{ls_server.url}/nl/", auth=auth, timeout=30) as client:
            codes = [client.get("orders.json", params={"page": i % 3 + 1}).status_code,
                     client.get("orders/count.json").status_code,
                     client.put(f"variants/{variant['id']}.json",
                                json={"variant": {"stockLevel": 1000 + i}}).status_code]
            codes.append(control.post("/_sandbox/orders", json={"count": 1}).status_code)
            return codes

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(24)))
    assert all(code in (200, 201) for codes in results for code in codes)
    assert api.get("orders/count.json").json() == {"count": 60 + 24}
    ids = [o["id"] for o in api.get("orders.json", params={"limit": 250}).json()["orders"]]
    assert len(ids) == len(set(ids)) == 84
    movements = api.get("variants/movements.json", params={"limit": 250}).json()
    assert len(movements["variantsMovements"]) >= 1
