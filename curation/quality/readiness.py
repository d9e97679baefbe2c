"""The readiness report: one line per thing that makes training data good or bad, each
pass, warn or fail, with the reason and a link to the examples concerned.

Live counts (sizes, splits, balance, drafts, exact leaks) are read now; the rest comes from
the latest quality check, and the report says how many examples changed since it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation.models import DuplicateCluster, Example, Project, QualityScan
from curation.quality import services

PASS, WARN, FAIL = "pass", "warn", "fail"
# Below this many training examples the model mostly memorises noise; LIMA-style results
# come from about a thousand carefully chosen ones.
SMALL_DATA = 200
SMALL_VALIDATION = 20
IMBALANCE_RATIO = 3.0
FEW_PER_LABEL = 10
FACT_SHARE = 0.5
USABLE = ~Q(status__in=[Example.Status.REJECTED, Example.Status.DRAFT])


@dataclass(frozen=True)
class Line:
    key: str
    status: str
    title: str
    detail: str
    link: str = ""


@dataclass(frozen=True)
class Report:
    lines: list[Line]
    scan: QualityScan | None
    changed: int

    @property
    def status(self) -> str:
        statuses = {line.status for line in self.lines}
        return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def examples_link(project: Project, **filters: str) -> str:
    return reverse("example_list", args=[project.slug]) + ("?" + urlencode(filters) if filters else "")


def readiness(project: Project) -> Report:
    scan = services.latest_scan(project)
    checks = services.fresh_checks(scan) if scan else None
    summary = scan.summary if scan else {}
    lines = [
        _size(project),
        _balance(project),
        _splits(project),
        _duplicates(project, scan),
        _leakage(project, scan),
        _pii(project, scan, checks),
        _truncation(project, scan, checks, summary),
        _drafts(project),
        _format(project, scan, checks, summary),
        _facts(project, scan, checks, summary),
    ]
    return Report([line for line in lines if line is not None], scan, services.changed_since(project, scan))


def _not_checked(key: str, title: str, project: Project) -> Line:
    return Line(key, WARN, title, _("Not checked yet: run the quality check."), reverse("quality", args=[project.slug]))


def _train_or_all(project: Project):
    usable = Example.objects.filter(project=project).filter(USABLE)
    train = usable.filter(split=Example.Split.TRAIN)
    return (train, True) if train.exists() else (usable, False)


def _size(project: Project) -> Line:
    examples, is_train = _train_or_all(project)
    n = examples.count()
    title = _("Data size")
    if n == 0:
        return Line("size", FAIL, title, _("No usable examples (not rejected, not draft)."), examples_link(project))
    if is_train:
        counted = ngettext(
            "%(n)s usable example in the training split.", "%(n)s usable examples in the training split.", n
        )
    else:
        counted = ngettext(
            "%(n)s usable example; no training split yet.", "%(n)s usable examples; no training split yet.", n
        )
    counted %= {"n": n}
    if n < SMALL_DATA:
        advice = _(
            "Under a few hundred, a model mostly memorises its examples; a few hundred to a few thousand "
            "carefully checked ones teach a format or a tone well."
        )
        link = examples_link(project, split="train") if is_train else examples_link(project)
        return Line("size", WARN, title, f"{counted} {advice}", link)
    return Line("size", PASS, title, counted)


def _balance(project: Project) -> Line | None:
    if project.kind != Project.Kind.CLASSIFICATION:
        return None
    examples, _is_train = _train_or_all(project)
    names = list(project.labels.values_list("name", flat=True))
    counts = dict.fromkeys(names, 0)
    for name, n in examples.filter(label__isnull=False).values_list("label__name").annotate(n=Count("id")).order_by():
        counts[name] = n
    title = _("Class balance")
    link = reverse("splits", args=[project.slug])
    if not any(counts.values()):
        return Line("balance", WARN, title, _("No example has a label yet."), examples_link(project, label="-"))
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        return Line(
            "balance",
            FAIL,
            title,
            _("No examples for: %(labels)s. The model cannot learn a label it never sees.")
            % {"labels": ", ".join(missing)},
            link,
        )
    most, least = max(counts.values()), min(counts.values())
    few = [name for name, n in counts.items() if n < FEW_PER_LABEL]
    shown = ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    if most / least > IMBALANCE_RATIO or few:
        return Line(
            "balance",
            WARN,
            title,
            _(
                "The largest label has %(ratio).1f times the examples of the smallest (%(shown)s). "
                "Choose oversampling or class weights on the splits page, or label more of the rare ones."
            )
            % {"ratio": most / least, "shown": shown},
            link,
        )
    return Line("balance", PASS, title, shown)


def _splits(project: Project) -> Line:
    sizes = dict(
        Example.objects.filter(project=project).filter(USABLE).values_list("split").annotate(n=Count("id")).order_by()
    )
    train, val, test = (sizes.get(s, 0) for s in (Example.Split.TRAIN, Example.Split.VALIDATION, Example.Split.TEST))
    title = _("Split sizes")
    shown = _("train %(train)s, validation %(val)s, test %(test)s") % {"train": train, "val": val, "test": test}
    link = reverse("splits", args=[project.slug])
    if train == 0:
        return Line("splits", FAIL, title, _("No training split (%(shown)s): assign splits.") % {"shown": shown}, link)
    if val == 0 or test == 0:
        return Line(
            "splits",
            WARN,
            title,
            _(
                "%(shown)s. Without a validation split there is no early stopping; without a test split "
                "the tuned model cannot be evaluated."
            )
            % {"shown": shown},
            link,
        )
    if val < SMALL_VALIDATION:
        return Line(
            "splits",
            WARN,
            title,
            _("%(shown)s. A validation split this small gives a noisy loss.") % {"shown": shown},
            link,
        )
    return Line("splits", PASS, title, shown)


def _duplicates(project: Project, scan: QualityScan | None) -> Line:
    title = _("Duplicates")
    if scan is None:
        return _not_checked("duplicates", title, project)
    open_ = DuplicateCluster.objects.filter(scan=scan, resolved_at__isnull=True)
    clusters = open_.count()
    if clusters:
        examples = sum(open_.values_list("size", flat=True))
        return Line(
            "duplicates",
            WARN,
            title,
            ngettext(
                "%(clusters)s group of duplicates (%(examples)s examples) at similarity %(threshold)s or more. "
                "Duplicates weigh their content more than the rest; keep one of each.",
                "%(clusters)s groups of duplicates (%(examples)s examples) at similarity %(threshold)s or more. "
                "Duplicates weigh their content more than the rest; keep one of each.",
                clusters,
            )
            % {"clusters": clusters, "examples": examples, "threshold": scan.config.get("dedupe_threshold")},
            reverse("quality_duplicates", args=[project.slug]),
        )
    return Line("duplicates", PASS, title, _("No duplicates left."))


def _leakage(project: Project, scan: QualityScan | None) -> Line:
    title = _("Train/test leakage")
    found = services.leaks(project)
    leaking = len({leak.evaluated.pk for leak in found})
    if found:
        return Line(
            "leakage",
            FAIL,
            title,
            ngettext(
                "%(n)s validation or test example duplicates a training example, so its score would "
                "measure memory, not skill. Training cannot start until it is resolved or an admin "
                "overrides it.",
                "%(n)s validation or test examples duplicate a training example, so their scores would "
                "measure memory, not skill. Training cannot start until they are resolved or an admin "
                "overrides it.",
                leaking,
            )
            % {"n": leaking},
            reverse("quality_leakage", args=[project.slug]),
        )
    if scan is None:
        return Line(
            "leakage",
            WARN,
            title,
            _("No exact copies across splits; near copies are not checked yet: run the quality check."),
            reverse("quality", args=[project.slug]),
        )
    return Line("leakage", PASS, title, _("No validation or test example duplicates a training example."))


def _pii(project: Project, scan: QualityScan | None, checks) -> Line:
    title = _("Personal data")
    if scan is None:
        return _not_checked("pii", title, project)
    n = checks.filter(pii_count__gt=0).count()
    if n:
        status = FAIL if project.block_on_pii else WARN
        extra = _(" Export and training are blocked until it is redacted.") if project.block_on_pii else ""
        return Line(
            "pii",
            status,
            title,
            ngettext(
                "%(n)s example holds personal data (e-mail, phone, card numbers, names, ...).",
                "%(n)s examples hold personal data (e-mail, phone, card numbers, names, ...).",
                n,
            )
            % {"n": n}
            + extra,
            reverse("quality_pii", args=[project.slug]),
        )
    return Line("pii", PASS, title, _("No personal data found."))


def _truncation(project: Project, scan: QualityScan | None, checks, summary: dict) -> Line:
    title = _("Length")
    if scan is None:
        return _not_checked("length", title, project)
    lengths = summary.get("lengths", {})
    if "error" in lengths:
        return Line("length", WARN, title, lengths["error"], reverse("quality", args=[project.slug]))
    over_context = checks.filter(over_context=True).count()
    over_limit = checks.filter(truncated=True).count()
    if over_context:
        return Line(
            "length",
            FAIL,
            title,
            ngettext(
                "%(n)s example is longer than the model's context (%(context)s tokens).",
                "%(n)s examples are longer than the model's context (%(context)s tokens).",
                over_context,
            )
            % {"n": over_context, "context": lengths.get("context")},
            examples_link(project, check="over_context"),
        )
    if over_limit:
        return Line(
            "length",
            WARN,
            title,
            ngettext(
                "%(n)s example is longer than the training sequence length (%(limit)s tokens) and "
                "would be truncated: its ending would never be learned.",
                "%(n)s examples are longer than the training sequence length (%(limit)s tokens) and "
                "would be truncated: their endings would never be learned.",
                over_limit,
            )
            % {"n": over_limit, "limit": lengths.get("limit")},
            examples_link(project, check="truncated"),
        )
    return Line(
        "length",
        PASS,
        title,
        _("All examples fit in %(limit)s tokens (longest %(max)s).")
        % {"limit": lengths.get("limit"), "max": lengths.get("max")},
    )


def _drafts(project: Project) -> Line:
    title = _("Unreviewed synthetic drafts")
    n = Example.objects.filter(
        project=project,
        source__in=[Example.Source.SYNTHETIC, Example.Source.AUGMENTED],
        status__in=[Example.Status.DRAFT, Example.Status.NEEDS_REVIEW],
    ).count()
    if n:
        return Line(
            "drafts",
            WARN,
            title,
            ngettext(
                "%(n)s generated example has not been approved by a reviewer; drafts are never trained on.",
                "%(n)s generated examples have not been approved by a reviewer; drafts are never trained on.",
                n,
            )
            % {"n": n},
            examples_link(project, check="drafts"),
        )
    return Line("drafts", PASS, title, _("Every generated example has been reviewed."))


def _format(project: Project, scan: QualityScan | None, checks, summary: dict) -> Line | None:
    title = _("Format")
    if project.kind == Project.Kind.CLASSIFICATION:
        return None
    if scan is None:
        return _not_checked("format", title, project)
    info = summary.get("format", {})
    if info.get("schema_problems"):
        return Line(
            "format",
            FAIL,
            title,
            _("The project's JSON schema is not valid: %(problem)s") % {"problem": info["schema_problems"][0]},
        )
    n = checks.exclude(format_problems=[]).count()
    if n:
        structured = project.kind == Project.Kind.STRUCTURED
        detail = (
            ngettext(
                "%(n)s example has answers that do not parse or do not fit the schema.",
                "%(n)s examples have answers that do not parse or do not fit the schema.",
                n,
            )
            if structured
            else ngettext(
                "%(n)s conversation has roles out of order, empty turns or a different system prompt.",
                "%(n)s conversations have roles out of order, empty turns or a different system prompt.",
                n,
            )
        )
        return Line(
            "format", FAIL if structured else WARN, title, detail % {"n": n}, examples_link(project, check="format")
        )
    return Line("format", PASS, title, _("Every example has the expected shape."))


def _facts(project: Project, scan: QualityScan | None, checks, summary: dict) -> Line | None:
    title = _("Form or facts")
    if project.kind == Project.Kind.CLASSIFICATION:
        return None
    if scan is None:
        return _not_checked("facts", title, project)
    info = summary.get("facts", {})
    share = info.get("share", 0.0)
    if share >= FACT_SHARE:
        return Line(
            "facts",
            WARN,
            title,
            _(
                "%(pct)s%% of the answers carry names, numbers or dates that the prompt does not contain. "
                "Fine-tuning teaches form (tone, format, structure) and is poor at teaching facts: give "
                "the model those facts at question time (retrieval) and fine-tune on how to use them."
            )
            % {"pct": round(100 * share)},
            examples_link(project, check="facts"),
        )
    return Line(
        "facts",
        PASS,
        title,
        _("%(pct)s%% of the answers bring facts absent from their prompt: the data is mostly about form.")
        % {"pct": round(100 * share)},
    )
