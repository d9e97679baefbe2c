"""Exports of a project's examples, streamed: rows are read from the database in chunks
and written out as they come, so an export never sits whole in memory.

A format that cannot hold some examples (Alpaca and tool calls, CSV and several turns, see
docs/data-model.md) leaves them out; how many and why is counted in a first pass over the
selection, before the first byte is written, so pages, the API and the command can say it."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.db.models import Count, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from curation import formats
from curation.core.services import InvalidExample
from curation.io.card import CARD_NAME, CardContext, CardFile, card_counts, card_text
from curation.models import Example, Project, WeakLabel
from curation.rules.selectors import PERSON, RULES

CHUNK_ROWS = 2000
# CSV and TSV cells that a spreadsheet would run as formulas: "escaped" (a leading ', the
# default, undone by the CSV/TSV import) or "raw" (as stored, for programs that read the file).
FORMULAS = ("escaped", "raw")
# The response header that tells an API client what was left out (see skipped_header).
SKIPPED_HEADER = "X-Shikomi-Skipped"
# What an export takes when no status is named: examples a reviewer approved. Drafts, examples
# that need review and rejected ones are added on purpose ("any" takes every status).
DEFAULT_STATUSES = (Example.Status.APPROVED,)
ANY_STATUS = "any"


@dataclass
class Export:
    """What example_export returns. Unpacks as (content type, file name, chunks); ``skipped``
    counts the examples left out per reason, known before the chunks are read."""

    content_type: str
    filename: str
    chunks: Iterator[bytes]
    skipped: dict[str, int] = field(default_factory=dict)
    # The files one by one (name, chunks), for a reader that keeps them apart (the Hub push):
    # ``chunks`` and ``members`` share their generators, so read one of them, never both.
    members: list[tuple[str, Iterator[bytes]]] = field(default_factory=list)

    def __iter__(self) -> Iterator[object]:
        return iter((self.content_type, self.filename, self.chunks))

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def skipped_text(skipped: dict[str, int]) -> str:
    """``tool calls (3); several turns (1)``: the examples left out, most first."""
    return "; ".join(
        _("%(reason)s (%(count)d)") % {"count": count, "reason": reason}
        for reason, count in sorted(skipped.items(), key=lambda item: (-item[1], item[0]))
    )


def skipped_header(skipped: dict[str, int]) -> str:
    """skipped_text as a header value: ASCII, other characters percent-encoded (UTF-8)."""
    return quote(skipped_text(skipped), safe=" ;,()'-")


def example_export(
    *,
    project: Project,
    format: str,
    split: str | None = None,
    status: str | Iterable[str] | None = None,
    source: str | None = None,
    label: str | None = None,
    formulas: str | None = None,
    shikomi_fields: bool = False,
    per_split: bool = False,
    card: bool = False,
) -> Export:
    """The project's examples as a file: content type, download file name, byte chunks, and
    the examples the format cannot hold, counted per reason.

    Filters left as None (or "") select everything, but for ``status``: approved examples
    unless statuses are named (a list, or text separated by commas; "any" for every status).
    The chunks come from a generator:
    the database is read while they are consumed. ``formulas`` (see FORMULAS) applies to
    CSV and TSV only. ``shikomi_fields`` adds id, label, split, status and metadata to each
    record, so that importing the file gives back the same examples, and where each label came
    from (``label_source``: a person or a rule set version, see label_source_of), which the
    import does not take back. ``per_split`` writes one
    file per split (train, validation, test, unassigned: those that have examples) into a ZIP
    archive, each to be imported with its split chosen. ``card`` adds a data card (README.md,
    curation/io/card.py) and so always gives a ZIP archive.
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
    examples = _selection(project, split=split, status=status, source=source, label=label)
    if project.block_on_pii:
        from curation.quality.services import pii_message, pii_unredacted

        flagged, kinds = pii_unredacted(project, examples)
        if flagged:
            raise InvalidExample("pii", pii_message(flagged, kinds))
    classification = project.kind == Project.Kind.CLASSIFICATION
    counts = card_counts(examples, writer, classification=classification) if card else None
    skipped = dict(counts.skipped) if counts is not None else _skipped(examples, writer, classification)
    options = {"classification": classification, "raw_formulas": formulas == "raw", "shikomi_fields": shikomi_fields}
    parts = [project.slug, split or "", label or "", format]
    filename = "-".join(p for p in parts if p) + "." + writer.extension
    if per_split:
        present = set(examples.order_by().values_list("split", flat=True).distinct())
        files = [
            CardFile("-".join(p for p in [project.slug, name, label or "", format] if p) + "." + writer.extension, name)
            for name in Example.Split.values
            if name in present
        ]
    else:
        files = [CardFile(filename)]
    members = [
        (f.path, writer(_rows(examples.filter(split=f.split) if f.split else examples, shikomi_fields), **options))
        for f in files
    ]
    if counts is not None:
        selection = {"statuses": statuses_clean(status), "split": split, "source": source, "label": label}
        context = CardContext(project=project, format=format, files=files, selection=selection, skipped=skipped)
        members.append((CARD_NAME, iter([card_text(examples, counts, context).encode("utf-8")])))
    if not per_split and not card:
        return Export(writer.content_type, filename, members[0][1], skipped, members)
    archive = filename.rsplit(".", 1)[0] + ("-splits.zip" if per_split else ".zip")
    return Export("application/zip", archive, _zipped(iter(members)), skipped, members)


def _rows(examples: QuerySet[Example], shikomi_fields: bool = False) -> Iterator[formats.ExportRow]:
    if shikomi_fields:
        yield from _rows_with_label_source(examples)
        return
    tools_of = _StoredTools()
    for pk, messages, label_name, split_name, metadata, tools_text, status_name in (
        examples.order_by("pk")
        .annotate(tools_text=Cast("tools", TextField()))
        .values_list("pk", "messages", "label__name", "split", "metadata", "tools_text", "status")
        .iterator(chunk_size=CHUNK_ROWS)
    ):
        tools = tools_of(tools_text)
        yield formats.ExportRow(messages, label_name, split_name, metadata or {}, tools or [], pk, status_name)


def _rows_with_label_source(examples: QuerySet[Example]) -> Iterator[formats.ExportRow]:
    """_rows with each example's label source (an export with Shikomi fields): the accepted
    weak label's run number, model and confidences come in the same query (two joins that the
    plain export does not make)."""
    tools_of = _StoredTools()
    for (
        pk,
        messages,
        label_name,
        split_name,
        metadata,
        tools_text,
        status_name,
        rule_set,
        accepted_from,
        confidence,
        majority_confidence,
    ) in (
        examples.order_by("pk")
        .annotate(tools_text=Cast("tools", TextField()))
        .values_list(
            "pk",
            "messages",
            "label__name",
            "split",
            "metadata",
            "tools_text",
            "status",
            "weak_label__run__number",
            "weak_label__accepted_from",
            "weak_label__confidence",
            "weak_label__majority_confidence",
        )
        .iterator(chunk_size=CHUNK_ROWS)
    ):
        tools = tools_of(tools_text)
        row = formats.ExportRow(messages, label_name, split_name, metadata or {}, tools or [], pk, status_name)
        row.label_source = label_source_of(label_name, rule_set, accepted_from, confidence, majority_confidence)
        yield row


def label_source_of(
    label_name: str | None,
    rule_set: int | None,
    accepted_from: str | None,
    confidence: float | None,
    majority_confidence: float | None,
) -> dict[str, Any] | None:
    """curation.rules.selectors.label_source from the columns of one row: None without a label,
    a person's label while no weak label is accepted, else the rule set version, the model the
    label was taken from and its confidence (WeakLabel.accepted_confidence)."""
    if label_name is None:
        return None
    if rule_set is None:
        return {"source": PERSON}
    majority = accepted_from == WeakLabel.Source.MAJORITY
    return {
        "source": RULES,
        "rule_set": rule_set,
        "model": accepted_from or None,
        "probability": majority_confidence if majority else confidence,
    }


class _StoredTools:
    """Examples' tools, read as their stored JSON text and decoded once per different text: a
    project's examples mostly repeat one tool list, and the rows that do share one decoded list
    (which the writers only read; openai.write also encodes it once). Decoded as JSONField does
    (text that is not JSON stays text). Bounded like formats.rows.ReadMemo."""

    LIMIT = 256
    TEXT_LIMIT = 1024 * 1024

    def __init__(self) -> None:
        self.decoded: dict[str, Any] = {}
        self.text = 0

    def __call__(self, stored: str | None) -> Any:
        if stored is None:
            return None
        try:
            return self.decoded[stored]
        except KeyError:
            pass
        if len(self.decoded) >= self.LIMIT or self.text + len(stored) > self.TEXT_LIMIT:
            self.decoded.clear()
            self.text = 0
        try:
            value = json.loads(stored)
        except json.JSONDecodeError:
            value = stored
        self.decoded[stored] = value
        self.text += len(stored)
        return value


class _Sink(io.RawIOBase):
    """A write-only stream that hands back what was written since the last take(); not
    seekable, so zipfile writes each member with a data descriptor and never goes back."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _zipped(members: Iterator[tuple[str, Iterator[bytes]]]) -> Iterator[bytes]:
    """A ZIP archive of (name, chunks) members, streamed as it is written."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, chunks in members:
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk)
                    if data := sink.take():
                        yield data
    yield sink.take()


def statuses_clean(status: str | Iterable[str] | None) -> list[str] | None:
    """The statuses an export takes: approved when none is named (DEFAULT_STATUSES); "any"
    for every status (None: no filter); else the statuses named, as a list or as text
    separated by commas."""
    if status is None:
        return list(DEFAULT_STATUSES)
    names = status.split(",") if isinstance(status, str) else [str(s) for s in status]
    names = [n.strip() for n in names if n.strip()]
    if not names:
        return list(DEFAULT_STATUSES)
    if ANY_STATUS in names:
        return None
    for value in names:
        if value not in Example.Status.values:
            raise InvalidExample(
                "status",
                _('unknown status "%(value)s"; expected one or more of %(values)s, or %(any)s')
                % {"value": value, "values": ", ".join(Example.Status.values), "any": ANY_STATUS},
            )
    return sorted(set(names)) or list(DEFAULT_STATUSES)


def _selection(
    project: Project,
    *,
    split: str | None,
    status: str | Iterable[str] | None,
    source: str | None,
    label: str | None,
) -> QuerySet[Example]:
    examples = Example.objects.filter(project=project)
    statuses = statuses_clean(status)
    if statuses is not None:
        examples = examples.filter(status__in=statuses)
    for name, value, choices in (
        ("split", split, Example.Split),
        ("source", source, Example.Source),
    ):
        if not value:
            continue
        if value not in choices.values:
            raise InvalidExample(
                name,
                _('unknown %(field)s "%(value)s"; expected one of %(values)s')
                % {"field": name, "value": value, "values": ", ".join(choices.values)},
            )
        examples = examples.filter(**{name: value})
    if label:
        names = list(project.labels.values_list("name", flat=True))
        if label not in names:
            raise InvalidExample(
                "label",
                _('unknown label "%(label)s"; this project\'s labels are: %(labels)s')
                % {"label": label, "labels": ", ".join(names) or _("none")},
            )
        examples = examples.filter(label__name=label)
    return examples


def _skipped(examples: QuerySet[Example], writer: formats.ExportFormat, classification: bool) -> dict[str, int]:
    """Examples the format cannot hold, per reason: a pass over the selection before the
    export starts (none for a format that holds everything)."""
    if writer.holds is None:
        return {}
    counts: Counter[str] = Counter()
    for messages, tools in examples.values_list("messages", "tools").iterator(chunk_size=CHUNK_ROWS):
        reason = writer.cannot_hold(formats.ExportRow(messages, tools=tools or []), classification=classification)
        if reason is not None:
            counts[reason] += 1
    return dict(counts)


# --- the preview --------------------------------------------------------------------------

PREVIEW_RECORDS = 5
# Rows read to find the first records the format holds.
PREVIEW_READ = 500
# Past this many examples, the examples a format cannot hold are counted on the first ones.
PREVIEW_SCAN = 20_000
PREVIEW_RECORD_CHARS = 2000


@dataclass
class Preview:
    """What an export with these options would write, before it is written: how many examples
    per split and status (``counts``: split → status → n, the statuses not taken included),
    those the format cannot hold, and the first records as they will be written."""

    statuses: list[str] | None  # None: every status
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    total: int = 0  # examples the filters take, before the format's own limits
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_scanned: int = 0  # examples the skipped count looked at (all of them, or PREVIEW_SCAN)
    blocked: str = ""  # why the export would be refused (personal data), else ""
    records: str | None = None  # None: a binary format
    truncated: bool = False  # a record was cut to PREVIEW_RECORD_CHARS

    @property
    def written(self) -> int:
        return self.total - sum(self.skipped.values()) if self.skipped_scanned >= self.total else self.total

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def skipped_partial(self) -> bool:
        return self.skipped_scanned < self.total

    def left_out(self) -> dict[str, int]:
        """Status → examples the status filter leaves out."""
        taken = set(self.statuses) if self.statuses is not None else set(Example.Status.values)
        out: Counter[str] = Counter()
        for by_status in self.counts.values():
            for name, n in by_status.items():
                if name not in taken:
                    out[name] += n
        return dict(out)


def export_preview(
    *,
    project: Project,
    format: str,
    split: str | None = None,
    status: str | Iterable[str] | None = None,
    source: str | None = None,
    label: str | None = None,
    formulas: str | None = None,
    shikomi_fields: bool = False,
) -> Preview:
    """What example_export with the same options would write: counts, what the format cannot
    hold and the first records. Bounded: one count query, at most PREVIEW_SCAN examples read
    for the format's limits and PREVIEW_READ for the records."""
    writer = formats.export_format(format)
    if writer is None:
        raise InvalidExample(
            "format",
            _('unknown export format "%(format)s"; expected one of %(formats)s')
            % {"format": format, "formats": ", ".join(formats.EXPORT_FORMATS)},
        )
    statuses = statuses_clean(status)
    everything = _selection(project, split=split, status=ANY_STATUS, source=source, label=label)
    preview = Preview(statuses)
    for split_name, status_name, n in everything.values_list("split", "status").annotate(n=Count("id")).order_by():
        preview.counts.setdefault(split_name, {})[status_name] = n
        if statuses is None or status_name in statuses:
            preview.total += n
    preview.counts = {s: preview.counts[s] for s in Example.Split.values if s in preview.counts}
    examples = _selection(project, split=split, status=status, source=source, label=label)
    classification = project.kind == Project.Kind.CLASSIFICATION
    if writer.holds is not None and preview.total:
        # The first PREVIEW_SCAN of the selection, by id: those up to the last of them.
        k = min(PREVIEW_SCAN, preview.total)
        last = list(examples.order_by("pk").values_list("pk", flat=True)[k - 1 : k])
        first = examples.filter(pk__lte=last[0]) if last else examples
        preview.skipped = _skipped(first, writer, classification)
        preview.skipped_scanned = min(PREVIEW_SCAN, preview.total)
    else:
        preview.skipped_scanned = preview.total
    if project.block_on_pii and preview.total:
        from curation.quality.services import pii_message, pii_unredacted

        flagged, kinds = pii_unredacted(project, examples)
        if flagged:
            preview.blocked = pii_message(flagged, kinds)
    if writer.extension != "parquet":
        options = {
            "classification": classification,
            "raw_formulas": formulas == "raw",
            "shikomi_fields": shikomi_fields,
        }
        preview.records, preview.truncated = _first_records(examples, writer, classification, options)
    return preview


def _first_records(
    examples: QuerySet[Example], writer: formats.ExportFormat, classification: bool, options: dict[str, bool]
) -> tuple[str, bool]:
    ids = list(examples.order_by("pk").values_list("pk", flat=True)[:PREVIEW_READ])

    def holdable() -> Iterator[formats.ExportRow]:
        n = 0
        for row in _rows(Example.objects.filter(pk__in=ids), options["shikomi_fields"]):
            if writer.cannot_hold(row, classification=classification) is None:
                yield row
                n += 1
                if n == PREVIEW_RECORDS:
                    return

    text = b"".join(writer(holdable(), **options)).decode("utf-8", errors="replace")
    lines, truncated = [], False
    for line in text.splitlines():
        if len(line) > PREVIEW_RECORD_CHARS:
            line = line[:PREVIEW_RECORD_CHARS] + " … " + _("(cut off)")
            truncated = True
        lines.append(line)
    return "\n".join(lines), truncated
