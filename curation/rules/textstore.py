"""The examples as rules read them, a chunk at a time, with their texts from the rule-text store.

Each example's texts (user, assistant, both; width-folded, and as written where folding changes
them) are built once from its messages and kept in ``RuleText`` with the content hash they were
built from. A run or a preview reads them beside the example's id, metadata and label, and
rebuilds only those of examples that are new or whose content changed since (the hashes
differ): after the first run, no messages are read at all. Writes elsewhere need do nothing.

Filling the store is the only write here; it is a cache, so a run that fails after filling it
has still written no result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from curation.models import Example, Project
from curation.models.rule_texts import RuleText
from curation.rules.engine import Corpus, example_texts, stored_corpus

CHUNK = 5000
# RuleText's text fields in the order of engine.example_texts.
TEXT_FIELDS = ("user", "assistant", "both", "user_written", "assistant_written", "both_written")
# Read per example: id, label, weak label, content hash, the stored texts' hash, the texts
# (then the metadata, when a rule reads it: decoding it costs more than applying most rules).
_FIELDS = (
    "pk",
    "label_id",
    "weak_label_id",
    "content_hash",
    "rule_text__content_hash",
    *(f"rule_text__{name}" for name in TEXT_FIELDS),
)
_TEXTS = slice(5, 5 + len(TEXT_FIELDS))
_GONE = ("", "", "", None, None, None)  # an example deleted while its chunk was read


@dataclass
class Chunk:
    corpus: Corpus
    gold: list[int | None]  # the label id a person gave each example, None where none

    def __len__(self) -> int:
        return len(self.corpus)


def chunks(project: Project, *, limit: int | None = None, with_metadata: bool = True) -> Iterator[Chunk]:
    """The project's examples in id order, ``CHUNK`` at a time (the first ``limit`` only, if
    given); without their metadata unless ``with_metadata`` (a rule reads it)."""
    fields = (*_FIELDS, "metadata") if with_metadata else _FIELDS
    last, left = 0, limit
    while left is None or left > 0:
        size = CHUNK if left is None else min(CHUNK, left)
        examples = Example.objects.filter(project=project, pk__gt=last).order_by("pk")
        rows = list(examples.values_list(*fields)[:size])
        if not rows:
            return
        texts = [row[_TEXTS] for row in rows]
        stale = {row[0]: i for i, row in enumerate(rows) if row[4] != row[3]}
        if stale:
            built = _build(project, list(stale))
            for pk, i in stale.items():
                texts[i] = built.get(pk, _GONE)
        metadata = [row[-1] if isinstance(row[-1], dict) else {} for row in rows] if with_metadata else []
        yield Chunk(
            stored_corpus(texts, metadata, [row[0] for row in rows]),
            # A label accepted from the rules is not evidence about the rules.
            [row[1] if row[2] is None else None for row in rows],
        )
        last = rows[-1][0]
        if left is not None:
            left -= len(rows)


def _build(project: Project, ids: list[int]) -> dict[int, tuple[str | None, ...]]:
    """Build and store the texts of these examples (ascending ids) from their messages as they
    are now."""
    examples = Example.objects.filter(project=project)
    # Most of a chunk (the first run): its id range, which costs the database less than a list.
    wanted = set(ids)
    if len(ids) > CHUNK // 10:
        examples = examples.filter(pk__gte=ids[0], pk__lte=ids[-1])
    else:
        examples = examples.filter(pk__in=ids)
    built: dict[int, tuple[str | None, ...]] = {}
    params = []
    for pk, messages, digest in examples.values_list("pk", "messages", "content_hash"):
        if pk in wanted:
            built[pk] = example_texts(messages)
            params.append((pk, digest, *built[pk]))
    if params:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(_upsert_sql(), params)
    return built


def _upsert_sql() -> str:
    """Insert or replace rows of RuleText, one prepared statement for all (as the importer
    writes examples: bulk_create would spend more compiling SQL per row than building the
    texts). ON CONFLICT … DO UPDATE is the same on SQLite and PostgreSQL."""
    quote = connection.ops.quote_name
    key = quote(RuleText._meta.pk.column)
    columns = [quote(RuleText._meta.get_field(name).column) for name in ("content_hash", *TEXT_FIELDS)]
    marks = ", ".join(["%s"] * (len(columns) + 1))
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns)
    return (
        f"INSERT INTO {quote(RuleText._meta.db_table)} ({key}, {', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
