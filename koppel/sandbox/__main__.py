"""``python -m koppel.sandbox lightspeed|quickbooks --port PORT [options]``."""

from __future__ import annotations

import argparse
import sys

import uvicorn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m koppel.sandbox",
                                     description="Run a local emulator of a koppel API.")
    sub = parser.add_subparsers(dest="api", required=True)

    ls = sub.add_parser("lightspeed", help="Lightspeed eCom REST API")
    ls.add_argument("--port", type=int, default=8801)
    ls.add_argument("--host", default="127.0.0.1")
    ls.add_argument("--seed", type=int, default=1)
    ls.add_argument("--orders", type=int, default=None)
    ls.add_argument("--products", type=int, default=None)
    ls.add_argument("--customers", type=int, default=None)
    ls.add_argument("--time-scale", type=float, default=1.0)

    qb = sub.add_parser("quickbooks", help="QuickBooks Online Accounting API v3 + OAuth 2")
    qb.add_argument("--port", type=int, default=8802)
    qb.add_argument("--host", default="127.0.0.1")
    qb.add_argument("--seed", type=int, default=1)
    qb.add_argument("--time-scale", type=float, default=1.0)

    args = parser.parse_args(argv)
    base_url = f"http://{args.host}:{args.port}"
    if args.api == "lightspeed":
        from koppel.sandbox.lightspeed import create_app

        counts = {k: v for k, v in (("orders", args.orders), ("products", args.products),
                                     ("customers", args.customers)) if v is not None}
        app = create_app(seed=args.seed, base_url=base_url, time_scale=args.time_scale,
                         **counts)
    else:
        from koppel.sandbox.quickbooks import create_app

        app = create_app(seed=args.seed, base_url=base_url, time_scale=args.time_scale)
    print(f"koppel {args.api} sandbox on {base_url}  (control plane: {base_url}/_sandbox/)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
