"""How an import writes its rows: one prepared INSERT per batch (ExampleInserter), the labels of
duplicates (Relabel) and the preference pairs of a preference file (pairs_write)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from curation.core.services import example_bulk_update, search_text
from curation.formats.preference import PreferenceRow
from curation.formats.rows import Row
from curation.models import Example, ImportJob, PreferencePair

_STATUSES = frozenset(Example.Status.values)


class ExampleInserter:
    """INSERTs of imported examples with one prepared statement per batch.

    bulk_create spends most of an import compiling SQL for every field of every row; the
    values here are prepared the way Django prepares them (get_db_prep_save, the
    backend's JSON adapter), so what is stored is the same. Fields that are not set here
    take their model default, so a field added to Example later is filled in too.
    """

    PER_ROW = (
        *("messages", "tools", "label_id", "split", "metadata", "content_hash", "source_line", "search_text"),
        "source_object",
    )

    def __init__(self, job: ImportJob) -> None:
        self.fields = [f for f in Example._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(Example._meta.db_table)} ({columns}) VALUES ({marks})"
        self.fixed = {
            "project_id": job.project_id,
            "source": Example.Source.IMPORTED,
            "status": Example.Status.NEEDS_REVIEW,
            "import_job_id": job.pk,
            "created_by_id": job.created_by_id,
        }
        self.slots = {f.attname: i for i, f in enumerate(self.fields)}
        self.json = {name: Example._meta.get_field(name) for name in ("messages", "metadata", "tools")}

    def _template(self) -> list[Any]:
        now = timezone.now()
        values = []
        for field in self.fields:
            if field.attname in self.fixed:
                value = self.fixed[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            elif field.attname in self.PER_ROW:
                values.append(None)
                continue
            else:
                value = field.get_default()
            values.append(field.get_db_prep_save(value, connection))
        return values

    def insert(self, rows: list[tuple[Row, str, int | None]], source_object: str = "") -> None:
        """Write ``rows`` (row, content hash, label id); ``source_object`` names the object of a
        source they were read from ("" for an uploaded file)."""
        template = self._template()
        template[self.slots["source_object"]] = source_object
        slot = self.slots
        messages_at, metadata_at, label_at = slot["messages"], slot["metadata"], slot["label_id"]
        split_at, hash_at, line_at = slot["split"], slot["content_hash"], slot["source_line"]
        search_at, tools_at, status_at = slot["search_text"], slot["tools"], slot["status"]
        adapt = connection.ops.adapt_json_value
        messages_encoder = self.json["messages"].encoder  # type: ignore[attr-defined]
        metadata_encoder = self.json["metadata"].encoder  # type: ignore[attr-defined]
        tools_encoder = self.json["tools"].encoder  # type: ignore[attr-defined]
        params = []
        # Rows of a file that repeat one tool list share one list object (formats.rows.ReadMemo):
        # it is written as JSON once, not once per row.
        last_tools: Any = None
        last_tools_value: Any = None
        for row, digest, label_id in rows:
            values = template.copy()
            values[messages_at] = adapt(row.messages, messages_encoder)
            values[metadata_at] = adapt(row.metadata, metadata_encoder)
            tools = row.tools or []
            if tools is not last_tools:
                last_tools, last_tools_value = tools, adapt(tools, tools_encoder)
            values[tools_at] = last_tools_value
            values[label_at] = label_id
            values[split_at] = row.split
            if row.status in _STATUSES:  # a Shikomi export's own status comes back as it was
                values[status_at] = row.status
            values[hash_at] = digest
            values[line_at] = row.line
            values[search_at] = search_text(row.messages)
            params.append(values)
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, params)


def pairs_write(job: ImportJob, rows: list[tuple[PreferenceRow, str]]) -> int:
    """The preference pairs of a preference file's rows, each linked to its example: the one
    this import wrote, or the one already in the project that the row duplicates (files often
    pair one chosen answer with several rejected ones)."""
    if not rows:
        return 0
    examples: dict[str, int] = {}
    found = Example.objects.filter(project_id=job.project_id, content_hash__in={d for _r, d in rows}).order_by()
    for digest, pk in found.values_list("content_hash", "pk"):
        examples[digest] = min(pk, examples.get(digest, pk))
    pairs = []
    for row, digest in rows:
        prompt, chosen, rejected = row.pair
        pairs.append(
            PreferencePair(
                project_id=job.project_id,
                example_id=examples.get(digest),
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                tools=row.tools or [],
                origin=PreferencePair.Origin.IMPORT,
                created_by_id=job.created_by_id,
            )
        )
    PreferencePair.objects.bulk_create(pairs, batch_size=500)
    return len(pairs)


class Relabel:
    """A labeled row that duplicates an unlabeled example of a classification project gives
    that example its label (with a revision, as a person's label would), instead of being
    skipped with the label lost. ``unlabeled``: content hash -> the example in the project;
    ``pending``: content hash -> the index in ``new`` of a row of this batch not yet written."""

    def __init__(self, new: list[tuple[Row, str, int | None]], unlabeled: dict[str, int], labels: dict[str, int]):
        self.new, self.unlabeled, self.labels = new, unlabeled, labels
        self.pending: dict[str, int] = {}
        self.examples: dict[str, list[int]] = {}  # label -> examples to give it

    def apply(self, row: Row, digest: str) -> str | None:
        """The label applied for this duplicate row, or None."""
        if not row.label:
            return None
        if digest in self.pending:
            index = self.pending.pop(digest)
            earlier, _digest, label_id = self.new[index]
            if label_id is not None:
                return None
            self.new[index] = (earlier, digest, self.labels[row.label])
            return row.label
        pk = self.unlabeled.pop(digest, None)
        if pk is None:
            return None
        self.examples.setdefault(row.label, []).append(pk)
        return row.label

    def write(self, job: ImportJob) -> None:
        for label, ids in self.examples.items():
            example_bulk_update(project=job.project, user=job.created_by, changes={"label": label}, ids=ids)
