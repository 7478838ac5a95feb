"""The operators every flow is built from: extract → enrich → exists-check → customer
upsert → load, then finalize.

Each operator runs one step of one flow for one tenant on one chunk of records: the
method of the step's name on the class the flow's declaration names
(``koppel/flows/catalog.py``; the DAG builder hands each task that class's import path as
``implementation``), e.g. ``LoadOperator`` of ``orders`` runs ``OrdersProcess.load`` —
each operator's ``run_step`` is that one call. Records
travel between tasks through the state database (``StateStore.stage``); XCom carries
only chunk references, and ``FinalizeOperator`` purges the run's staged data when the
run ends, so personal data is only in flight. A record that ends in a step (skipped,
failed, created, …) is written to the activity log by that step; a failing record never
stops the others and is retried on the next run.

Heavy imports (hooks, pandas, python-quickbooks) happen inside ``execute`` only, so DAG
files that build these operators parse fast.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

#: record outcomes that put a record on the list the next run reads again
RETRIED_ACTIONS = ("failed", "waiting")
# step name → the staging slot its input is read from
_INPUT_SLOT = {"enrich": "extract", "exists_check": "enrich",
               "customer_upsert": "exists_check", "load": "customer_upsert"}


class KoppelStepOperator(BaseOperator):
    """Base of koppel's step operators: resolves tenant, flow process and run context."""

    ui_color = "#e8f1fb"
    step: str = ""

    def __init__(self, *, tenant: str, flow: str, implementation: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant
        self.flow = flow
        #: ``"module:Class"`` of the flow's process, from its declaration
        #: (``koppel.flows.catalog``), given by the DAG builder; imported only in a task
        self.implementation = implementation

    # -- helpers shared by the steps ------------------------------------------------------
    def _flow_run(self, context):
        from koppel.steps.kernel import FlowRun
        from koppel.tenants.lookup import load_tenant

        params = dict(context.get("params") or {})
        run_type = _run_type(context)
        return FlowRun(tenant=load_tenant(self.tenant), flow=self.flow,
                       run_id=context["run_id"], params=params,
                       data_interval_start=context.get("data_interval_start"),
                       data_interval_end=context.get("data_interval_end"),
                       run_type=run_type,
                       prev_success_end=_prev_success_end(context) if run_type == "scheduled"
                       and self.step == "extract" else None)

    def _process(self, run):
        """An instance of the class that implements the flow, for this run: imported
        here, when the task runs, never while the DAG file is parsed."""
        import importlib

        module, _, name = (self.implementation or "").partition(":")
        if not module or not name:
            raise LookupError(f"koppel {self.tenant}/{self.flow} {self.step}: the task names "
                              f"no implementation ('module:Class'), got "
                              f"{self.implementation!r}")
        return getattr(importlib.import_module(module), name)(run)

    def _summary(self, run, read: int, ended, passed: int, calls_before, started: float) -> dict:
        from collections import Counter

        calls = {api: n - calls_before.get(api, 0) for api, n in run.api_calls().items()}
        counts = Counter(e.action for e in ended)
        from koppel.steps.kernel import dry_run_prefix

        summary = {"tenant": self.tenant, "flow": self.flow, "step": self.step,
                   "read": read, "passed": passed, **dict(counts),
                   "api_calls": calls, "seconds": round(time.monotonic() - started, 3),
                   "dry_run": run.dry_run}
        log.info("%skoppel %s/%s %s: read=%d passed=%d %s api_calls=%s", dry_run_prefix(run),
                 self.tenant, self.flow, self.step, read, passed,
                 " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "ended=0", calls)
        return summary


class ExtractOperator(KoppelStepOperator):
    """Reads the run's records from the source and stages them in chunks."""

    step = "extract"

    def execute(self, context) -> list[dict[str, Any]]:
        run = self._flow_run(context)
        process = self._process(run)
        from koppel.steps.kernel import StepResult

        from koppel.steps.kernel import chunk_length

        started, before = time.monotonic(), run.api_calls()
        extracted = process.extract()
        # chunks chosen from the work: a list's length is known, so its chunks are as few
        # and as even as the flow's maximum allows; a stream is cut at the maximum
        size = chunk_length(len(extracted) if isinstance(extracted, list) else None,
                            process.chunk_size, getattr(process, "chunk_align", 1))
        refs: list[dict[str, Any]] = []
        chunk: list = []
        read, calls_at = 0, before

        def stage(records: list) -> None:
            # each chunk carries the calls made while it was read (records may stream)
            nonlocal calls_at
            now = run.api_calls()
            _apportion_calls(records, StepResult(passed=records),
                             {api: now[api] - calls_at.get(api, 0) for api in now})
            calls_at = now
            refs.append(run.store.stage(run.run_key, "extract", len(refs),
                                        [r.to_json() for r in records]))

        # a list, or a stream the chunks are cut from: a full chunk is staged when the
        # next record arrives, the last one when the stream ends, so every call the
        # extract made is on some record
        for record in extracted:
            if len(chunk) == size:
                stage(chunk)
                chunk = []
            chunk.append(record)
            read += 1
        if chunk:
            stage(chunk)
        self._summary(run, read, [], read, before, started)
        if not refs:
            self._skip_the_empty_run()
        return refs

    def _skip_the_empty_run(self) -> None:
        """A run that read nothing: every task after this one but the teardown is
        skipped at once, by the task itself (Airflow's ``DownstreamTasksSkipped``, as its
        ShortCircuitOperator does), and the run goes straight to ``finalize``. Left to the
        scheduler, the empty maps' skips would reach the end of the chain one scheduling
        pass per task."""
        from airflow.sdk.exceptions import DownstreamTasksSkipped

        skipped = sorted(task.task_id for task in self.get_flat_relatives(upstream=False)
                         if not task.is_teardown)
        if skipped:
            log.info("koppel %s/%s extract: nothing to sync; skipping %s", self.tenant,
                     self.flow, ", ".join(skipped))
            raise DownstreamTasksSkipped(tasks=skipped)


class ChunkStepOperator(KoppelStepOperator):
    """Runs one step of the flow's process on one staged chunk."""

    template_fields: Sequence[str] = ("chunk_ref",)

    def __init__(self, *, chunk_ref: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk_ref = chunk_ref

    def run_step(self, process, records: list) -> Any:
        """Run this operator's step of ``process`` on ``records`` (a ``StepResult``)."""
        raise NotImplementedError(f"{type(self).__name__} names no step method")

    def execute(self, context) -> dict[str, Any] | None:
        from koppel.steps.kernel import Record, keep_manual_skips

        if not self.chunk_ref or not self.chunk_ref.get("run_key"):
            log.info("koppel %s/%s %s: nothing passed to this chunk", self.tenant, self.flow,
                     self.step)
            return None
        run = self._flow_run(context)
        process = self._process(run)
        records = [Record.from_json(r) for r in run.store.staged(self.chunk_ref)]
        read = len(records)
        started, before = time.monotonic(), run.api_calls()
        # skipped by hand on the dashboard and unchanged since: never written
        records, held = keep_manual_skips(run, records)
        if self.step == "load" and not run.dry_run:
            run.store.mark_in_flight(self.tenant, self.flow, [r.source_id for r in records],
                                     "in flight: the load that wrote it did not finish")
        try:
            result = self.run_step(process, records)
        except Exception as exc:
            # a systemic failure (API down, credentials refused, …): the task fails and
            # Airflow retries it; until a try succeeds every record of the chunk is on the
            # failed list, so the next run picks them up even if this run gives up
            self._mark_chunk_failed(run, records, exc)
            raise
        after = run.api_calls()
        _apportion_calls(records, result, {api: after[api] - before.get(api, 0) for api in after})
        result.ended.extend(held)
        map_index = getattr(context.get("ti"), "map_index", None)
        for entry in result.ended:
            if map_index is not None and map_index >= 0:
                entry.details.setdefault("map_index", map_index)
        run.store.record_activity(tenant=self.tenant, flow=self.flow, run_id=run.run_id,
                                  direction=run.direction, entries=result.ended,
                                  task_id=self.task_id)
        # failed and waiting records are read again by the next run; a dry run attempted
        # no write, so it leaves the retry list (and its attempt counts) as it was
        retry = [e for e in result.ended if e.action in RETRIED_ACTIONS]
        done = [e.source_id for e in result.ended if e.action not in RETRIED_ACTIONS]
        if not run.dry_run:
            for entry in retry:
                run.store.mark_failed(self.tenant, self.flow, entry.source_id,
                                      entry.reason or "")
            run.store.mark_resolved(self.tenant, self.flow, done)
        else:  # what each record would have sent: the dashboard's preview
            run.store.save_previews(self.tenant, self.flow, run.run_id, result.ended)
        summary = self._summary(run, read, result.ended, len(result.passed), before,
                                started)
        if self.step == "load" or not result.passed:
            return {"summary": summary}
        ref = run.store.stage(run.run_key, self.step, self.chunk_ref["chunk"],
                              [r.to_json() for r in result.passed])
        return {**ref, "summary": summary}


    def _mark_chunk_failed(self, run, records, exc: Exception) -> None:
        from koppel.privacy import pii_values, scrub

        if run.dry_run:  # nothing was attempted: the retry list stays as it was
            return

        known: set[str] = set()
        for record in records:
            known |= pii_values(record.data)
        reason = scrub(f"{self.step} failed for the whole chunk: {type(exc).__name__}: {exc}",
                       known) or ""
        for record in records:
            try:
                run.store.mark_failed(self.tenant, self.flow, record.source_id, reason[:1000])
            except Exception:  # the state database itself may be what failed
                log.exception("koppel %s/%s %s: could not put the chunk on the failed list",
                              self.tenant, self.flow, self.step)
                return
        log.warning("koppel %s/%s %s: %d record(s) put on the failed list for the next run",
                    self.tenant, self.flow, self.step, len(records))


def _run_type(context) -> str | None:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return getattr(run_type, "value", run_type)


def _prev_success_end(context):
    """The end of the data interval of the DAG's last successful run, or None (the
    context holds it as a lazy proxy that asks the API server when first used)."""
    import datetime as dt

    value = context.get("prev_data_interval_end_success")
    try:
        return dt.datetime.fromisoformat(value.isoformat()) if value else None
    except Exception:  # no earlier success, or the server could not say
        log.warning("koppel: the last successful run's interval is unknown; reading this "
                    "run's data interval only")
        return None


def _apportion_calls(records, result, calls: dict[str, int]) -> None:
    """Spread the chunk's API calls over its records. Records that pass on carry their
    share in ``state["api_calls"]``; a record that ends here logs what it carried plus
    its share (per API in ``details["api_calls"]``, the total in ``api_calls``), so the
    activity log adds up to every call the run made for its records."""
    if not records:
        return
    ids = sorted(r.source_id for r in records)
    shares: dict[str, dict[str, int]] = {i: {} for i in ids}
    for api, count in calls.items():
        if count <= 0:
            continue
        share, rest = divmod(count, len(ids))
        for n, source_id in enumerate(ids):
            if share or n < rest:
                shares[source_id][api] = share + (1 if n < rest else 0)
    carried = {r.source_id: r.state.get("api_calls", {}) for r in records}
    for record in result.passed:
        total = dict(carried.get(record.source_id, {}))
        for api, n in shares.get(record.source_id, {}).items():
            total[api] = total.get(api, 0) + n
        record.state["api_calls"] = total
    for entry in result.ended:
        total = dict(carried.get(entry.source_id, {}))
        for api, n in shares.get(entry.source_id, {}).items():
            total[api] = total.get(api, 0) + n
        if total:
            entry.details["api_calls"] = total
            entry.api_calls += sum(total.values())


class EnrichOperator(ChunkStepOperator):
    """Adds what the source lacks, applies the tenant's mapping, builds target payloads."""

    step = "enrich"

    def run_step(self, process, records: list) -> Any:
        return process.enrich(records)


class ExistsCheckOperator(ChunkStepOperator):
    """Skips records already in the target (by its own keys and by earlier runs)."""

    step = "exists_check"

    def run_step(self, process, records: list) -> Any:
        return process.exists_check(records)


class CustomerUpsertOperator(ChunkStepOperator):
    """Finds each record's customer by e-mail; creates or updates it."""

    step = "customer_upsert"

    def run_step(self, process, records: list) -> Any:
        return process.customer_upsert(records)


class LoadOperator(ChunkStepOperator):
    """Writes the chunk to the target; every record ends here."""

    step = "load"

    def run_step(self, process, records: list) -> Any:
        return process.load(records)


def _run_outcome(run, tenant: str, flow: str) -> dict[str, Any]:
    """What the run logged, in the words of its summary and of the error threshold."""
    counts = run.store.action_counts(tenant=tenant, flow=flow, run_id=run.run_id)
    rows = run.store.activity(tenant=tenant, flow=flow, run_id=run.run_id, limit=100_000)
    failures = [r for r in rows if r["action"] == "failed"]
    # the threshold counts new failures: a record that keeps failing was reported when
    # it first failed and stays on the dashboard's list; it does not alert every run
    # (the whole retry list: a run limited to ``records`` sees only its own part)
    retry_list = getattr(run.store, "all_failed", run.store.failed)
    attempts = {f["source_id"]: f["attempts"] for f in retry_list(tenant, flow)}
    new = [r for r in failures if attempts.get(r["source_id"], 1) <= 1]
    # documents whose booked figures differ from the shop's (koppel.domain.verify):
    # each is reported once, when it is booked, counts like a failure and is alerted
    differing = [r for r in rows if r["action"] == "conflict"
                 and (r.get("details") or {}).get("verification")]
    return {"counts": counts, "rows": rows, "failures": failures, "new": new + differing,
            "differing": differing}


class ErrorThresholdOperator(KoppelStepOperator):
    """Fails the run when its new record errors pass the tenant's threshold.

    An ordinary task after every step (the DAG builder gives it the trigger rule
    ``none_failed_min_one_success``): a failed step fails the run by itself, and a run
    that read nothing skips it without starting a worker. ``finalize``, the run's
    teardown, comes after it and never decides the run's state."""

    step = "check_error_threshold"

    def execute(self, context) -> dict[str, Any]:
        from koppel.steps.kernel import error_threshold_exceeded

        run = self._flow_run(context)
        outcome = _run_outcome(run, self.tenant, self.flow)
        counts, new, failures = outcome["counts"], outcome["new"], outcome["failures"]
        records = sum(counts.values())
        exceeded = error_threshold_exceeded(run.tenant, len(new), records)
        result = {"tenant": self.tenant, "flow": self.flow, "run_id": run.run_id,
                  "records": records, "new_failures": len(new),
                  "booking_conflicts": len(outcome["differing"])}
        if not exceeded:
            log.info("koppel %s/%s: %d new failure(s) and booking conflict(s) of %d records: "
                     "within the error threshold", self.tenant, self.flow, len(new), records)
            return result
        from airflow.sdk.exceptions import AirflowFailException

        first = "; ".join(f"{r['source_type']} {r['source_id']}: {r['reason']}"
                          for r in new[:5])
        # the counts behind the threshold, in the words of the run summary: new
        # failures (and differing bookings) count, records that failed before do not
        earlier = len(failures) - len([r for r in new if r["action"] == "failed"])
        # a retry reads the same activity log and fails the same way: fail at once (the
        # records themselves are retried by the next run)
        raise AirflowFailException(
            f"{self.tenant}/{self.flow}: {exceeded}; the run logged failed="
            f"{len(failures)} ({earlier} of them failed in an earlier run too and do not "
            f"count) and {len(outcome['differing'])} booking conflict(s) of "
            f"{records} records. First errors: {first}")


class FinalizeOperator(KoppelStepOperator):
    """The run's teardown: purges its staged data, logs the summary and alerts booking
    conflicts.

    Made a teardown by the DAG builder (``as_teardown()``): it runs whatever happened
    before it, so nothing personal outlives a failed run either, and Airflow leaves it
    out of the run's state — the steps and the error threshold decide that."""

    step = "finalize"

    def execute(self, context) -> dict[str, Any]:
        from koppel.steps.kernel import dry_run_prefix

        run = self._flow_run(context)
        purged = run.store.purge_run(run.run_key)
        outcome = _run_outcome(run, self.tenant, self.flow)
        counts, differing = outcome["counts"], outcome["differing"]
        calls = sum(r["api_calls"] or 0 for r in outcome["rows"])
        summary = {"tenant": self.tenant, "flow": self.flow, "run_id": run.run_id,
                   "records": sum(counts.values()), "actions": counts,
                   "api_calls_logged": calls, "staged_chunks_purged": purged,
                   "dry_run": run.dry_run, "new_failures": len(outcome["new"]),
                   "booking_conflicts": len(differing)}
        log.info("%skoppel %s/%s run summary: %s", dry_run_prefix(run), self.tenant,
                 self.flow,
                 " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no records")
        if differing and not run.dry_run:
            _alert_conflicts(run.tenant, self.flow, context, differing)
        return summary


def _alert_conflicts(tenant, flow: str, context, rows: list[dict[str, Any]]) -> None:
    """Books that differ from the shop are sent to the tenant's alert channels at once
    (the run itself may still succeed); a channel that fails is logged, not raised."""
    from koppel.alerts import notifiers_for

    lines = [f"{r['source_type']} {r['source_id']}: {r['reason']}" for r in rows[:20]]
    for notifier in notifiers_for(tenant, flow):
        try:
            notifier.notify_conflicts(context, lines, total=len(rows))
        except Exception:
            log.exception("koppel %s/%s: the conflict alert could not be sent",
                          tenant.tenant, flow)


def _freeze_init_signatures(base: type) -> None:
    """Each koppel operator's ``__init__`` signature, worked out once.

    ``Operator.partial(...)`` (every mapped step, about three per DAG) asks
    :func:`inspect.signature` for the ``__init__`` of each operator class between the
    operator and ``BaseOperator`` (``airflow.sdk.bases.operator._get_operator_defaults``),
    anew for every call: at 500 tenants that was ~7 % of a full parse. The signature
    never changes, and :func:`inspect.signature` returns a callable's ``__signature__``
    when it has one (stopping there when it unwraps Airflow's ``apply_defaults``
    wrapper), so each class's is computed here once, after Airflow's metaclass has
    wrapped it."""
    import inspect

    pending = [base]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        init = cls.__dict__.get("__init__")
        if init is not None and getattr(init, "__signature__", None) is None:
            init.__signature__ = inspect.signature(init)


_freeze_init_signatures(KoppelStepOperator)
