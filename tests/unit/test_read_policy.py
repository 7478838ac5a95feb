"""koppel's one read policy (koppel.steps.kernel.read_window): which records a run reads,
rule by rule, with exact windows."""

from __future__ import annotations

import datetime as dt

from koppel.flows.base import read_window

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
START = dt.datetime(2025, 7, 1, 11, 45, tzinfo=UTC)
END = dt.datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
LAST = dt.datetime(2025, 7, 1, 9, 30, tzinfo=UTC)


def window(params=None, **kw):
    args = dict(run_type="scheduled", interval_start=START, interval_end=END,
                prev_success_end=END - dt.timedelta(minutes=15), last_activity=LAST, now=NOW)
    args.update(kw)
    got = read_window(params or {}, **args)
    return got.start, got.end, got.reason


def test_params_win():
    assert window({"full_resync": True}) == (None, None, "full resync")
    assert window({"since": "2025-06-01T00:00:00Z"}) == (
        dt.datetime(2025, 6, 1, tzinfo=UTC), NOW, "since/until params")
    assert window({"until": "2025-06-30"}) == (
        dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2025, 6, 30, tzinfo=UTC),
        "since/until params")


def test_a_tenants_first_scheduled_run_reads_everything_or_from_start_date():
    assert window(prev_success_end=None, last_activity=None) == (None, None, "first run")
    assert window(prev_success_end=None, last_activity=None,
                  start_date=dt.date(2025, 1, 1)) == (
        dt.datetime(2025, 1, 1, tzinfo=UTC), END, "first run, from the flow's start_date")
    # activity without a success (an earlier run failed after writing): not a first run
    assert window(prev_success_end=None) == (START, END, "data interval")


def test_scheduled_runs_and_backfills_read_their_interval():
    assert window() == (START, END, "data interval")
    assert window(run_type="backfill", prev_success_end=None) == (START, END, "data interval")
    missed = END - dt.timedelta(hours=3)
    assert window(prev_success_end=missed) == (
        missed, END, "data interval, from the last success (runs were missed)")
    # a backfill never stretches to the last success: it reads the interval it was given
    assert window(run_type="backfill", prev_success_end=missed) == (START, END, "data interval")


def test_other_runs_read_from_before_the_last_activity():
    assert window(run_type="manual") == (LAST - dt.timedelta(days=1), NOW,
                                         "since the last activity")
    assert window(run_type="manual", lookback=dt.timedelta(minutes=15)) == (
        LAST - dt.timedelta(minutes=15), NOW, "since the last activity")
    assert window(run_type="manual", last_activity=None) == (None, None, "first run")
    assert window(run_type="asset_triggered", last_activity=None,
                  prev_success_end=None) == (None, None, "first run")
