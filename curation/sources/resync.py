"""Importing a source again (a re-sync): what happens to each row the source gives.

A row is known by its content (the content hash) and by its key: the object it came from and
its line there (``Example.source_object``, ``Example.source_line``), among the examples earlier
imports of the same source wrote.

- The project has the same content already: the row is skipped and reported as already present
  (the import's duplicate check, curation/io/imports.py).
- The content is new, but an earlier import of this source wrote an example with the same key:
  the row changed at the source. With "update changed rows" the example takes the new content
  through the example write path (curation/core/services.py `example_update`: a revision names
  the change, and an approved example goes back to review); without it, the row is reported as
  changed and the example is left as it is. Either way no second example is made for it.
- Otherwise the row is imported as a new example.
"""

from __future__ import annotations

from typing import Any

from curation.core.services import example_update
from curation.io.imports import REPORT_LIMIT, ImportPart, NewRow
from curation.models import Example, ImportJob


class Resync:
    """The RowKeeper (curation/io/imports.py) of a source's import."""

    def __init__(self, job: ImportJob, *, update_changed: bool) -> None:
        self.job = job
        self.update_changed = update_changed
        self.changed: list[dict[str, Any]] = []
        self.changed_total = 0
        self.updated_total = 0
        self.skipped_objects: list[str] = []  # objects of a bucket that are not imported

    def _earlier(self, part: ImportPart, lines: list[int]) -> dict[int, Example]:
        found: dict[int, Example] = {}
        examples = (
            Example.objects.filter(
                project_id=self.job.project_id,
                import_job__source_id=self.job.source_id,
                source_object=part.name[:1000],
                source_line__in=lines,
            )
            .exclude(import_job_id=self.job.pk)
            .select_related("project", "label")
            .order_by("pk")
        )
        for example in examples:
            found.setdefault(example.source_line, example)
        return found

    def keep(self, rows: list[NewRow], part: ImportPart) -> list[NewRow]:
        earlier = self._earlier(part, [row.line for row, _digest, _label in rows])
        if not earlier:
            return rows
        kept = []
        for new in rows:
            row = new[0]
            example = earlier.get(row.line)
            if example is None:
                kept.append(new)
                continue
            self.changed_total += 1
            if self.update_changed:
                self._update(example, row)
            if len(self.changed) < REPORT_LIMIT:
                entry = {"object": part.name, "line": row.line, "example": example.pk, "updated": self.update_changed}
                self.changed.append(entry)
        return kept

    def _update(self, example: Example, row: Any) -> None:
        changes: dict[str, Any] = {"messages": row.messages, "tools": row.tools or [], "metadata": row.metadata or {}}
        if row.label:
            changes["label"] = row.label
        if example.status == Example.Status.APPROVED:
            changes["status"] = Example.Status.NEEDS_REVIEW  # the approval was of the old content
        example_update(example=example, user=self.job.created_by, version=example.version, **changes)
        self.updated_total += 1

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "changed": self.changed,
            "changed_total": self.changed_total,
            "updated_total": self.updated_total,
        }
        if self.skipped_objects:
            report["skipped_objects"] = self.skipped_objects[:REPORT_LIMIT]
            report["skipped_objects_total"] = len(self.skipped_objects)
        return report

    def rolled_back(self) -> None:
        self.updated_total = 0
        for entry in self.changed:
            entry["updated"] = False
