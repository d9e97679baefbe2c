"""Quality gates in the browser: the readiness report, the quality check and its settings,
duplicate groups, leaks between splits, and personal data with its redaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from curation.core.errors import flash_service_error
from curation.core.history import text_diff
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.core.polling import render_polled
from curation.core.progress import work_progress
from curation.core.services import StaleVersion, example_bulk_update
from curation.models import DuplicateCluster, DuplicatePair, Example, ExampleCheck, FindingDismissal, Project
from curation.quality import dismissals, pii, readiness, tasks
from curation.quality import services as svc

CLUSTERS_PER_PAGE = 20


MEMBERS_SHOWN = 12


PII_PER_PAGE = 25


LEAKS_SHOWN = 500


class QualitySettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "dedupe_threshold",
            "semantic_dedupe",
            "semantic_threshold",
            "base_model",
            "max_seq_length",
            "structured_format",
            "block_on_pii",
        ]


@dataclass(frozen=True)
class HistogramBar:
    x: float
    y: float
    height: float
    width: float
    low: int
    high: int
    count: int
    over: bool


def length_chart(lengths: dict[str, Any], *, width: float = 440, height: float = 120) -> list[HistogramBar]:
    """SVG geometry of the token-length histogram; bins past the sequence length are marked."""
    bins = lengths.get("bins") or []
    if not bins:
        return []
    tallest = max(count for _low, _high, count in bins) or 1
    step = width / len(bins)
    limit = lengths.get("limit") or 0
    return [
        HistogramBar(
            x=round(i * step, 2),
            y=round(height - height * count / tallest, 2),
            height=round(height * count / tallest, 2),
            width=round(max(step - 1, 1), 2),
            low=low,
            high=high,
            count=count,
            over=bool(limit) and low >= limit,
        )
        for i, (low, high, count) in enumerate(bins)
    ]


@require_GET
@project_view(Action.VIEW)
def quality(request: ProjectRequest) -> HttpResponse:
    project = request.project
    current = svc.current_scan(project)
    ctx = {
        "project": project,
        "current": current,
        "stage": svc.STAGE_LABELS.get(current.stage, "") if current else "",
        "scan_progress": work_progress(current) if current else None,
    }

    def page_context() -> dict[str, Any]:
        report = readiness.readiness(project)
        lengths = report.scan.summary.get("lengths", {}) if report.scan else {}
        allowed = allowed_actions(request.role)
        return {
            "report": report,
            "lengths": lengths,
            "chart": length_chart(lengths),
            "form": QualitySettingsForm(instance=project) if allowed["manage_project"] else None,
            "allowed": allowed,
            "title": _("Quality"),
        }

    # The check's end changes the readiness lines too: the whole page reloads then.
    return render_polled(
        request,
        "curation/quality/quality.html",
        "scan-status",
        ctx,
        finished=current is None or current.finished,
        page_context=page_context,
        reload_when_finished=True,
    )


@require_POST
@project_view(Action.MANAGE_PROJECT)
def quality_scan(request: ProjectRequest) -> HttpResponse:
    project = request.project
    try:
        scan = tasks.quality_scan_start(project=project, user=request.user)
    except svc.ScanBusy as exc:
        flash_service_error(request, exc)
    else:
        messages.success(request, _("Quality check %(number)s started.") % {"number": scan.number})
    return redirect("quality", project.slug)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def quality_settings(request: ProjectRequest) -> HttpResponse:
    project = request.project
    form = QualitySettingsForm(request.POST, instance=project)
    if form.is_valid():
        svc.quality_settings_update(project=project, **form.cleaned_data)
        messages.success(request, _("Quality settings saved. Run the check again to apply them."))
        return redirect("quality", project.slug)
    report = readiness.readiness(project)
    lengths = report.scan.summary.get("lengths", {}) if report.scan else {}
    ctx = {
        "project": project,
        "report": report,
        "current": svc.current_scan(project),
        "lengths": lengths,
        "chart": length_chart(lengths),
        "form": form,
        "allowed": allowed_actions(request.role),
        "title": _("Quality"),
    }
    return render(request, "curation/quality/quality.html", ctx, status=400)


def _back(name: str, project: Project, page: str | None, show: str | None = None) -> str:
    """The list the action came from, on the same page (never a URL taken from the request)."""
    page = page if page and page.isdigit() else None
    show = show if show in ("open", "leaks", "all") else None
    url = reverse(name, args=[project.slug])
    query = {k: v for k, v in (("show", show), ("page", page)) if v}
    return f"{url}?{urlencode(query)}" if query else url


def pair_reason(kind: str, similarity: float | None) -> str:
    """Why two examples are listed as duplicates: "exact copy", "similarity 0.97 (MinHash)"."""
    if similarity is None:
        return ""
    if kind == DuplicatePair.Kind.EXACT:
        return _("exact copy")
    if kind == DuplicatePair.Kind.SEMANTIC:
        return _("similarity %(s)s (embeddings, cosine)") % {"s": f"{similarity:.2f}"}
    return _("similarity %(s)s (MinHash of word 3-grams)") % {"s": f"{similarity:.2f}"}


def _member_rows(members: list[Example]) -> list[dict[str, Any]]:
    """Each member with its words that differ from the first member's marked."""
    first = svc.dedupe_text(members[0].messages) if members else ""
    rows = []
    for i, example in enumerate(members):
        text = svc.dedupe_text(example.messages)
        rows.append({"example": example, "diff": [("equal", text)] if i == 0 else text_diff(first, text)})
    return rows


@require_GET
@project_view(Action.VIEW)
def duplicates(request: ProjectRequest) -> HttpResponse:
    project = request.project
    scan = svc.latest_scan(project)
    show = request.GET.get("show", "open")
    clusters = DuplicateCluster.objects.filter(scan=scan) if scan else DuplicateCluster.objects.none()
    if show == "open":
        clusters = clusters.filter(resolved_at__isnull=True)
    elif show == "leaks":
        clusters = clusters.filter(splits__contains=Example.Split.TRAIN).exclude(splits=[Example.Split.TRAIN])
    page = Paginator(clusters.select_related("kept", "resolved_by"), CLUSTERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    ids = [c.pk for c in page.object_list]
    by_cluster: dict[int, list[int]] = {}
    for cluster_id, example_id in (
        ExampleCheck.objects.filter(cluster_id__in=ids).order_by("example_id").values_list("cluster_id", "example_id")
    ):
        by_cluster.setdefault(cluster_id, []).append(example_id)
    # Why each member is in its group: its closest pair in the group, by kind and similarity.
    closest: dict[tuple[int, int], tuple[float, str]] = {}
    for cluster_id, a, b, kind, similarity in DuplicatePair.objects.filter(cluster_id__in=ids).values_list(
        "cluster_id", "a_id", "b_id", "kind", "similarity"
    ):
        for example_id in (a, b):
            if similarity >= closest.get((cluster_id, example_id), (-1.0, ""))[0]:
                closest[(cluster_id, example_id)] = (similarity, kind)
    wanted = [pk for members in by_cluster.values() for pk in members[:MEMBERS_SHOWN]]
    examples = Example.objects.select_related("label").in_bulk(wanted)
    groups = []
    for cluster in page.object_list:
        members = [examples[pk] for pk in by_cluster.get(cluster.pk, [])[:MEMBERS_SHOWN] if pk in examples]
        rows = _member_rows(members)
        for row in rows:
            similarity, kind = closest.get((cluster.pk, row["example"].pk), (None, ""))
            row["reason"] = pair_reason(kind, similarity)
        groups.append(
            {
                "cluster": cluster,
                "rows": rows,
                "hidden": max(0, cluster.size - len(members)),
                "gone": cluster.resolved_at is None and len(members) < min(cluster.size, MEMBERS_SHOWN),
            }
        )
    return render(
        request,
        "curation/quality/duplicates.html",
        {
            "project": project,
            "scan": scan,
            "page": page,
            "groups": groups,
            "show": show,
            "allowed": allowed_actions(request.role),
            "reasons": FindingDismissal.Reason.choices,
            "title": _("Duplicates"),
        },
    )


@require_POST
@project_view(Action.MANAGE_PROJECT)
def duplicate_resolve(request: ProjectRequest, cluster_id: int) -> HttpResponse:
    project = request.project
    cluster = get_object_or_404(DuplicateCluster, pk=cluster_id, scan__project=project)
    merge = request.POST.get("mode") == "merge"
    try:
        keep = int(request.POST.get("keep", ""))
    except ValueError:
        keep = 0
    try:
        kept = svc.cluster_resolve(cluster=cluster, user=request.user, keep=keep, merge=merge)
    except svc.ResolveError as exc:
        flash_service_error(request, exc)
    else:
        removed = cluster.size - 1
        if merge:
            text = ngettext(
                "Merged %(n)s duplicate into example %(id)s.", "Merged %(n)s duplicates into example %(id)s.", removed
            )
        else:
            text = ngettext(
                "Kept example %(id)s and deleted %(n)s duplicate.",
                "Kept example %(id)s and deleted %(n)s duplicates.",
                removed,
            )
        messages.success(request, text % {"n": removed, "id": kept.pk})
    return redirect(_back("quality_duplicates", project, request.POST.get("page"), request.POST.get("show")))


@require_GET
@project_view(Action.VIEW)
def leakage(request: ProjectRequest) -> HttpResponse:
    project = request.project
    found = svc.leaks(project)
    return render(
        request,
        "curation/quality/leakage.html",
        {
            "project": project,
            "leaks": [(leak, pair_reason(leak.kind, leak.similarity)) for leak in found[:LEAKS_SHOWN]],
            "reasons": FindingDismissal.Reason.choices,
            "total": len(found),
            "evaluated": len({leak.evaluated.pk for leak in found}),
            "scan": svc.latest_scan(project),
            "allowed": allowed_actions(request.role),
            "title": _("Train/test leakage"),
        },
    )


@require_POST
@project_view(Action.MANAGE_PROJECT)
def leakage_fix(request: ProjectRequest) -> HttpResponse:
    """Move every leaking validation or test example into the training split."""
    project = request.project
    ids = sorted({leak.evaluated.pk for leak in svc.leaks(project)})
    changed = example_bulk_update(project=project, user=request.user, changes={"split": "train"}, ids=ids)
    messages.success(
        request,
        ngettext("Moved %(n)s example to the training split.", "Moved %(n)s examples to the training split.", changed)
        % {"n": changed},
    )
    return redirect("quality_leakage", project.slug)


def _pii_rows(examples: list[Example], project: Project) -> list[dict[str, Any]]:
    """Found again on the current text: offsets from the scan may be out of date, and the
    scan keeps none of the personal data itself. Each row lists its findings with the reason
    (the kind and how it was found), the dismissed ones marked with who dismissed them."""
    ids = [e.pk for e in examples]
    records = {
        (d.example_id, d.key): d
        for d in dismissals.current(project, FindingDismissal.Kind.PII)
        .filter(example_id__in=ids)
        .select_related("created_by")
    }
    rows = []
    for example in examples:
        turns = []
        findings: dict[str, dict[str, Any]] = {}
        for message in example.messages:
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, str):
                continue
            found = pii.detect(content)
            dismissed = set()
            for f in found:
                key = dismissals.pii_key(f.kind, f.text)
                record = records.get((example.pk, key))
                if record is not None:
                    dismissed.add((f.start, f.end))
                findings.setdefault(
                    key,
                    {
                        "key": key,
                        "kind": f.kind,
                        "label": pii.KIND_LABELS.get(f.kind, f.kind),
                        "how": pii.KIND_HOW.get(f.kind, ""),
                        "text": f.text,
                        "dismissal": record,
                        "times": 0,
                    },
                )["times"] += 1
            segments = [
                (text, kind, kind is not None and (start, start + len(text)) in dismissed)
                for (text, kind), start in _with_starts(pii.highlight(content, found))
            ]
            turns.append({"role": message.get("role"), "segments": segments})
        open_ = [f for f in findings.values() if f["dismissal"] is None]
        rows.append(
            {
                "example": example,
                "turns": turns,
                "findings": list(findings.values()),
                "count": sum(f["times"] for f in open_),
            }
        )
    return rows


def _with_starts(segments: list[tuple[str, str | None]]):
    start = 0
    for text, kind in segments:
        yield (text, kind), start
        start += len(text)


@require_GET
@project_view(Action.VIEW)
def pii_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    scan = svc.latest_scan(project)
    ids = (
        svc.fresh_checks(scan).filter(pii_count__gt=0).order_by("example_id").values_list("example_id", flat=True)
        if scan
        else ExampleCheck.objects.none().values_list("example_id", flat=True)
    )
    page = Paginator(ids, PII_PER_PAGE).get_page(request.GET.get("page"))
    examples = Example.objects.in_bulk(list(page.object_list))
    rows = _pii_rows([examples[pk] for pk in page.object_list if pk in examples], project)
    kinds = scan.summary.get("pii", {}) if scan else {}
    return render(
        request,
        "curation/quality/pii.html",
        {
            "project": project,
            "scan": scan,
            "page": page,
            "rows": rows,
            "kinds": [(k, pii.KIND_LABELS.get(k, k), kinds.get(k, 0)) for k in pii.PiiKind],
            "allowed": allowed_actions(request.role),
            "reasons": FindingDismissal.Reason.choices,
            "dismissed": dismissals.current(project, FindingDismissal.Kind.PII).count(),
            "title": _("Personal data"),
        },
    )


@require_POST
@project_view(Action.EDIT)
def pii_redact(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    example = get_object_or_404(Example, pk=example_id, project=project)
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        version = None
    try:
        n = svc.example_redact(example=example, user=request.user, version=version)
    except StaleVersion:
        messages.error(
            request,
            _("Example %(id)s was changed by someone else since you opened this page; look again and redact.")
            % {"id": example.pk},
        )
    else:
        messages.success(
            request,
            ngettext("Redacted %(n)s item in example %(id)s.", "Redacted %(n)s items in example %(id)s.", n)
            % {"n": n, "id": example.pk},
        )
    return redirect(_back("quality_pii", project, request.POST.get("page")))


@require_POST
@project_view(Action.MANAGE_PROJECT)
def pii_redact_all(request: ProjectRequest) -> HttpResponse:
    project = request.project
    kinds = [k for k in request.POST.getlist("kind") if k in set(pii.PiiKind)]
    if not kinds:
        messages.error(request, _("Choose at least one kind of personal data to redact."))
        return redirect("quality_pii", project.slug)
    changed, replaced = svc.pii_redact_all(project=project, user=request.user, kinds=kinds)
    messages.success(
        request,
        ngettext(
            "Redacted %(items)s items in %(examples)s example; the change is in its history.",
            "Redacted %(items)s items in %(examples)s examples; each change is in the example's history.",
            changed,
        )
        % {"items": replaced, "examples": changed},
    )
    return redirect("quality_pii", project.slug)
