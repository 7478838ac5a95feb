#!/usr/bin/env bash
# What the test suite needs beyond koppel's own venv, installed by the project's own files so
# a fresh machine (and CI) needs nothing by hand. Idempotent: a second run does nothing.
#  1. chromium from Debian's packages, for the dashboard's browser test;
#  2. the third-party clients of tests/thirdparty (Singer taps), pinned in
#     tests/thirdparty/requirements.txt, in a venv of their own (.venv/thirdparty) so they
#     cannot disturb koppel's pinned Airflow environment.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  echo "installing chromium from Debian's packages (browser tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

THIRDPARTY_VENV=.venv/thirdparty
THIRDPARTY_REQS=tests/thirdparty/requirements.txt
UV=.venv/bin/uv
stamp="$THIRDPARTY_VENV/.installed"
wanted=$(sha256sum "$THIRDPARTY_REQS" | cut -d' ' -f1)
if [ ! -x "$THIRDPARTY_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  if [ ! -x "$UV" ]; then
    echo "ensure-test-deps: $UV is missing; run 'make venv' first" >&2
    exit 1
  fi
  echo "installing the third-party clients of tests/thirdparty into $THIRDPARTY_VENV"
  rm -rf "$THIRDPARTY_VENV"
  "$UV" venv --quiet --python .venv/bin/python "$THIRDPARTY_VENV"
  "$UV" pip install --quiet --compile-bytecode --python "$THIRDPARTY_VENV/bin/python" --no-deps \
    -r "$THIRDPARTY_REQS"
  echo "$wanted" > "$stamp"
fi
