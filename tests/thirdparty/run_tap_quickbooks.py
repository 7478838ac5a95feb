"""Start tap-quickbooks (singer-io, PyPI 2.5.0) with its API base and OAuth token URL
pointed at the sandbox; nothing else is changed.

tap-quickbooks has no configuration for its endpoints: it builds every URL from the
module constants ``SANDBOX_ENDPOINT_BASE`` (config ``"sandbox": true``) or
``PROD_ENDPOINT_BASE`` and refreshes tokens at ``TOKEN_REFRESH_URL``, all in
``tap_quickbooks/client.py`` and read when used. This launcher sets exactly those three
constants from the environment (``TAP_QUICKBOOKS_API_BASE``, ``TAP_QUICKBOOKS_TOKEN_URL``)
and then runs the tap's own console entry point (``tap_quickbooks:main``) with the
command-line arguments given, as the ``tap-quickbooks`` script would."""

from __future__ import annotations

import os
import sys

import tap_quickbooks.client as client

client.SANDBOX_ENDPOINT_BASE = os.environ["TAP_QUICKBOOKS_API_BASE"]
client.PROD_ENDPOINT_BASE = os.environ["TAP_QUICKBOOKS_API_BASE"]
client.TOKEN_REFRESH_URL = os.environ["TAP_QUICKBOOKS_TOKEN_URL"]

import tap_quickbooks  # noqa: E402  (after the endpoints are set)

if __name__ == "__main__":
    sys.argv[0] = "tap-quickbooks"
    sys.exit(tap_quickbooks.main())
