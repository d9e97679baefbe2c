"""What the project dashboard shows: counts, class balance, annotator progress, agreement,
and what needs attention. Reads only; a fixed number of queries whatever the data size."""

from __future__ import annotations

from typing import Any

from curation.labeling import agreement
from curation.labeling.services import annotations_by_example
from curation.models import Membership, Project


def agreement_summary(*, project: Project) -> dict[str, Any]:
    by_example = annotations_by_example(project=project)
    names = dict(Membership.objects.filter(project=project).values_list("user_id", "user__username"))
    pairs = [
        {
            "a": names.get(p.annotator_a, p.annotator_a),
            "b": names.get(p.annotator_b, p.annotator_b),
            "units": p.units,
            "kappa": p.kappa,
            "band": agreement.interpret(p.kappa),
        }
        for p in agreement.pairwise_cohen(by_example)
    ]
    alpha = agreement.krippendorff_alpha(by_example)
    fleiss = agreement.fleiss_kappa(by_example)
    return {
        "units": sum(1 for labels in by_example.values() if len(labels) >= 2),
        "alpha": alpha,
        "alpha_band": agreement.interpret(alpha),
        "fleiss": fleiss,
        "fleiss_band": agreement.interpret(fleiss),
        "pairs": pairs,
        "per_label": [
            {"label": label, "alpha": value, "band": agreement.interpret(value)}
            for label, value in sorted(agreement.per_label_agreement(by_example).items(), key=lambda kv: str(kv[0]))
        ],
    }
