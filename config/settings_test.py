"""Settings for the test suite: everything under one temporary data folder.

The folder is chosen before config.settings is read and exported in the environment, so
a Huey consumer started by a test (tests/conftest.py) shares the database file, the
Huey storage and the cache with the test process.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SHIKOMI_DATA_DIR", tempfile.mkdtemp(prefix="shikomi-test-"))
os.environ.setdefault("SHIKOMI_TEST_DB", str(Path(os.environ["SHIKOMI_DATA_DIR"]) / "test.sqlite3"))
os.environ.setdefault("HUEY_NAME", f"shikomi-test-{os.getpid()}")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from config.settings import *  # noqa: E402,F403

# Tasks run inline unless a test starts a real consumer (the `huey_consumer` fixture).
for _queue in DJANGO_HUEY["queues"].values():  # noqa: F405
    _queue["immediate"] = envbool("HUEY_IMMEDIATE", "true")  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The tests' chat-completions servers listen on loopback, also on the PostgreSQL + Redis pass,
# where the production default allows no private address at all.
SHIKOMI_OUTBOUND_ALLOW = ["127.0.0.0/8", "::1"]

# Work runs in the test's thread, not a child process per run (a process start costs seconds);
# tests/training/test_run_process.py turns it on, as consumers started with SHIKOMI_RUN_IN_CHILD=true do.
SHIKOMI_RUN_IN_CHILD = envbool("SHIKOMI_RUN_IN_CHILD", "false")  # noqa: F405
