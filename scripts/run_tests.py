"""The README's test command: runs the whole suite (SQLite always; PostgreSQL when it can be had)."""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    rc = subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])
    return rc


if __name__ == "__main__":
    sys.exit(main())
