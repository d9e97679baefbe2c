"""A small project whose weak labels are written by hand, so every figure of the accept panel can
be worked out on paper: four examples people labeled, three nobody did, and per example the
label model's and majority vote's answers."""

from __future__ import annotations

from curation.core.services import example_create
from curation.models import Example, RuleRun, WeakLabel
from tests.rules.conftest import chat

# text: (people's label, (label model, confidence), (majority vote, share))
ROWS = {
    "g1": ("billing", ("billing", 0.95), ("billing", 1.0)),
    "g2": ("billing", ("shipping", 0.7), ("billing", 0.67)),
    "g3": ("shipping", ("shipping", 0.9), ("shipping", 1.0)),
    "g4": ("shipping", ("billing", 0.6), (None, 0.0)),
    "u1": (None, ("billing", 0.97), ("billing", 1.0)),
    "u2": (None, ("shipping", 0.55), ("shipping", 0.67)),
    "u3": (None, (None, 0.0), (None, 0.0)),
}


def make_run(project, admin, number: int = 1, rows: dict | None = None, model: str = "label_model") -> RuleRun:
    """A finished run over the project's examples (created on first use) with the given answers."""
    labels = {label.name: label for label in project.labels.all()}
    examples = {e.first_user_text: e for e in Example.objects.filter(project=project)}
    run = RuleRun.objects.create(
        project=project,
        number=number,
        status=RuleRun.Status.DONE,
        label_names=sorted(labels),
        metrics={"model": model, "label_model": {"accuracy": 0.5}, "majority": {"accuracy": 1.0}},
    )
    for text, (gold, (lm, confidence), (mv, share)) in (rows or ROWS).items():
        if text not in examples:
            examples[text] = example_create(project=project, user=admin, messages=chat(text), label=gold)
        WeakLabel.objects.create(
            run=run,
            example=examples[text],
            label=labels.get(lm),
            confidence=confidence,
            majority_label=labels.get(mv),
            majority_confidence=share,
        )
    return run


def label_of(project, text: str) -> str | None:
    example = Example.objects.select_related("label").get(project=project, messages__0__content=text)
    return example.label.name if example.label_id else None
