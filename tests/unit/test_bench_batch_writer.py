"""The bench's straightforward batch writer against both sandboxes: look-ups one request
each, sales receipts 30 to a batch request, nothing written again on a second pass."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest

from bench.baseline import qbo_client
from bench.batch_writer import BATCH_SIZE, BatchWriter, run_batch_writer
from bench.batches import BatchRecorder, summarize
from bench.harness import LS_UNLIMITED
from koppel.sandbox import lightspeed, quickbooks
from koppel.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandboxes():
    recorder = BatchRecorder(quickbooks.create_app(seed=5))
    with SandboxServer(recorder) as qbo, \
            SandboxServer(lightspeed.create_app(seed=3, orders=70, products=6,
                                                customers=8)) as ls:
        # limits lifted as the bench lifts them (the writers do not pace themselves)
        httpx.put(f"{ls.url}/_sandbox/ratelimit", json=LS_UNLIMITED).raise_for_status()
        httpx.put(f"{qbo.url}/_sandbox/time-scale", json={"scale": 1000.0}).raise_for_status()
        yield {"qbo": qbo, "recorder": recorder,
               "ls": httpx.get(f"{ls.url}/_sandbox/credentials").json()}


def _tax_codes() -> dict[str, str]:
    doc = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())
    return doc["settings"]["tax_codes"]


def test_receipts_go_30_to_a_batch_and_a_second_pass_writes_nothing(sandboxes):
    realm = httpx.post(f"{sandboxes['qbo'].url}/_sandbox/realms",
                       json={"region": "NL", "name": "Batch writer test"}).json()
    recorder = sandboxes["recorder"]
    mark = recorder.mark()
    client = qbo_client(realm)
    first = run_batch_writer(sandboxes["ls"], realm, _tax_codes(), client=client)
    batches = summarize(recorder.since(mark))
    assert first.orders_read == 70
    # the seeded shop has customers whose e-mail QuickBooks refuses (2210); a writer
    # this plain fails their orders and goes on
    assert all(e.endswith("ValidationException 2210") for e in first.errors), first.errors
    assert first.booked > BATCH_SIZE, "enough paid orders to fill a batch"
    assert first.booked + first.skipped + first.failed == 70
    assert batches["batch_requests"] == math.ceil(first.booked / BATCH_SIZE)
    assert batches["largest_batch"] == BATCH_SIZE
    assert batches["write_operations"] == first.booked == batches["operations"]
    assert batches["batches_with_lookups"] == 0, "look-ups are plain queries, not batched"

    mark = recorder.mark()
    again = run_batch_writer(sandboxes["ls"], realm, _tax_codes(), client=client)
    assert again.booked == 0 and again.failed == first.failed
    assert again.skipped == first.booked + first.skipped
    assert recorder.since(mark) == [], "every receipt was found by its DocNumber"


def test_a_batch_larger_than_quickbooks_takes_is_refused():
    with pytest.raises(ValueError, match="1 to 30"):
        BatchWriter(None, {}, batch_size=31)
