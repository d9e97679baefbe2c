"""Exports of a project's examples, streamed: rows are read from the database in chunks
and written out as they come, so an export never sits whole in memory."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import gettext as _

from curation import formats
from curation.core.services import InvalidExample
from curation.models import Example, Project

CHUNK_ROWS = 2000
# CSV and TSV cells that a spreadsheet would run as formulas: "escaped" (a leading ', the
# default, undone by the CSV/TSV import) or "raw" (as stored, for programs that read the file).
FORMULAS = ("escaped", "raw")


def example_export(
    *,
    project: Project,
    format: str,
    split: str | None = None,
    status: str | None = None,
    source: str | None = None,
    label: str | None = None,
    formulas: str | None = None,
) -> tuple[str, str, Iterator[bytes]]:
    """(content type, download file name, byte chunks) of the project's examples.

    Filters left as None (or "") select everything. The chunks come from a generator:
    the database is read while they are consumed. ``formulas`` (see FORMULAS) applies to
    CSV and TSV only.
    """
    formulas = formulas or "escaped"
    if formulas not in FORMULAS:
        raise InvalidExample(
            "formulas",
            _('unknown formulas option "%(value)s"; expected one of %(values)s')
            % {"value": formulas, "values": ", ".join(FORMULAS)},
        )
    writer = formats.export_format(format)
    if writer is None:
        raise InvalidExample(
            "format",
            _('unknown export format "%(format)s"; expected one of %(formats)s')
            % {"format": format, "formats": ", ".join(formats.EXPORT_FORMATS)},
        )
    examples = Example.objects.filter(project=project)
    for field, value, choices in (
        ("split", split, Example.Split),
        ("status", status, Example.Status),
        ("source", source, Example.Source),
    ):
        if not value:
            continue
        if value not in choices.values:
            raise InvalidExample(
                field,
                _('unknown %(field)s "%(value)s"; expected one of %(values)s')
                % {"field": field, "value": value, "values": ", ".join(choices.values)},
            )
        examples = examples.filter(**{field: value})
    if label:
        names = list(project.labels.values_list("name", flat=True))
        if label not in names:
            raise InvalidExample(
                "label",
                _('unknown label "%(label)s"; this project\'s labels are: %(labels)s')
                % {"label": label, "labels": ", ".join(names) or _("none")},
            )
        examples = examples.filter(label__name=label)
    if project.block_on_pii:
        from curation.quality.services import pii_message, pii_unredacted

        flagged, kinds = pii_unredacted(project, examples)
        if flagged:
            raise InvalidExample("pii", pii_message(flagged, kinds))
    rows = (
        examples.order_by("pk")
        .values_list("messages", "label__name", "split", "metadata")
        .iterator(chunk_size=CHUNK_ROWS)
    )
    parts = [project.slug, split or "", label or "", format]
    filename = "-".join(p for p in parts if p) + "." + writer.extension
    chunks = writer(rows, classification=project.kind == Project.Kind.CLASSIFICATION, raw_formulas=formulas == "raw")
    return writer.content_type, filename, chunks
