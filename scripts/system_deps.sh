#!/usr/bin/env bash
# System packages the test suite needs beyond Python: PostgreSQL 15 (production database; the suite runs
# on it as well as SQLite) and Chromium (console browser tests). Installed only when missing and only as
# root (plus a CJK font for readable screenshots); otherwise the tests that need them skip with a reason (and CI fails in scripts/run_tests.py).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
# A CJK font, so the console's screenshots show Chinese text rather than empty boxes.
ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "system_deps: missing ${need[*]} and not root: tests that need them will be skipped" >&2
    exit 0
fi
echo "system_deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
