"""What stops a training run from launching: leaks between splits (an admin may override,
and the override is recorded on the run) and, when the project asks for it, personal data
that is still unredacted (no override: redact it or turn the block off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation.core.errors import ServiceError
from curation.models import Example, Project
from curation.quality import services

OVERRIDABLE = frozenset({"leakage"})


@dataclass(frozen=True)
class Blocker:
    gate: str
    message: str
    ids: list[int] = field(default_factory=list)

    @property
    def overridable(self) -> bool:
        return self.gate in OVERRIDABLE


class LaunchBlocked(ServiceError):
    """A conflict with the quality gates: the API answers 409 with each blocker."""

    status = 409

    def __init__(self, blockers: list[Blocker]) -> None:
        super().__init__("", _("The quality gates block this launch."))
        self.blockers = blockers

    def data(self) -> dict[str, Any]:
        blockers = [{"gate": b.gate, "message": b.message, "ids": b.ids} for b in self.blockers]
        return {**super().data(), "blockers": blockers}


def launch_blockers(project: Project, *, examples=None) -> list[Blocker]:
    """``examples``: the examples the run would use (for the personal data gate)."""
    blockers = []
    found = services.leaks(project)
    if found:
        ids = sorted({leak.evaluated.pk for leak in found})
        shown = ", ".join(str(i) for i in ids[:20]) + (" …" if len(ids) > 20 else "")
        blockers.append(
            Blocker(
                "leakage",
                ngettext(
                    "%(n)s validation or test example duplicates a training example (id %(ids)s). Resolve "
                    "it on the leakage page, or override and say why.",
                    "%(n)s validation or test examples duplicate a training example (ids %(ids)s). Resolve "
                    "them on the leakage page, or override and say why.",
                    len(ids),
                )
                % {"n": len(ids), "ids": shown},
                ids,
            )
        )
    if project.block_on_pii:
        if examples is None:
            examples = Example.objects.filter(project=project)
        flagged, kinds = services.pii_unredacted(project, examples)
        if flagged:
            blockers.append(Blocker("pii", services.pii_message(flagged, kinds)))
    return blockers
