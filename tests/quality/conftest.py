from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Example, QualityScan
from curation.quality.tasks import quality_scan_start

PASSWORD_RESET = "How do I reset my password on the website? I forgot it yesterday and cannot sign in to my account."
PASSWORD_REPLY = "Open the sign-in page, choose Forgot password and follow the link we e-mail you."


def chat(user: str, assistant: str = "We will look into it and reply within a day.") -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def add(project, user, user_text: str, assistant: str | None = None, **fields) -> Example:
    messages = chat(user_text) if assistant is None else chat(user_text, assistant)
    return example_create(project=project, user=user, messages=messages, **fields)


@pytest.fixture
def corpus(project, users) -> dict[str, Example]:
    """A small project with one of each problem, named by what it is."""
    admin = users["admin"]
    e = {
        "original": add(project, admin, PASSWORD_RESET, PASSWORD_REPLY, split="train"),
        # one word changed: a near duplicate in the test split
        "near_copy": add(project, admin, PASSWORD_RESET.replace("yesterday", "today"), PASSWORD_REPLY, split="test"),
        "train_twin": add(
            project, admin, "My parcel never arrived and the tracking page says delivered.", split="train"
        ),
        "pii": add(
            project,
            admin,
            "Please call me on 090-1234-5678 or write to taro.yamada@example.com about my refund.",
            split="train",
        ),
        "plain": add(project, admin, "Can I change the delivery address after ordering?", split="train"),
        "other": add(project, admin, "Do you ship to Hokkaido in winter?", split="validation"),
    }
    # an exact copy of a training example, in the validation split
    e["exact_copy"] = add(
        project, admin, "My parcel never arrived and the tracking page says delivered.", split="validation"
    )
    return e


def run_scan(project, user, django_capture_on_commit_callbacks) -> QualityScan:
    with django_capture_on_commit_callbacks(execute=True):
        scan = quality_scan_start(project=project, user=user)
    scan.refresh_from_db()
    assert scan.status == QualityScan.Status.DONE, scan.error
    return scan
