from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Example
from curation.rules import spec as S
from curation.rules.services import rule_create


def chat(user: str, assistant: str = "We will look into it.") -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


@pytest.fixture
def corpus(project, users):
    """Twelve examples: six labeled by people (three per label), six not."""
    admin = users["admin"]
    rows = [
        ("I was charged twice for my order", "billing"),
        ("Please refund the duplicate charge", "billing"),
        ("My invoice shows the wrong amount", "billing"),
        ("Where is my parcel? Tracking is stuck", "shipping"),
        ("The parcel arrived late and damaged", "shipping"),
        ("When will my order ship?", "shipping"),
        ("Can I get a refund for the grinder?", None),
        ("I need an invoice for last month", None),
        ("My parcel has not moved for a week", None),
        ("Refund my parcel shipping cost please", None),
        ("Hello, nice shop", None),
        ("返金をお願いします", None),
    ]
    examples = [example_create(project=project, user=admin, messages=chat(text), label=label) for text, label in rows]
    return examples


def labeled(project) -> dict[str, str | None]:
    return {e.first_user_text: (e.label.name if e.label_id else None) for e in Example.objects.filter(project=project)}


def write_rules(project, admin) -> None:
    """Three rules over the corpus: two for billing (one a regex), one for shipping."""
    rule_create(
        project=project,
        user=admin,
        name="billing words",
        kind=S.KEYWORDS,
        params={"keywords": "refund, invoice, charged, charge"},
        label="billing",
        target="user",
    )
    rule_create(
        project=project,
        user=admin,
        name="parcel",
        kind=S.KEYWORDS,
        params={"keywords": "parcel, tracking, ship"},
        label="shipping",
        target="user",
    )
    rule_create(
        project=project,
        user=admin,
        name="amounts",
        kind=S.REGEX,
        params={"pattern": r"amount|cost|duplicate"},
        label="billing",
        target="user",
    )
