"""``koppel pools``: one Airflow pool per tenant and API, sized from the APIs' limits."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from koppel import cli
from koppel.cli import API_LIMITS, ApiLimits, main, pool_slots, tenant_pools
from koppel.flows.dag import pool_name

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """Two valid tenants (acme, bolt) and one broken file."""
    for tenant in ("acme", "bolt"):
        doc = dict(DEMO, tenant=tenant, connections={"lightspeed": f"lightspeed_{tenant}",
                                                      "quickbooks": f"quickbooks_{tenant}"})
        doc.pop("$schema", None)
        (tmp_path / f"{tenant}.json").write_text(json.dumps(doc))
    (tmp_path / "broken.json").write_text('{"tenant": "broken"')
    return tmp_path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_slots_follow_the_documented_maths():
    # Lightspeed: floor(20 requests/s × 0.15 s) = 3 tasks fill the per-second limit
    assert pool_slots(API_LIMITS["lightspeed"]) == 3
    # QuickBooks: min(floor(10/s × 0.4 s), 10 in flight) = 4
    assert pool_slots(API_LIMITS["quickbooks"]) == 4
    # the concurrency cap wins when it is the tighter limit, and there is always a slot
    assert pool_slots(ApiLimits("x", per_second=100, concurrent=2, round_trip=1.0, basis="")) == 2
    assert pool_slots(ApiLimits("x", per_second=1, concurrent=None, round_trip=0.1, basis="")) == 1


def test_one_pool_per_tenant_and_api_named_like_the_dags_pools():
    pools = tenant_pools(["acme", "bolt"])
    assert set(pools) == {pool_name(t, api) for t in ("acme", "bolt")
                          for api in ("lightspeed", "quickbooks")}
    assert pools[pool_name("acme", "quickbooks")]["slots"] == 4
    assert pools[pool_name("bolt", "lightspeed")]["slots"] == 3
    assert all(set(p) == {"slots", "description", "include_deferred"} for p in pools.values())
    overridden = tenant_pools(["acme"], {"quickbooks": 2})
    assert overridden[pool_name("acme", "quickbooks")]["slots"] == 2
    assert overridden[pool_name("acme", "lightspeed")]["slots"] == 3


def test_prints_valid_tenants_pools_and_reports_broken_files(mappings, capsys):
    status, out, err = run(["pools", "--dir", str(mappings)], capsys)
    assert status == 1  # the broken tenant file is a problem...
    assert "broken.json" in err
    lines = out.splitlines()  # ...but the valid tenants still get their pools
    assert len(lines) == 4
    assert any(line.startswith("koppel_acme_quickbooks ") and " 4 " in line for line in lines)

    status, out, _ = run(["pools", "acme", "--dir", str(mappings), "--json",
                          "--lightspeed-slots", "2"], capsys)
    assert status == 0
    assert {k: v["slots"] for k, v in json.loads(out).items()} == {
        "koppel_acme_lightspeed": 2, "koppel_acme_quickbooks": 4}


def test_apply_imports_every_pool_with_one_airflow_call(mappings, capsys, monkeypatch):
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        calls.append(json.loads(Path(argv[-1]).read_text()))
        return subprocess.CompletedProcess(argv, 0, "Uploaded 2 pool(s)", "")

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    status, out, _ = run(["pools", "bolt", "--dir", str(mappings), "--apply"], capsys)
    assert status == 0 and "applied 2 pool(s)" in out
    argv, imported = calls
    assert argv[1:] == ["-m", "airflow", "pools", "import", argv[-1]]
    assert not Path(argv[-1]).exists()  # the temporary import file is removed
    assert imported == tenant_pools(["bolt"])


def test_apply_reports_airflows_failure(mappings, capsys, monkeypatch):
    monkeypatch.setattr(cli.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(
        argv, 1, "", "Traceback...\nsqlalchemy.exc.OperationalError: no such table: slot_pool"))
    out = io.StringIO()
    assert cli.apply_pools(tenant_pools(["acme"]), out) == 1
    assert "airflow pools import failed (1)" in out.getvalue()
    assert "no such table" in out.getvalue()


def test_a_full_pool_of_paced_tasks_stays_under_each_limit(whole_limit_per_task):
    task_share = whole_limit_per_task  # the real function (the suite patches it)
    for api, limits in API_LIMITS.items():
        slots = pool_slots(limits)
        share = task_share(api, limits.per_second)
        assert 1 <= share and share * slots <= limits.per_second, (api, share, slots)
    assert task_share("lightspeed", 20) == 6 and task_share("quickbooks", 500) == 125
