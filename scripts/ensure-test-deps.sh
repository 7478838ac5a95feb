#!/usr/bin/env bash
# What the test suite needs from Debian: chromium for the dashboard's browser test.
# Installed by the project's own files so a fresh machine (and CI) needs nothing by hand.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing chromium from Debian's packages (browser tests)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
