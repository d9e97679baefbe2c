"""Tiny models for the trainer tests (other training tests import `chat` and use `tiny_model_dir`).

`tiny_model_dir` and `one_thread` live in tests/conftest.py, for every test folder.
"""

from __future__ import annotations

import pytest

# The loopback chat-completions server, for the LLM judge.
from tests.curation.test_openai_backend import _no_proxy, server, sleeps  # noqa: F401


def chat(i: int) -> list[dict[str, str]]:
    """A small conversation, a little longer for larger `i`, for `TrainExample(messages=chat(i))`."""
    words = " ".join(["very"] * (i % 7))
    return [
        {"role": "user", "content": f"What is {i} plus {i}? Answer {words} briefly."},
        {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
    ]


# --- rows for the training pages and API ---------------------------------------------------


def add(project, user, text: str, split: str):
    from curation.core.services import example_create

    return example_create(
        project=project,
        user=user,
        messages=[{"role": "user", "content": text}, {"role": "assistant", "content": f"About {text}: yes."}],
        split=split,
    )


@pytest.fixture
def data(project, users) -> list:
    admin = users["admin"]
    return [
        add(project, admin, "Where is my parcel?", "train"),
        add(project, admin, "Can I pay by card?", "train"),
        add(project, admin, "Do you ship abroad?", "validation"),
    ]


def make_run(project, user, number: int = 1, **fields):
    """A run row as the pages and the API show it (no trainer involved)."""
    from training.engine.config import TrainConfig
    from training.models import TrainingRun

    config = TrainConfig(**fields.pop("config", {})).as_dict()
    values = {
        "status": TrainingRun.Status.DONE,
        "method": config["method"],
        "base_model": config["base_model"],
        "config": config,
        "snapshot": {"train": [[1, "abc"]], "validation": []},
        "train_count": 12,
        "validation_count": 3,
        "created_by": user,
    }
    values.update(fields)
    return TrainingRun.objects.create(project=project, number=number, **values)
