"""Start the web server and a Huey consumer together; Ctrl-C stops both."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from curation.demo.load import DEMO_USERS
from curation.services import import_jobs_mark_interrupted


class Command(BaseCommand):
    help = "Run the web server and the background worker (what `make run` starts)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default=os.getenv("SHIKOMI_ADDRPORT", "127.0.0.1:8000"))

    def handle(self, *args, addrport: str, **options) -> None:
        # Single-machine setup: no consumer is running yet, so a "running" import is one a
        # killed worker left behind.
        import_jobs_mark_interrupted()
        manage = [sys.executable, "manage.py"]
        processes = [
            subprocess.Popen([*manage, "run_huey", "--flush-locks"]),
            subprocess.Popen([*manage, "runserver", "--noreload", "--insecure", addrport]),
        ]
        password = os.getenv("DEMO_PASSWORD", "shikomi-demo")
        logins = "\n".join(f"    {name:<16} {password}   ({role})" for name, role in DEMO_USERS)
        self.stdout.write(
            f"\nShikomi is running at http://{addrport}/\n\n  Demo logins (user, password, role):\n{logins}\n\n"
            "  Press Ctrl-C to stop the web server and the worker.\n"
        )
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for p in processes:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in processes:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        failed = [p.args[2] for p in processes if p.returncode not in (0, -2, 130, None)]
        if failed:
            sys.exit(f"Stopped because {', '.join(failed)} exited.")
