from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.utils import translation
from django_huey import get_queue

from curation.core.services import example_create
from curation.models import Example, Label, Membership, Project, Role

ROOT = Path(__file__).resolve().parent.parent
QUEUES = ("light", "heavy")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _english_by_default() -> Iterator[None]:
    """A request by a Japanese-speaking user leaves Japanese active in the test's thread (the
    middleware activates a language per request, as it should); each test starts in English."""
    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture
def project(db) -> Project:
    project = Project.objects.create(name="Support bot", slug="support", kind=Project.Kind.CHAT)
    Label.objects.create(project=project, name="billing", shortcut="1")
    Label.objects.create(project=project, name="shipping", shortcut="2")
    return project


def _user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def users(project, django_user_model) -> dict[str, object]:
    """One user per way of standing towards `project`."""
    people = {
        "outsider": _user(django_user_model, "outsider"),
        "annotator": _user(django_user_model, "annie"),
        "reviewer": _user(django_user_model, "rhea"),
        "admin": _user(django_user_model, "adam"),
        "superuser": _user(django_user_model, "root", is_superuser=True, is_staff=True),
    }
    for role in (Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN):
        Membership.objects.create(project=project, user=people[role], role=role)
    return people


@pytest.fixture
def example(project, users) -> Example:
    return example_create(
        project=project,
        user=users["annotator"],
        messages=[{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "On its way."}],
        label="shipping",
    )


def _consumer_env() -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings_test", HUEY_IMMEDIATE="false")
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{settings['NAME']}"
    else:
        env["DATABASE_URL"] = (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or 'localhost'}"
            f":{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    return env


class Consumers:
    """Real `manage.py djangohuey` processes, one per queue (or as chosen), on the test database:
    kill() and wait() act on all of them, as on one worker machine."""

    def __init__(self, queues: tuple[str, ...] = QUEUES, env: dict[str, str] | None = None) -> None:
        self.processes = [
            subprocess.Popen(
                [sys.executable, "manage.py", "djangohuey", "--queue", queue, "--workers", "1"],
                cwd=ROOT,
                # As in production, each training run and evaluation in a child process.
                env=_consumer_env() | {"SHIKOMI_RUN_IN_CHILD": "true"} | (env or {}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for queue in queues
        ]

    def kill(self) -> None:
        """SIGKILL every consumer, then wait (up to 10 s) until the run processes they started
        are gone too (their watchdog ends them): as when the machine itself dies."""
        import psutil

        children = [
            child for process in self.processes for child in psutil.Process(process.pid).children(recursive=True)
        ]
        for process in self.processes:
            process.kill()
        psutil.wait_procs(children, timeout=10)

    def wait(self, timeout: float | None = None) -> None:
        for process in self.processes:
            process.wait(timeout=timeout)

    def stop(self) -> str:
        """Stop them all (SIGTERM, then SIGKILL after 20 s); their output."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        outputs = []
        for process in self.processes:
            try:
                output, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            outputs.append(f"--- {' '.join(process.args[2:5])} ---\n{output}")
        return "\n".join(outputs)


def _queues_immediate(immediate: bool) -> None:
    for name in QUEUES:
        queue = get_queue(name)
        queue.immediate = immediate
        if not immediate:
            queue.flush()


@pytest.fixture
def huey_consumer(transactional_db) -> Iterator[Consumers]:
    """Real consumers in other processes, one for each queue, on the test database."""
    _queues_immediate(False)
    consumers = Consumers()
    try:
        yield consumers
    finally:
        print(consumers.stop())  # shown by pytest when the test fails
        for name in QUEUES:
            get_queue(name).flush()
        _queues_immediate(True)


def reap_after_lease() -> int:
    """What a live consumer's heartbeat thread does once a dead worker's lease has run out
    (curation/core/background.py `reap`), without waiting SHIKOMI_LEASE_SECONDS."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from curation.core.background import reap

    return reap(now=timezone.now() + timedelta(seconds=settings.SHIKOMI_LEASE_SECONDS + 1))


def wait_for(condition, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# --- tiny models ---------------------------------------------------------------------------
# `tiny_model_dir` is a randomly initialised two-layer Llama with the embedded SmolLM2 tokenizer
# (its chat template and vocabulary), saved once per test session: it trains a step in
# milliseconds, while the tokens, the template and the label masks are the real ones.


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.engine.modeling import load_tokenizer

    tokenizer = load_tokenizer("")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a busy two-core machine the threads wait
    on each other (a 32-wide matrix product then takes milliseconds): one thread, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
