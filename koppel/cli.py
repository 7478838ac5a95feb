"""The ``koppel`` command line.

    koppel validate [TENANT ...] [--dir include/mappings]
    koppel schema [--output include/mappings/tenant.schema.json]
    koppel pools [TENANT ...] [--dir include/mappings] [--apply | --json]
    koppel doctor TENANT [--dir include/mappings] [--problems-only]

``validate`` prints every problem as ``file: $.json.path: reason`` and exits 1 when there
is any (2 for usage errors). ``schema`` prints (or writes) the tenant JSON Schema
generated from the pydantic models. ``pools`` prints one Airflow pool per tenant and API,
sized from the API's limits (:func:`pool_slots`), or creates them with ``--apply``
(``airflow pools import``, one call for every pool). ``doctor`` checks a tenant against
its live systems (:mod:`koppel.doctor`) and prints what to fix, with the real names to
choose from; it exits 0 when clean, 1 with problems. New subcommands register in
:func:`build_parser`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

#: Where tenant files are looked for when ``--dir`` is not given.
MAPPINGS_DIR_ENV = "KOPPEL_MAPPINGS_DIR"
DEFAULT_MAPPINGS_DIR = "include/mappings"


def default_mappings_dir() -> str:
    return os.environ.get(MAPPINGS_DIR_ENV) or DEFAULT_MAPPINGS_DIR


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from koppel.tenants import load_tenants

    result = load_tenants(args.dir, only=args.tenants or None)
    for problem in result.errors:
        print(problem, file=out)
    for tenant in result.tenants:
        if not args.quiet:
            print(f"ok: {result.files[tenant.tenant]} (tenant {tenant.tenant}, flows: {', '.join(tenant.enabled_flows()) or 'none enabled'})", file=out)
    failed_files = len({problem.file for problem in result.errors})
    if not args.quiet:
        print(f"{len(result.tenants)} valid, {failed_files} with problems, {len(result.errors)} problem(s)", file=out)
    return 1 if result.errors else 0


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    from koppel.tenants import tenant_json_schema_text

    text = tenant_json_schema_text()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return 0


# -- pools ------------------------------------------------------------------------------------
from koppel.pools import API_LIMITS, ApiLimits, pool_slots  # noqa: E402  (re-exported)


def tenant_pools(tenant_ids: Sequence[str], overrides: dict[str, int] | None = None
                 ) -> dict[str, dict[str, object]]:
    """``{pool name: {slots, description, include_deferred}}`` (``airflow pools import``
    format) for each tenant and API; names from :func:`koppel.flows.dag.pool_name`."""
    from koppel.flows.dag import pool_name

    overrides = overrides or {}
    pools: dict[str, dict[str, object]] = {}
    for tenant_id in tenant_ids:
        for api, limits in API_LIMITS.items():
            computed = pool_slots(limits)
            slots = overrides.get(api) or computed
            sizing = f"{limits.basis} → {computed} tasks" + (
                f"; set to {slots}" if slots != computed else "")
            pools[pool_name(tenant_id, api)] = {
                "slots": slots,
                "description": f"koppel: tenant {tenant_id}, {limits.label} ({sizing})",
                "include_deferred": False,
            }
    return pools


def apply_pools(pools: dict[str, dict[str, object]], out: TextIO) -> int:
    """Create or update ``pools`` in Airflow: one ``airflow pools import`` for all."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="koppel-pools-",
                                     delete=False) as handle:
        json.dump(pools, handle)
        path = handle.name
    try:
        proc = subprocess.run([sys.executable, "-m", "airflow", "pools", "import", path],
                              capture_output=True, text=True)
    finally:
        os.unlink(path)
    if proc.returncode:
        print(f"airflow pools import failed ({proc.returncode}):", file=out)
        print("\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:]), file=out)
        return proc.returncode
    print(f"applied {len(pools)} pool(s)", file=out)
    return 0


def cmd_pools(args: argparse.Namespace, out: TextIO) -> int:
    from koppel.tenants import load_tenants

    result = load_tenants(args.dir, only=args.tenants or None)
    for problem in result.errors:
        print(problem, file=sys.stderr)
    overrides = {"lightspeed": args.lightspeed_slots, "quickbooks": args.quickbooks_slots}
    pools = tenant_pools([t.tenant for t in result.tenants],
                         {k: v for k, v in overrides.items() if v})
    if args.json:
        print(json.dumps(pools, indent=2), file=out)
    else:
        width = max((len(name) for name in pools), default=0)
        for name, pool in pools.items():
            print(f"{name:<{width}}  {pool['slots']:>3}  {pool['description']}", file=out)
    status = 1 if result.errors else 0
    if args.apply and pools:
        status = apply_pools(pools, out) or status
    return status


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    from koppel.doctor import doctor
    from koppel.tenants import load_tenants

    result = load_tenants(args.dir, only=[args.tenant])
    for problem in result.errors:
        print(problem, file=out)
    tenant = next((t for t in result.tenants if t.tenant == args.tenant), None)
    if tenant is None:
        if not result.errors:
            print(f"no tenant file {args.tenant}.json in {args.dir}", file=out)
        return 1
    report = doctor(tenant)
    print(report.render(verbose=not args.problems_only), file=out)
    return 1 if report.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="koppel", description="koppel: Lightspeed eCom ↔ QuickBooks Online on Airflow.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    validate = commands.add_parser("validate", help="check tenant files (all, or the named tenants)")
    validate.add_argument("tenants", nargs="*", metavar="TENANT", help="tenant ids (file names without .json)")
    validate.add_argument("--dir", default=default_mappings_dir(), help=f"tenant file directory (default: ${MAPPINGS_DIR_ENV} or {DEFAULT_MAPPINGS_DIR})")
    validate.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    validate.set_defaults(handler=cmd_validate)

    schema = commands.add_parser("schema", help="print the tenant file JSON Schema")
    schema.add_argument("--output", "-o", help="write to this file instead of stdout")
    schema.set_defaults(handler=cmd_schema)

    pools = commands.add_parser("pools", help="print (or --apply) one Airflow pool per tenant and API")
    pools.add_argument("tenants", nargs="*", metavar="TENANT", help="tenant ids (default: every valid tenant file)")
    pools.add_argument("--dir", default=default_mappings_dir(), help=f"tenant file directory (default: ${MAPPINGS_DIR_ENV} or {DEFAULT_MAPPINGS_DIR})")
    pools.add_argument("--apply", action="store_true", help="create or update the pools in Airflow (airflow pools import)")
    pools.add_argument("--json", action="store_true", help="print the pools as an `airflow pools import` file")
    pools.add_argument("--lightspeed-slots", type=int, metavar="N", help="override the Lightspeed pool size")
    pools.add_argument("--quickbooks-slots", type=int, metavar="N", help="override the QuickBooks pool size")
    pools.set_defaults(handler=cmd_pools)

    doctor = commands.add_parser("doctor", help="check a tenant against its live systems and print what to fix")
    doctor.add_argument("tenant", metavar="TENANT", help="tenant id (file name without .json)")
    doctor.add_argument("--dir", default=default_mappings_dir(), help=f"tenant file directory (default: ${MAPPINGS_DIR_ENV} or {DEFAULT_MAPPINGS_DIR})")
    doctor.add_argument("--problems-only", action="store_true", help="print problems and notes, not the checks that passed")
    doctor.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args, sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
