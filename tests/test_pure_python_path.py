"""The pure-Python path (no orjson) passes the tests of everything orjson speeds up.

The suite runs with orjson installed (the test extra has it); this runs the tests of
reading inputs, validating, spooling, streaming results and whole jobs again in a child
with ``CLAUDEBATCH_NO_ORJSON=1``, so a user without the ``fast`` extra is covered too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from claudebatch import _json

ROOT = Path(__file__).resolve().parents[1]
COVERED = ["tests/test_json_accel.py", "tests/test_validation.py", "tests/test_results.py",
           "tests/test_long_lines.py", "tests/test_jobs.py", "tests/test_reuse.py",
           "tests/test_trust_jobs.py", "tests/plugins/sqlite/test_resume.py"]


def test_the_standard_library_path_passes_the_same_tests() -> None:
    env = {**os.environ, _json.NO_ORJSON_ENV: "1"}
    check = subprocess.run([sys.executable, "-c", "from claudebatch import _json; "
                            "print(_json.BACKEND)"], env=env, capture_output=True, text=True)
    assert check.stdout.strip() == "json"
    found = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                            *COVERED], cwd=ROOT, env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr[-2000:]
