"""The consumer settings that make new work start within a fraction of a second (issue 20).

The latency itself is measured, not asserted: bench/queue_latency.py, docs/benchmarks.md. What
is checked here is that `run_huey` accepts the settings and that the consumer it builds polls a
SQLite queue at most every half second, and that a Redis queue blocks instead of polling.
"""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings
from huey import MemoryHuey
from huey.consumer_options import ConsumerConfig

from tests.conftest import ROOT


def _settings_in_a_new_process(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="test-only", **env)
    environment.pop("REDIS_URL", None)
    environment.update(env)
    prelude = "import django; django.setup()\nfrom django.conf import settings\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_the_consumer_that_run_huey_builds_from_the_settings_polls_at_most_every_half_second():
    config = ConsumerConfig(**settings.DJANGO_HUEY["queues"]["light"]["consumer"])
    config.validate()
    # A queue of its own: building a consumer changes the Huey instance it is given.
    consumer = MemoryHuey("settings-check").create_consumer(**config.values)
    workers = [worker for worker, _thread in consumer.worker_threads]
    assert len(workers) == settings.DJANGO_HUEY["queues"]["light"]["consumer"]["workers"]
    for worker in workers:
        assert worker.default_delay <= worker.max_delay <= 0.5
        assert worker.backoff >= 1


def test_a_redis_queue_blocks_in_brpop_instead_of_polling():
    # Nothing connects to Redis when the queue is built, so no server is needed.
    result = _settings_in_a_new_process(
        "from django_huey import get_queue\n"
        "for q in ('light', 'heavy'):\n"
        "    h = get_queue(q)\n"
        "    print(type(h).__name__, h.storage.blocking, h.storage.read_timeout)",
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["RedisHuey", "True", "1"] * 2


def test_the_idle_limit_of_cached_models_is_a_setting_and_a_bad_one_stops_the_start():
    result = _settings_in_a_new_process("print(settings.SHIKOMI_MODEL_IDLE_SECONDS)", SHIKOMI_MODEL_IDLE_SECONDS="45")
    assert result.stdout.strip() == "45.0", result.stderr
    assert _settings_in_a_new_process("print(settings.SHIKOMI_MODEL_IDLE_SECONDS)").stdout.strip() == "300.0"
    for bad in ("five minutes", "-1", "nan"):
        result = _settings_in_a_new_process("", SHIKOMI_MODEL_IDLE_SECONDS=bad)
        assert result.returncode != 0
        assert "SHIKOMI_MODEL_IDLE_SECONDS must be a number of seconds, 0 or more" in result.stderr
        assert repr(bad) in result.stderr
