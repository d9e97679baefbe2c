"""The data card of an export: a README.md in the Hugging Face dataset card format (YAML front
matter, then Markdown) that describes exactly what the export holds.

Every number is counted on the examples the export writes: the export's selection (statuses,
split, source, label) less those its format cannot hold. The card is built in one pass over
those examples, before the first byte of the data is written, like the export's own count of
the examples it leaves out.

Text lengths are counted without a model: each Chinese, Japanese or Korean character is one
token, and so is every other run of characters between spaces (``token_count``). Loading the
project's tokenizer would make an export wait for a model; docs/datasets.md says which count
the card holds, and the quality check's lengths (its own section) are the tokenizer's.

Everything a person typed (names, labels, descriptions, licences, guidelines) is escaped: in
the front matter by the YAML writer, in the Markdown by ``md``, and the guidelines are shown
verbatim inside a code fence longer than any run of backticks they hold.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from curation import formats
from curation.labeling.agreement import krippendorff_alpha
from curation.models import Annotation, Draft, Example, ImportJob, Project, QualityScan, Source
from text.cjk import CJK_CHAR

CHUNK_ROWS = 2000
# The data card's name in an archive or a repository: the Hub shows it as the dataset's page.
CARD_NAME = "README.md"
# Spaces end a token; each CJK character is a token of its own.
_TOKEN = re.compile(rf"{CJK_CHAR.pattern}|(?:(?!{CJK_CHAR.pattern})\S)+")
_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# What a project kind is for, in the Hub's task categories.
TASK_CATEGORIES = {
    Project.Kind.CHAT: ["text-generation"],
    Project.Kind.CLASSIFICATION: ["text-classification"],
    Project.Kind.STRUCTURED: ["text-generation"],
    Project.Kind.STYLE: ["text-generation"],
}
# The Hub's size categories: (upper bound, name).
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)
# A licence the Hub knows by its identifier (cc-by-4.0, mit, apache-2.0, other...).
_LICENCE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


@dataclass
class CardFile:
    """One data file of the export: its path in the archive (or repository) and the split it
    holds (None: every split the selection takes, in one file)."""

    path: str
    split: str | None = None


@dataclass
class CardCounts:
    """What the export writes, counted in one pass (``card_counts``)."""

    total: int = 0
    splits: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    import_jobs: Counter[int] = field(default_factory=Counter)
    tokens: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    left_out: set[int] = field(default_factory=set)  # ids the format cannot hold
    skipped: Counter[str] = field(default_factory=Counter)  # their reasons


def token_count(text: str) -> int:
    """Tokens of ``text`` as the card counts them: each CJK character, and each run of other
    characters between spaces."""
    return len(_TOKEN.findall(text))


def language_of(text: str) -> str:
    """The script-based language of a text: ja (kana), ko (Hangul), zh (Han without kana), en
    (Latin letters), "" (none of these). A guess for the card's ``language`` field only."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if _HAN.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else ""


def _texts(messages: Any) -> list[str]:
    found = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            found.append(content)
        elif isinstance(content, list):
            found.extend(
                part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return found


def card_counts(examples: QuerySet[Example], writer: formats.ExportFormat, *, classification: bool) -> CardCounts:
    """The counts of the examples of ``examples`` that ``writer`` holds."""
    counts = CardCounts()
    rows = (
        examples.order_by("pk")
        .values_list("pk", "messages", "tools", "label__name", "split", "source", "status", "import_job_id")
        .iterator(chunk_size=CHUNK_ROWS)
    )
    for pk, messages, tools, label, split, source, status, job in rows:
        row = formats.ExportRow(messages, label, split, tools=tools or [])
        reason = writer.cannot_hold(row, classification=classification)
        if reason is not None:
            counts.left_out.add(pk)
            counts.skipped[reason] += 1
            continue
        text = "\n".join(_texts(messages))
        counts.total += 1
        counts.splits[split] += 1
        counts.labels[label or ""] += 1
        counts.sources[source] += 1
        counts.statuses[status] += 1
        counts.languages[language_of(text)] += 1
        if job is not None:
            counts.import_jobs[job] += 1
        counts.tokens[split].append(token_count(text))
    return counts


# --- escaping -------------------------------------------------------------------------------


def md(text: Any) -> str:
    """``text`` as literal Markdown inline text (a table cell too): special characters
    backslash-escaped, HTML's < > & as entities, line breaks as spaces."""
    value = " ".join(str(text).split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", value)


def fenced(text: str) -> str:
    """``text`` verbatim in a code fence that nothing inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}markdown\n{text.rstrip()}\n{fence}"


def _table(head: list[str], rows: Iterable[Iterable[Any]]) -> str:
    lines = ["| " + " | ".join(md(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the card -------------------------------------------------------------------------------


@dataclass
class CardContext:
    """What the card says besides the counts: the project, the files, the export's options."""

    project: Project
    format: str
    files: list[CardFile]
    selection: dict[str, Any]  # statuses (None: every status), split, source, label
    skipped: dict[str, int] = field(default_factory=dict)


def card_text(examples: QuerySet[Example], counts: CardCounts, context: CardContext) -> str:
    """The README.md: front matter, then the sections (docs/datasets.md lists them)."""
    sources = _sources(counts)
    sections = [
        _intro(context),
        _structure(context, counts),
        _count_tables(counts),
        _lengths(counts),
        _provenance(counts, sources),
        _quality(context.project, examples, counts),
        _review(context.project, examples, counts),
        _guidelines(context.project),
        _export_options(context),
    ]
    body = "\n\n".join(section for section in sections if section)
    return "---\n" + _front_matter(context, counts, sources) + "---\n\n" + body + "\n"


def _front_matter(context: CardContext, counts: CardCounts, sources: list[tuple[Source, int]]) -> str:
    project = context.project
    licences = sorted({s.licence.strip() for s, _n in sources if s.licence.strip()})
    if not licences:
        licence = "unknown"
    elif len(licences) == 1 and _LICENCE_ID.match(licences[0].lower()):
        licence = licences[0].lower()
    else:
        licence = "other"
    size = next((name for bound, name in SIZE_CATEGORIES if counts.total < bound), "n>10M")
    data_files = [{"split": str(f.split or "train"), "path": f.path} for f in context.files]
    config: dict[str, Any] = {"config_name": "default", "data_files": data_files}
    if context.format == "tsv":
        config["sep"] = "\t"
    meta: dict[str, Any] = {
        "pretty_name": str(project.name),
        "license": licence,
    }
    if licence == "other":
        meta["license_name"] = "; ".join(licences)
    meta |= {
        "language": sorted(lang for lang in counts.languages if lang),
        "task_categories": TASK_CATEGORIES.get(project.kind, ["text-generation"]),
        "size_categories": [size],
        "tags": ["shikomi", str(project.kind), *sorted(str(s) for s in counts.sources)],
        "configs": [config],
    }
    return yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)


def _intro(context: CardContext) -> str:
    project = context.project
    parts = ["# " + md(project.name)]
    if project.description.strip():
        parts.append("\n\n".join(md(p) for p in re.split(r"\n\s*\n", project.description.strip())))
    parts.append(
        _("Exported from the Shikomi project %(slug)s on %(date)s.")
        % {"slug": md(project.slug), "date": timezone.now().strftime("%Y-%m-%d %H:%M UTC")}
    )
    return "\n\n".join(parts)


def _structure(context: CardContext, counts: CardCounts) -> str:
    rows = [
        (f.path, f.split or _("as in each record"), counts.splits.get(f.split, 0) if f.split else counts.total)
        for f in context.files
    ]
    text = [
        "## " + _("Dataset structure"),
        _("Format: %(format)s. Examples: %(total)d.") % {"format": md(context.format), "total": counts.total},
        _table([_("File"), _("Split"), _("Examples")], rows),
    ]
    if len(context.files) == 1 and context.files[0].split is None and len(counts.splits) > 1:
        text.append(
            _(
                "The file holds several splits; the Hub's loader reads it as one (train). Export one file per "
                "split to keep them apart."
            )
        )
    return "\n\n".join(text)


def _count_tables(counts: CardCounts) -> str:
    def rows(counter: Counter[str], names: dict[str, Any]) -> list[tuple[str, int]]:
        return [(str(names.get(k, k)), n) for k, n in sorted(counter.items(), key=lambda item: (-item[1], item[0]))]

    splits = dict(Example.Split.choices)
    return "\n\n".join(
        [
            "## " + _("Examples"),
            "### " + _("By split"),
            _table(
                [_("Split"), _("Examples")],
                [(splits.get(s, s), counts.splits[s]) for s in splits if s in counts.splits],
            ),
            "### " + _("By label"),
            _table([_("Label"), _("Examples")], rows(counts.labels, {"": _("(no label)")})),
            "### " + _("By origin"),
            _table([_("Origin"), _("Examples")], rows(counts.sources, dict(Example.Source.choices))),
            "### " + _("By status"),
            _table([_("Status"), _("Examples")], rows(counts.statuses, dict(Example.Status.choices))),
            "### " + _("By language (guessed from the script)"),
            _table([_("Language"), _("Examples")], rows(counts.languages, {"": _("(none found)")})),
        ]
    )


def percentile(values: list[int], percent: int) -> int:
    """The nearest-rank percentile of sorted ``values`` (one of them, never between two),
    ranked in integers so that 95% of 60 is 57, not 58 through a rounding error."""
    return values[max(1, -(-len(values) * percent // 100)) - 1]


def length_stats(values: list[int]) -> tuple[int, float, int, int]:
    """(min, median, p95, max) of token counts; the median as statistics.median gives it."""
    ordered = sorted(values)
    return ordered[0], statistics.median(ordered), percentile(ordered, 95), ordered[-1]


def _lengths(counts: CardCounts) -> str:
    splits = dict(Example.Split.choices)
    rows = []
    for split in splits:
        values = counts.tokens.get(split)
        if values:
            low, median, p95, high = length_stats(values)
            rows.append((splits[split], len(values), low, f"{median:g}", p95, high))
    return "\n\n".join(
        [
            "## " + _("Text length"),
            _(
                "Tokens of all message contents of an example, counted without a model: each Chinese, Japanese "
                "or Korean character is one token, and so is every other run of characters between spaces. "
                "A model's tokenizer counts differently."
            ),
            _table([_("Split"), _("Examples"), _("Min"), _("Median"), _("95th percentile"), _("Max")], rows),
        ]
    )


def _sources(counts: CardCounts) -> list[tuple[Source, int]]:
    """The sources the exported examples were imported from, with their example counts."""
    jobs = ImportJob.objects.filter(pk__in=list(counts.import_jobs)).select_related("source")
    per_source: Counter[int] = Counter()
    found: dict[int, Source] = {}
    for job in jobs:
        if job.source is not None:
            found[job.source.pk] = job.source
            per_source[job.source.pk] += counts.import_jobs[job.pk]
    return [(found[pk], per_source[pk]) for pk in sorted(found, key=lambda pk: found[pk].name)]


def _provenance(counts: CardCounts, sources: list[tuple[Source, int]]) -> str:
    kinds = dict(Source.Kind.choices)
    text = ["## " + _("Sources and licences")]
    if sources:
        text.append(
            _table(
                [_("Source"), _("Kind"), _("Licence"), _("Description"), _("Examples")],
                [
                    (s.name, kinds.get(s.kind, s.kind), s.licence or _("not given"), s.description or "—", n)
                    for s, n in sources
                ],
            )
        )
    files = ImportJob.objects.filter(pk__in=list(counts.import_jobs), source__isnull=True).order_by("created_at")
    if files:
        text.append("### " + _("Uploaded files"))
        text.append(
            _table(
                [_("File"), _("Format"), _("Imported"), _("Examples")],
                [(j.filename, j.format, j.created_at.strftime("%Y-%m-%d"), counts.import_jobs[j.pk]) for j in files],
            )
        )
    others = counts.total - sum(counts.import_jobs.values())
    if others:
        text.append(
            _("%(n)d examples were written, generated or labelled in Shikomi rather than imported (see By origin).")
            % {"n": others}
        )
    if not sources:
        text.append(_("No source names a licence: the licence is unknown."))
    return "\n\n".join(text)


def _quality(project: Project, examples: QuerySet[Example], counts: CardCounts) -> str:
    from curation.quality.services import fresh_checks, latest_scan, leaks

    text = ["## " + _("Quality checks")]
    scan: QualityScan | None = latest_scan(project)
    if scan is None:
        text.append(_("No quality check has been run on this project."))
        return "\n\n".join(text)
    finished = scan.finished_at.strftime("%Y-%m-%d %H:%M UTC") if scan.finished_at else "—"
    text.append(_("The latest quality check: number %(n)d, finished %(at)s.") % {"n": scan.number, "at": finished})
    found: Counter[str] = Counter()
    checks = fresh_checks(scan).filter(example__in=examples.values("pk"))
    for example_id, pii, cluster, truncated, over, problems, facts in checks.values_list(
        "example_id", "pii_count", "cluster_id", "truncated", "over_context", "format_problems", "brings_facts"
    ):
        if example_id in counts.left_out:
            continue
        found["pii"] += pii > 0
        found["duplicates"] += cluster is not None
        found["length"] += truncated or over
        found["format"] += bool(problems)
        found["facts"] += facts
    names = {
        "pii": _("Personal data"),
        "duplicates": _("Near duplicates"),
        "length": _("Longer than the training length"),
        "format": _("Format problems"),
        "facts": _("Facts not in the system prompt"),
    }
    text.append(_table([_("Finding"), _("Exported examples")], [(names[k], found[k]) for k in names]))
    leaked = leaks(project)
    if leaked:
        exported = set(examples.values_list("pk", flat=True)) - counts.left_out
        leaked = [x for x in leaked if x.evaluated.pk in exported and x.trained.pk in exported]
    gates = [
        (_("Leakage between splits"), _("passed") if not leaked else _("blocked (%(n)d pairs)") % {"n": len(leaked)}),
        (
            _("Personal data"),
            (_("passed") if not found["pii"] else _("blocked")) if project.block_on_pii else _("not enforced"),
        ),
    ]
    text.append(_table([_("Gate"), _("Result")], gates))
    return "\n\n".join(text)


def _review(project: Project, examples: QuerySet[Example], counts: CardCounts) -> str:
    text = ["## " + _("Review process")]
    text.append(_("Annotators asked for per example: %(n)d.") % {"n": project.annotations_per_example})
    by_example: dict[int, dict[int, str]] = defaultdict(dict)
    submitted = Annotation.objects.filter(example__in=examples.values("pk"), status=Annotation.Status.SUBMITTED)
    for example_id, annotator_id, label in submitted.values_list("example_id", "annotator_id", "label__name"):
        if example_id not in counts.left_out:
            by_example[example_id][annotator_id] = label or ""
    spread = Counter(len(a) for a in by_example.values())
    spread[0] = counts.total - len(by_example)
    text.append(
        _table(
            [_("Submitted annotations"), _("Exported examples")],
            [(k, spread[k]) for k in sorted(spread) if spread[k]],
        )
    )
    labelled = {e: {a: lbl for a, lbl in found.items() if lbl} for e, found in by_example.items()}
    alpha = krippendorff_alpha({e: found for e, found in labelled.items() if len(found) >= 2})
    if alpha is not None:
        text.append(_("Agreement on labels (Krippendorff's alpha): %(alpha).3f.") % {"alpha": alpha})
    decisions = dict(Draft.Decision.choices)
    in_export: Counter[str] = Counter()
    for example_id, decision in Draft.objects.filter(example__in=examples.values("pk")).values_list(
        "example_id", "decision"
    ):
        if example_id not in counts.left_out:
            in_export[decision] += 1
    in_project = Counter(Draft.objects.filter(project=project).values_list("decision", flat=True))
    if in_project:
        text.append("### " + _("Generated drafts"))
        text.append(
            _table(
                [_("Decision"), _("In this export"), _("In the project")],
                [(decisions[d], in_export[d], in_project[d]) for d in decisions if in_project[d]],
            )
        )
    return "\n\n".join(text)


def _guidelines(project: Project) -> str:
    if not project.guidelines.strip():
        return ""
    return "\n\n".join(
        [
            "## " + _("Annotation guidelines"),
            _("The project's guidelines as the annotators read them (Markdown source):"),
            fenced(project.guidelines),
        ]
    )


def _export_options(context: CardContext) -> str:
    statuses = context.selection.get("statuses")
    rows = [
        (_("Statuses"), ", ".join(statuses) if statuses is not None else _("every status")),
        (_("Split"), context.selection.get("split") or _("every split")),
        (_("Origin"), context.selection.get("source") or _("every origin")),
        (_("Label"), context.selection.get("label") or _("every label")),
    ]
    skipped = "; ".join(f"{reason} ({n})" for reason, n in sorted(context.skipped.items()))
    if skipped:
        rows.append((_("Left out by the format"), skipped))
    return "\n\n".join(["## " + _("Export options"), _table([_("Option"), _("Value")], rows)])
