"""The state store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from koppel.store.state import ActivityEntry, StateStore

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _postgres_url() -> str:
    name = "koppel_test_state"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname=:n"),
                                  {"n": name}).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql", "koppel_state connection"])
def store(request, tmp_path, monkeypatch):
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    elif request.param == "postgresql":
        engine = sa.create_engine(_postgres_url())
    else:  # as production finds it: the Airflow connection, its URL from the provider hook
        from koppel.store.engine import state_db_url

        database = _postgres_url().rsplit("/", 1)[1]
        monkeypatch.setenv("AIRFLOW_CONN_KOPPEL_STATE",
                           f"postgresql://postgres@127.0.0.1:5432/{database}")
        url = state_db_url()
        assert url.startswith("postgresql+") and url.endswith(f"/{database}"), url
        engine = sa.create_engine(url)
    yield StateStore(engine)
    engine.dispose()


def test_the_state_url_comes_from_the_connections_provider_hook(tmp_path, monkeypatch):
    import json

    from koppel.store.engine import state_db_url

    monkeypatch.setenv("AIRFLOW_CONN_KOPPEL_STATE", json.dumps(
        {"conn_type": "sqlite", "host": str(tmp_path / "state.db")}))
    assert state_db_url() == f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_KOPPEL_STATE",
                       "postgresql://koppel:s%40cret@db.example:5433/koppel")
    url = sa.engine.make_url(state_db_url())
    assert (url.drivername.split("+")[0], url.username, url.password, url.host, url.port,
            url.database) == ("postgresql", "koppel", "s@cret", "db.example", 5433, "koppel")


def test_activity_round_trip_and_counts(store):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    entries = [
        ActivityEntry("order", "101", "created", "SalesReceipt", "55", amount=Decimal("12.10")),
        ActivityEntry("order", "102", "skipped", reason="already booked"),
        ActivityEntry("order", "103", "failed", reason="unknown SKU 'X-1'"),
    ]
    assert store.record_activity(tenant=tenant, flow="orders", run_id="r1",
                                 direction="lightspeed_to_quickbooks", entries=entries) == 3
    assert store.action_counts(tenant=tenant, flow="orders") == {
        "created": 1, "skipped": 1, "failed": 1}
    rows = store.activity(tenant=tenant, source_id="101")
    assert rows[0]["target_id"] == "55" and Decimal(rows[0]["amount"]) == Decimal("12.10")


def test_unknown_action_is_rejected():
    with pytest.raises(ValueError, match="unknown activity action"):
        ActivityEntry("order", "1", "booked")


def test_xref_upsert_and_reverse_lookup(store):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    store.save_xref(tenant, "order", "101", "SalesReceipt", "55", content_hash="a")
    store.save_xref(tenant, "order", "101", "SalesReceipt", "56", content_hash="b")
    found = store.xrefs(tenant, "order", ["101", "999"])
    assert set(found) == {"101"}
    assert found["101"].target_id == "56" and found["101"].content_hash == "b"
    assert store.xrefs_by_target(tenant, "SalesReceipt", ["56"]) == {"56": ("order", "101")}


def test_failed_records_count_attempts_and_resolve(store):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    store.mark_failed(tenant, "orders", "7", "boom")
    store.mark_failed(tenant, "orders", "7", "boom again")
    store.mark_failed(tenant, "orders", "8", "bad")
    failed = {r["source_id"]: r for r in store.failed(tenant, "orders")}
    assert failed["7"]["attempts"] == 2 and failed["7"]["reason"] == "boom again"
    store.mark_resolved(tenant, "orders", ["7"])
    assert [r["source_id"] for r in store.failed(tenant, "orders")] == ["8"]


def test_staged_payloads_live_only_for_their_run(store):
    run = f"run-{uuid.uuid4().hex}"
    ref = store.stage(run, "extract", 0, [{"id": 1}])
    store.stage(run, "extract", 1, [{"id": 2}])
    assert store.staged(ref) == [{"id": 1}]
    assert list(store.staged_chunks(run, "extract")) == [[{"id": 1}], [{"id": 2}]]
    assert store.purge_run(run) == 2
    with pytest.raises(LookupError):
        store.staged(ref)


def test_retention_purges_old_activity(store):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    store.record_activity(tenant=tenant, flow="orders", run_id="r", direction="x",
                          entries=[ActivityEntry("order", "1", "created")])
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert store.purge_older_than(tenant, future)["activity"] == 1
    assert store.activity(tenant=tenant) == []


def test_previews_keep_the_latest_dry_run_and_go_with_erasure_and_retention(store):
    """A dry run's would-be request is kept per record (latest only), never in the
    activity log; it is erased with the record and purged with the activity."""
    tenant = f"t{uuid.uuid4().hex[:8]}"

    def entry(source_id, doc):
        return ActivityEntry("order", source_id, "skipped", reason="dry run: would create",
                             preview={"target_type": "SalesReceipt", "operation": "create",
                                      "payload": {"DocNumber": doc}})

    store.record_activity(tenant=tenant, flow="orders", run_id="r1", direction="x",
                          entries=[entry("1", "A-1")])
    assert store.save_previews(tenant, "orders", "r1", [entry("1", "A-1"), entry("2", "A-2"),
                                                        ActivityEntry("order", "3", "skipped")]) == 2
    assert store.save_previews(tenant, "orders", "r2", [entry("1", "A-1b")]) == 1
    latest = store.preview_of(tenant, "orders", "1")
    assert (latest["run_id"], latest["payload"]) == ("r2", {"DocNumber": "A-1b"})
    assert store.preview_of(tenant, "orders", "3") is None
    assert "DocNumber" not in str(store.activity(tenant=tenant))
    assert store.erase_sources(tenant, {"order": ["1"]})["previews"] == 1
    assert store.preview_of(tenant, "orders", "1") is None
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert store.purge_older_than(tenant, future)["previews"] == 1
    assert store.preview_of(tenant, "orders", "2") is None
