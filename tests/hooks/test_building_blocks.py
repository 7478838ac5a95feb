"""The hooks' small parts, without a server: retry-after parsing, pacing, paging, windows,
request ids, query quoting and chunking, fault mapping, the provider metadata."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import jsonschema
import pytest

from koppel.hooks import errors
from koppel.hooks.pacing import HeaderPacer, SlidingWindowLimiter, parse_rate_headers, reset_fallback
from koppel.hooks.paging import PageNumberPaginator, SinceIdPaginator, UpdatedWindow
from koppel.hooks.quickbooks import _chunks, quote, request_id
from koppel.hooks.retry import RetryPolicy, parse_retry_after
from koppel.provider import get_provider_info


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_retry_after_seconds_and_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True),
                             now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True),
                             now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_reset_header_fallback_picks_the_spent_window():
    headers = {"x-ratelimit-limit": "300/3000/12000", "x-ratelimit-remaining": "0/2000/9000",
               "x-ratelimit-reset": "42/2000/20000"}
    assert [w.limit for w in parse_rate_headers(headers)] == [300, 3000, 12000]
    assert reset_fallback(headers) == 42.0
    assert parse_rate_headers({"x-ratelimit-limit": "300"}) == []


def test_header_pacer_slows_down_before_the_limit():
    clock = FakeClock()
    pacer = HeaderPacer(low_water=0.2, clock=clock)
    pacer.observe({"x-ratelimit-limit": "300/3000/12000",
                   "x-ratelimit-remaining": "200/2900/11000",
                   "x-ratelimit-reset": "100/3000/80000"})
    assert pacer.delay() == 0.0
    pacer.observe({"x-ratelimit-limit": "300/3000/12000",
                   "x-ratelimit-remaining": "10/2900/11000",
                   "x-ratelimit-reset": "100/3000/80000"})
    assert pacer.delay() == pytest.approx(10.0)  # 100 s left for 10 calls
    pacer.observe({"x-ratelimit-limit": "300/3000/12000",
                   "x-ratelimit-remaining": "0/2900/11000",
                   "x-ratelimit-reset": "100/3000/80000"})
    assert pacer.delay() == pytest.approx(100.0)
    clock.now += 101
    assert pacer.delay() == 0.0  # the window has reset since


def test_sliding_window_limiter_waits_for_a_slot():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 1.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire() == pytest.approx(1.0)


def test_retry_policy_retries_transient_then_reraises():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise errors.TransientError("boom")
        return "ok"

    policy = RetryPolicy(attempts=5, initial=0.01, maximum=0.01, jitter=0)
    assert policy.call(flaky, sleep=lambda s: None) == "ok"
    assert len(calls) == 3

    def permanent():
        raise errors.LightspeedValidationError("bad")

    with pytest.raises(errors.LightspeedValidationError):
        policy.call(permanent, sleep=lambda s: None)


def test_retry_policy_uses_retry_after():
    waits = []
    policy = RetryPolicy(attempts=2, initial=5, jitter=0)

    def limited():
        raise errors.RateLimited("slow down", retry_after=0.25)

    with pytest.raises(errors.RateLimited):
        policy.call(limited, sleep=waits.append)
    assert waits == [0.25]


def test_paginators():
    pages = PageNumberPaginator(limit=2)
    assert pages.first() == {"page": 1, "limit": 2}
    assert pages.next([{"id": 1}, {"id": 2}]) == {"page": 2, "limit": 2}
    assert pages.next([{"id": 3}]) is None
    since = SinceIdPaginator(limit=2)
    assert since.first() == {"since_id": 0, "limit": 2}
    assert since.next([{"id": 5}, {"id": 9}]) == {"since_id": 9, "limit": 2}
    assert since.next([{"id": 10}]) is None
    with pytest.raises(ValueError):
        PageNumberPaginator(limit=251)


def test_updated_window_is_half_open_and_widened():
    start = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
    window = UpdatedWindow(start, start + timedelta(hours=1), overlap=timedelta(minutes=30))
    assert window.params() == {"updated_at_min": "2025-03-01 09:30:00",
                               "updated_at_max": "2025-03-01 11:30:00"}
    assert window.contains({"updatedAt": "2025-03-01T10:00:00+00:00"})
    assert not window.contains({"updatedAt": "2025-03-01T11:00:00+00:00"})
    assert window.contains({"updatedAt": "2025-03-01T12:59:59+02:00"})
    following = UpdatedWindow(start + timedelta(hours=1), start + timedelta(hours=2))
    assert following.contains({"updatedAt": "2025-03-01T11:00:00+00:00"})
    assert len(window.split(timedelta(minutes=25))) == 3


def test_request_id_is_deterministic_and_short():
    a = request_id("acme", "SalesReceipt", 123, "2025-01-01T00:00:00")
    assert a == request_id("acme", "SalesReceipt", 123, "2025-01-01T00:00:00")
    assert a != request_id("acme", "SalesReceipt", 123, "2025-01-02T00:00:00")
    assert len(a) <= 50


def test_query_quoting_and_chunking():
    assert quote("O'Neil") == "'O\\'Neil'"
    assert quote(True) == "true"
    chunks = list(_chunks([f"SKU-{i}" for i in range(250)], 100, 10_000))
    assert [len(c) for c in chunks] == [100, 100, 50]
    small = list(_chunks([f"SKU-{i:04d}" for i in range(10)], 100, 40))
    assert all(sum(len(quote(v)) + 2 for v in c) <= 40 for c in small)
    assert sum(len(c) for c in small) == 10


@pytest.mark.parametrize("code,cls", [(610, errors.ObjectNotFound), (5010, errors.StaleObject),
                                      (6140, errors.DuplicateDocNumber),
                                      (6240, errors.DuplicateName),
                                      (2020, errors.ValidationFault),
                                      (120, errors.QBOAuthFault)])
def test_fault_mapping(code, cls):
    fault = errors.fault_from_payload({"Error": [{"Message": "m", "Detail": "d",
                                                  "code": str(code), "element": "Name"}],
                                       "type": "ValidationFault"},
                                      method="POST", path="/v3/company/1/customer")
    assert type(fault) is cls
    assert fault.code == code and fault.element == "Name"
    assert f"QBO fault {code}" in str(fault) and "POST /v3/company/1/customer" in str(fault)


@pytest.mark.parametrize("code,library,cls", [
    (120, "AuthorizationException", errors.QBOAuthFault),
    (550, "UnsupportedException", errors.UnsupportedFault),
    (610, "ObjectNotFoundException", errors.ObjectNotFound),
    (620, "GeneralException", errors.GeneralFault),
    (2020, "ValidationException", errors.ValidationFault),
    (6140, "ValidationException", errors.DuplicateDocNumber),
    (6240, "ValidationException", errors.DuplicateName),
    (10000, "SevereException", errors.SevereFault),
    (5010, "QuickbooksException", errors.StaleObject)])
def test_faults_are_python_quickbooks_exceptions_of_their_range(code, library, cls):
    """python-quickbooks decides the range (its ``handle_exceptions``); koppel's fault is
    that library exception too, so ``except ObjectNotFoundException`` code catches it, with
    the library's attributes carrying the API's own message, detail and code."""
    from quickbooks import exceptions as qb

    fault = errors.fault_from_payload({"Error": [{"Message": "Object Not Found",
                                                  "Detail": "Something", "code": str(code)}]},
                                      method="GET", path="/v3/company/1/item/9")
    assert type(fault) is cls
    assert isinstance(fault, getattr(qb, library))
    assert (fault.error_code, fault.message, fault.detail) == (code, "Object Not Found",
                                                              "Something")
    assert str(fault) == (f"QBO fault {code}: Object Not Found [GET /v3/company/1/item/9] "
                          f"— Something")
    with pytest.raises(getattr(qb, library)):
        raise fault
    if code < 500:
        assert isinstance(fault, errors.AuthError)


def test_provider_info_is_valid_and_declares_both_connection_types():
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    types = {c["connection-type"]: c for c in info["connection-types"]}
    assert types["lightspeed_ecom"]["hook-class-name"] == "koppel.hooks.lightspeed.LightspeedHook"
    assert types["quickbooks_online"]["conn-fields"]["refresh_token"]["schema"]["format"] \
        == "password"


def test_airflow_registers_the_connection_types():
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    assert hooks["lightspeed_ecom"].hook_class_name == "koppel.hooks.lightspeed.LightspeedHook"
    assert hooks["quickbooks_online"].connection_type == "quickbooks_online"
