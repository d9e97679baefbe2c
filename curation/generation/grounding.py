"""Drafts grounded in the project's documents: a template's `{document}` is filled with one
passage of a `SourceDocument` (text/passages.py splits and draws them), and the draft keeps the
passage and its document so that reviewers check the draft against it.

The draw is made once per run of a job, from the seed and the documents there are then; prompt
N takes the N-th passage drawn, so a job run again draws the same passage for a prompt as long
as the documents have not changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from curation.generation import ConfigError
from curation.generation.templates import uses
from curation.models import GenerationJob, Project, PromptTemplate, Source, SourceDocument
from text import passages

PLACEHOLDER = "document"
PASSAGE_CHARS = passages.DEFAULT_SIZE
# Put before the passage in the system message an answer is written under (and the example keeps).
# Not translated: it is part of the training data, which must not change with who ran the job.
CONTEXT_HEADER = "Reference passage:"


@dataclass(frozen=True)
class Grounding:
    """The passage one prompt is grounded in."""

    document_id: int
    passage: str


def document_sources(project: Project) -> list[tuple[int, str]]:
    """(id, name) of the project's sources that hold documents, for the job form."""
    rows = (
        Source.objects.filter(project=project)
        .annotate(n=Count("documents"))
        .filter(n__gt=0)
        .order_by("name", "id")
        .values_list("id", "name")
    )
    return list(rows)


def documents_of(project: Project, sources: Iterable[int] = ()) -> QuerySet[SourceDocument]:
    """The project's documents, or only those of `sources` when some are named."""
    documents = SourceDocument.objects.filter(project=project)
    chosen = list(sources)
    return documents.filter(source_id__in=chosen) if chosen else documents


def sources_clean(project: Project, sources: Any) -> list[int]:
    """The source ids a job draws its passages from (empty: all of the project's); ConfigError
    names one that is not a source of this project."""
    cleaned: list[int] = []
    for raw in sources or []:
        try:
            cleaned.append(int(raw))
        except (TypeError, ValueError):
            raise ConfigError("sources", _("%(value)r is not a source id.") % {"value": raw}) from None
    cleaned = list(dict.fromkeys(cleaned))
    known = set(Source.objects.filter(project=project, pk__in=cleaned).values_list("pk", flat=True))
    if missing := [pk for pk in cleaned if pk not in known]:
        raise ConfigError("sources", _("No such sources in this project: %(ids)s") % {"ids": missing})
    return cleaned


def grounding_check(*, project: Project, template: PromptTemplate, sources: list[int]) -> None:
    """Refuse a job whose template asks for `{document}` where there is no document to draw from."""
    if not uses(template.text, PLACEHOLDER):
        return
    if documents_of(project, sources).exists():
        return
    if sources:
        message = _(
            "The template %(name)s uses {document}, but the chosen sources hold no documents. Choose other "
            "sources, or leave them all unchosen to draw from every document of the project."
        )
    else:
        message = _(
            "The template %(name)s uses {document}, but this project has no documents yet. Add a documents or "
            "web pages source first, or take {document} out of the template."
        )
    raise ConfigError("template", message % {"name": template.name})


def job_groundings(job: GenerationJob) -> list[Grounding] | None:
    """The passage of each of the job's prompts (by prompt number), or None when its template
    does not ask for `{document}`. ConfigError when there is nothing (any more) to draw from."""
    template = job.template
    if template is None or not uses(template.text, PLACEHOLDER):
        return None
    cfg = job.config or {}
    size = int(cfg.get("passage_chars") or PASSAGE_CHARS)
    documents = documents_of(job.project, cfg.get("sources") or []).order_by("id")
    # Counting splits every document once; only the drawn documents' passages are kept.
    counts = [(pk, len(passages.split(text, size))) for pk, text in documents.values_list("id", "text").iterator()]
    slots = passages.draw_slots(counts, int(cfg.get("count") or 0), cfg.get("seed", 0))
    if not slots:
        raise ConfigError(
            "template", _("The template uses {document}, but there are no documents with text to draw from.")
        )
    wanted = {pk for pk, _index in slots}
    texts = dict(SourceDocument.objects.filter(pk__in=wanted).values_list("id", "text"))
    split_up = {pk: passages.split(text, size) for pk, text in texts.items()}
    return [Grounding(pk, split_up[pk][index]) for pk, index in slots]
