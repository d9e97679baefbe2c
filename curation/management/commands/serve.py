"""Start the web server and a Huey consumer together; Ctrl-C stops both."""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from curation.demo.load import demo_logins


def _stop(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the web server and the background worker (what `make run` starts)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default=os.getenv("SHIKOMI_ADDRPORT", "127.0.0.1:8000"))

    def handle(self, *args, addrport: str, **options) -> None:
        # Work a killed worker left running is noticed by the consumers' heartbeats (within
        # SHIKOMI_LEASE_SECONDS, curation/models/leases.py), not here: another machine's consumer
        # may be running it.
        signal.signal(signal.SIGTERM, _stop)
        # Started from a script in the background, a process inherits SIGINT ignored; Ctrl-C
        # (or a test's SIGINT) must still stop the server and the worker.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        manage = [sys.executable, "manage.py"]
        # One consumer per queue (config/settings.py, QUEUES): light work never waits behind a run.
        processes = [
            *(
                subprocess.Popen([*manage, "djangohuey", "--queue", queue, "--flush-locks"])
                for queue in settings.QUEUES
            ),
            subprocess.Popen([*manage, "runserver", "--noreload", "--insecure", addrport]),
        ]
        try:
            self._announce_when_up(addrport, processes)
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            # The consumer finishes its tasks on SIGINT; runserver stops at once on SIGTERM.
            for p in processes:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM if "runserver" in p.args else signal.SIGINT)
            for p in processes:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        failed = [" ".join(p.args[2:5]) for p in processes if p.returncode not in (0, -2, -15, 130, None)]
        if failed:
            sys.exit(f"Stopped because {', '.join(failed)} exited.")

    def _announce_when_up(self, addrport: str, processes: list[subprocess.Popen]) -> None:
        host, _, port = addrport.rpartition(":")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        # Only demo users that `load_demo` made and whose password nobody changed: an instance
        # without the demo publishes no password.
        password = os.getenv("DEMO_PASSWORD", "shikomi-demo")
        demo = demo_logins(password=password)
        logins = "".join(f"    {name:<16} {password}   ({role})\n" for name, role in demo)
        if demo:
            logins = (
                f"  Demo logins (user, password, role):\n{logins}"
                "  Change these passwords, or remove these users, before anyone else can reach this instance.\n\n"
            )
        self.stdout.write(
            f"\n  Shikomi is running at http://{addrport}/\n\n{logins}"
            "  Press Ctrl-C to stop the web server and the worker.\n"
        )
