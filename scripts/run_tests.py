"""The README's test command (`make test`): the whole suite, on SQLite and on PostgreSQL.

PostgreSQL comes from a throwaway cluster the fixtures start (or BEDCHECK_TEST_POSTGRES_URL). Where no
PostgreSQL can be had, its tests skip with a reason - except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys


def main() -> int:
    has_pg = bool(os.environ.get("BEDCHECK_TEST_POSTGRES_URL") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    has_chromium = bool(shutil.which("chromium") or os.path.exists("/usr/bin/chromium"))
    print(f"run_tests: PostgreSQL {'available' if has_pg else 'NOT available: its tests will skip'}; "
          f"Chromium {'available' if has_chromium else 'NOT available: browser tests will skip'}", flush=True)
    if os.environ.get("CI") and not has_pg:
        print("run_tests: CI needs PostgreSQL (scripts/system_deps.sh installs it as root)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
