"""Queue latency: how long a job queued on an idle worker waits before it starts, old and new settings.

    .venv/bin/python bench/queue_latency.py [--rounds 6] [--idle 30] [--backend sqlite|redis]
    .venv/bin/python bench/queue_latency.py --rounds 3 --idle 5        # a quick try

For each queue backend (SQLite; and Redis when REDIS_URL is set or a `redis-server` binary is on
PATH, started here on a free loopback port) and for each consumer setting, the script starts a
real Huey consumer (`config.settings`' HUEY, in a temporary SHIKOMI_DATA_DIR) in another process,
lets it sit idle for `--idle` seconds, queues a trivial task that notes when it started, and
takes started - queued; `--rounds` times. Meanwhile it reads the consumer's CPU time from /proc,
so the idle cost of polling is measured too (CPU seconds the consumer used per idle minute).

"old" is how the consumer polled before issue 20: Huey 3.5.4's defaults (initial_delay 0.1 s,
backoff 1.15, max_delay 10 s), so after an idle minute a worker looks at the queue only every
few seconds. "new" is whatever config/settings.py's HUEY says now. On Redis both block in BRPOP
(RedisHuey's default, now stated in the settings): the polling options do not apply there.

Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Huey 3.5.4's own defaults, which config/settings.py used until issue 20.
OLD = {"initial_delay": 0.1, "backoff": 1.15, "max_delay": 10.0}
TICKS = os.sysconf("SC_CLK_TCK")


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _task(huey):
    # Both processes run this file as __main__, so the task has one name in both.
    @huey.task(name="bench_started")
    def started() -> float:
        return time.time()

    return started


def consume(setting: str) -> None:
    """The consumer process: the settings' consumer options, or the old polling ones."""
    _django()
    from django.conf import settings
    from django_huey import get_queue
    from huey.consumer_options import ConsumerConfig

    HUEY = get_queue("light")
    _task(HUEY)
    options = dict(settings.DJANGO_HUEY["queues"]["light"].get("consumer", {}))
    if setting == "old":
        options |= OLD
    config = ConsumerConfig(**options)
    config.validate()
    HUEY.create_consumer(**config.values).run()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


def measure(backend: str, rounds: int, idle: float) -> dict:
    """Both settings on the backend the environment names; one dict per setting."""
    _django()
    from django.conf import settings
    from django_huey import get_queue

    HUEY = get_queue("light")
    started = _task(HUEY)
    results = {}
    for setting in ("old", "new"):
        HUEY.flush()
        consumer = subprocess.Popen(
            [sys.executable, __file__, "--consume", setting],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            started().get(blocking=True, timeout=120)  # up and working: the first job loads nothing
            latencies, cpu, idled = [], 0.0, 0.0
            for _ in range(rounds):
                cpu_before, idle_from = _cpu_seconds(consumer.pid), time.monotonic()
                time.sleep(idle)
                cpu += _cpu_seconds(consumer.pid) - cpu_before
                idled += time.monotonic() - idle_from
                queued = time.time()
                latencies.append(started().get(blocking=True, timeout=120) - queued)
        finally:
            consumer.send_signal(signal.SIGINT)
            try:
                consumer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                consumer.kill()
        options = dict(settings.DJANGO_HUEY["queues"]["light"]["consumer"]) | (OLD if setting == "old" else {})
        results[setting] = {
            "latencies": latencies,
            "cpu_per_idle_minute": cpu / idled * 60,
            "options": {k: options[k] for k in ("workers", "initial_delay", "backoff", "max_delay")},
            "blocking": getattr(HUEY.storage, "blocking", False),
        }
    return {"backend": backend, "settings": results}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(stack: list) -> str | None:
    """A Redis URL: REDIS_URL, or a redis-server started here; None when there is neither."""
    if os.getenv("REDIS_URL"):
        return os.environ["REDIS_URL"]
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    stack.append(server)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.2)
    raise SystemExit("redis-server did not start")


def _run_backend(backend: str, args: argparse.Namespace, redis_url: str | None) -> dict:
    data = tempfile.mkdtemp(prefix="shikomi-bench-queue-")
    env = dict(
        os.environ,
        SHIKOMI_DATA_DIR=data,
        HUEY_NAME=f"bench-queue-{os.getpid()}",
        HUEY_IMMEDIATE="false",
        SECRET_KEY="bench-only-secret-key",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, __file__, "--measure", backend, "--rounds", str(args.rounds), "--idle", str(args.idle)]
    try:
        output = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return json.loads(output.strip().splitlines()[-1])


def _table(runs: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "| queue  | setting | polling (initial, backoff, max)  | p50 ms | p95 ms | max ms | CPU s per idle minute |",
        "|--------|---------|----------------------------------|--------|--------|--------|-----------------------|",
    ]
    for run in runs:
        for setting, found in run["settings"].items():
            ms = sorted(latency * 1000 for latency in found["latencies"])
            p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
            o = found["options"]
            polling = f"{o['initial_delay']}, {o['backoff']}, {o['max_delay']} s"
            polling = "blocking (BRPOP)" if found["blocking"] else polling
            lines.append(
                f"| {run['backend']:<6} | {setting:<7} | {polling:<32} | {statistics.median(ms):6.0f} | {p95:6.0f} "
                f"| {ms[-1]:6.0f} | {found['cpu_per_idle_minute']:21.3f} |"
            )
    workers = runs[0]["settings"]["new"]["options"]["workers"]
    lines.append(
        f"\n{args.rounds} rounds, each after {args.idle:g} s idle; {workers} worker threads per consumer; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="jobs queued per setting (default 6)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle before each job (default 30)")
    parser.add_argument("--backend", choices=("sqlite", "redis"), help="only this queue (default: both)")
    parser.add_argument("--consume", choices=("old", "new"), help=argparse.SUPPRESS)  # a consumer process
    parser.add_argument("--measure", choices=("sqlite", "redis"), help=argparse.SUPPRESS)  # one backend's run
    args = parser.parse_args()
    if args.rounds < 1 or args.idle < 0:
        parser.error("--rounds must be at least 1 and --idle 0 or more")
    if args.consume:
        consume(args.consume)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.rounds, args.idle)))
        return
    servers: list[subprocess.Popen] = []
    try:
        runs = []
        for backend in [args.backend] if args.backend else ["sqlite", "redis"]:
            redis_url = _redis(servers) if backend == "redis" else None
            if backend == "redis" and redis_url is None:
                print("Redis: skipped (no REDIS_URL and no redis-server on PATH)", file=sys.stderr)
                continue
            print(f"{backend}: {2 * args.rounds} jobs, {args.idle:g} s apart ...", file=sys.stderr, flush=True)
            runs.append(_run_backend(backend, args, redis_url))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    print(_table(runs, args))


if __name__ == "__main__":
    main()
