"""The flows' view of the kernel (:mod:`koppel.steps.kernel`): records, step results,
the run, the flow protocol and the read policy, re-exported so a flow imports what it
builds on from one place. The kernel lives below the flows; nothing here may grow."""

from __future__ import annotations

from koppel.steps.kernel import (  # noqa: F401
    INTERVAL_RUN_TYPES,
    FlowRun,
    Process,
    ReadWindow,
    Record,
    RecordError,
    RecordState,
    RecordsScopedStore,
    StepResult,
    SystemicError,
    dry_run_prefix,
    is_systemic,
    jsonable,
    read_window,
    requested_records,
    run_read_window,
    run_window,
)
