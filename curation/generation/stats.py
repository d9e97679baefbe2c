"""The review loop for drafts: approve, edit then approve, reject with reasons, or rank the
candidates for one prompt. Every decision is one transaction; a decision on a draft someone
else has already decided, or whose example changed since it was shown, is refused with the
name of who did what, never applied on top.

Edits and rankings yield preference pairs (prompt, chosen, rejected) for DPO.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils.translation import gettext_lazy

from curation.models import Draft, Project, PromptTemplate

# Why a reviewer rejects a draft; the statistics count rejections by these.
REJECT_REASONS: dict[str, Any] = {
    "wrong_facts": gettext_lazy("Wrong or made-up facts"),
    "off_task": gettext_lazy("Does not do what was asked"),
    "format": gettext_lazy("Wrong format"),
    "tone": gettext_lazy("Wrong tone or voice"),
    "unsafe": gettext_lazy("Unsafe or inappropriate"),
    "duplicate": gettext_lazy("Duplicate"),
    "low_quality": gettext_lazy("Unhelpful or low quality"),
    "other": gettext_lazy("Other"),
}
# Why a ranking approved none of its candidates (review/services.py drafts_rank).
NONE_GOOD_ENOUGH = "none_good_enough"
RANK_REASONS: dict[str, Any] = {NONE_GOOD_ENOUGH: gettext_lazy("None of the candidates was good enough")}
REASON_LABELS: dict[str, Any] = {**REJECT_REASONS, **RANK_REASONS}


@dataclass
class Stats:
    drafts: int = 0
    pending: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    ranked_lower: int = 0
    mean_edit: float | None = None
    reasons: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.approved + self.edited

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted among the drafts decided on their own merit (ranked-lower ones are not rejections)."""
        decided = self.accepted + self.rejected
        return self.accepted / decided if decided else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "drafts": self.drafts,
            "pending": self.pending,
            "approved": self.approved,
            "edited": self.edited,
            "rejected": self.rejected,
            "ranked_lower": self.ranked_lower,
            "acceptance_rate": self.acceptance_rate,
            "mean_edit_distance": self.mean_edit,
            "rejection_reasons": {code: count for code, _label, count in self.reasons},
        }


def _stats_by(drafts: QuerySet[Draft], key: str) -> dict[Any, Stats]:
    found: dict[Any, Stats] = {}
    rows = drafts.values(key).annotate(
        n=Count("id"),
        pending=Count("id", filter=Q(decision=Draft.Decision.PENDING)),
        approved=Count("id", filter=Q(decision=Draft.Decision.APPROVED)),
        edited=Count("id", filter=Q(decision=Draft.Decision.EDITED)),
        rejected=Count("id", filter=Q(decision=Draft.Decision.REJECTED)),
        ranked_lower=Count("id", filter=Q(decision=Draft.Decision.RANKED_LOWER)),
        mean_edit=Avg("edit_distance", filter=Q(decision__in=Draft.ACCEPTED)),
    )
    for row in rows:
        found[row[key]] = Stats(
            drafts=row["n"],
            pending=row["pending"],
            approved=row["approved"],
            edited=row["edited"],
            rejected=row["rejected"],
            ranked_lower=row["ranked_lower"],
            mean_edit=None if row["mean_edit"] is None else round(row["mean_edit"], 4),
        )
    reasons: dict[Any, Counter[str]] = {}
    for owner, chosen in drafts.filter(decision=Draft.Decision.REJECTED).values_list(key, "reasons"):
        reasons.setdefault(owner, Counter()).update(chosen or [])
    for owner, counter in reasons.items():
        if owner in found:
            found[owner].reasons = [
                (code, str(REASON_LABELS.get(code, code)), count) for code, count in counter.most_common()
            ]
    return found


def job_stats(project: Project) -> dict[int, Stats]:
    """Stats per generation job, by job id."""
    return _stats_by(Draft.objects.filter(project=project), "job_id")


def template_stats(project: Project) -> list[tuple[PromptTemplate, Stats]]:
    """Stats per template version that made drafts, newest version first within a name."""
    by_template = _stats_by(Draft.objects.filter(project=project, template__isnull=False), "template_id")
    templates = PromptTemplate.objects.filter(pk__in=by_template).order_by("name", "-version")
    return [(template, by_template[template.pk]) for template in templates]
