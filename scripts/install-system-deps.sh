#!/usr/bin/env bash
# Install the Debian packages the local runtime and the tests need, when they are missing.
# Runs apt only as root (CI, containers); otherwise says what to install and carries on,
# since a user may provide them another way (conda's postgresql, PG_BIN, DATABASE_URL).
set -euo pipefail

missing=()
# PostgreSQL 15 server binaries (initdb, postgres, pg_ctl).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1 \
    && [ -z "${PG_BIN:-}" ]; then
  missing+=(postgresql)
fi
# Chromium for the app's browser test: Playwright drives Debian's build (its own download fails
# offline).
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: install them (sudo apt-get install ${missing[*]}) or set PG_BIN / DATABASE_URL" >&2
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
