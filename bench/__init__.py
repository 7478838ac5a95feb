"""koppel's benchmarks (``python -m bench``, ``make bench``).

- :mod:`bench.harness` — a throw-away Airflow home, both sandboxes in this process (rate
  limits lifted, calls still counted), one tenant per size, flows run through Airflow
  (``dag.test()`` in a subprocess per run, see :mod:`bench.runner`).
- :mod:`bench.baseline` — the straightforward per-record sync a user would write with
  python-quickbooks, measured against the same QuickBooks sandbox.
- :mod:`bench.batch_writer` — a straightforward batch writer (look-ups per order, sales
  receipts 30 to a batch request: the shape Singer targets take), measured the same way.
- :mod:`bench.batches` — the QuickBooks batch requests of a span, counted from their
  bodies (operations per batch, batches that carried look-ups) and the writes sent.
- :mod:`bench.compare` — koppel, the baseline and the batch writer side by side.
- :mod:`bench.limits` — how long the measured calls take under the real APIs' limits.
- :mod:`bench.parse_time` — DAG-file parse time for many tenants.
- :mod:`bench.report` — the printed tables and curves; ``bench/results.json``.
"""
