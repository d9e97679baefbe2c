"""`make run` ends in `manage.py serve`: the web server and a Huey consumer together."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from curation.models import ImportJob
from tests.conftest import reap_after_lease

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_serve_answers_creates_no_user_publishes_no_password_and_ctrl_c_stops_every_process(tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        SHIKOMI_DATA_DIR=str(tmp_path),
        SECRET_KEY="test",
        HUEY_NAME=f"serve-test-{port}",
    )
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        banner = ""
        while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
            banner += server.stdout.readline()
        assert f"Shikomi is running at http://127.0.0.1:{port}/" in banner
        # Without `load_demo` there are no demo users, so no password to print.
        assert "shikomi-demo" not in banner and "Demo logins" not in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            assert response.status == 200
        children = children_of(server.pid)
        assert len(children) == 3  # runserver and a consumer for each queue

        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0  # serve waits up to 10 s for each child
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in children)
    finally:
        if server.poll() is None:
            server.kill()
    # Neither `migrate` nor `serve` made an account: only `load_demo` (make run's demo) does.
    with sqlite3.connect(tmp_path / "shikomi.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM auth_user").fetchone() == (0,)


def test_serve_prints_the_demo_logins_that_still_take_the_published_password(db, capsys):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from curation.management.commands.serve import Command

    call_command("load_demo")
    admin = get_user_model().objects.get(username="demo-admin")
    admin.set_password("changed by the team")
    admin.save()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        Command()._announce_when_up(f"127.0.0.1:{listening.getsockname()[1]}", [])
    banner = capsys.readouterr().out
    assert "demo-annotator   shikomi-demo" in banner and "demo-reviewer    shikomi-demo" in banner
    assert "demo-admin" not in banner
    assert "Change these passwords, or remove these users" in banner


def test_an_import_left_running_by_a_killed_worker_is_marked_failed(project, users):
    job = ImportJob.objects.create(
        project=project, format="openai", filename="a.jsonl", path="/x", status=ImportJob.Status.RUNNING
    )
    done = ImportJob.objects.create(
        project=project, format="openai", filename="b.jsonl", path="/y", status=ImportJob.Status.SUCCEEDED
    )
    assert reap_after_lease() == 1
    job.refresh_from_db(), done.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "nothing was written" in job.error
    assert job.finished_at is not None and done.status == ImportJob.Status.SUCCEEDED
