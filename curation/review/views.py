"""The review queue for drafts in the browser (approve, edit, reject, skip, or rank the
candidates of one prompt) and the preference pairs those decisions yield, with their
JSONL download for TRL's DPO trainer.

Every decision is a plain POST followed by a redirect to the queue; the services in
curation/review/services.py do the work and refuse stale or doubled decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Max
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from curation.core.errors import flash_service_error
from curation.core.forms import int_or_none
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.core.services import InvalidExample
from curation.generation import ConfigError
from curation.generation.checks import flag_message
from curation.generation.templates import TASK_TYPES
from curation.io.exports import SKIPPED_HEADER, skipped_header, skipped_text
from curation.models import Draft, GenerationJob, PreferencePair, Project
from curation.review import services as review

PAIRS_PER_PAGE = 50

FIELD_NAMES: dict[str, Any] = {
    "reasons": gettext_lazy("Reasons"),
    "note": gettext_lazy("Note"),
    "messages": gettext_lazy("Messages"),
    "label": gettext_lazy("Label"),
    "order": gettext_lazy("Ranking"),
    "versions": gettext_lazy("Version"),
    "version": gettext_lazy("Version"),
    "action": gettext_lazy("Action"),
}

PAIR_FORMAT_LABELS: dict[str, Any] = {
    "conversational": gettext_lazy("Conversational: lists of messages (TRL applies the model's chat template)"),
    "standard": gettext_lazy("Standard: plain text (the prompt is the last user message)"),
}


# --- reading drafts for the page -----------------------------------------------------------


@dataclass
class Turn:
    """One message as the review pages show it: its text, and the reasoning and tool calls
    around it, so that a turn that only calls a tool does not look empty."""

    role: str
    content: str
    by_model: bool = False
    reasoning: str = ""
    calls: list[str] = field(default_factory=list)
    answers: str = ""  # on a tool result: the id of the call it answers


def _call_text(call: Any) -> str:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return str(call)
    arguments = function.get("arguments")
    return f"{function.get('name') or '?'}({arguments if isinstance(arguments, str) else arguments or ''})"


def turn_of(message: Any, *, by_model: bool = False) -> Turn:
    if not isinstance(message, dict):
        return Turn("", str(message or ""), by_model)
    calls = message.get("tool_calls")
    return Turn(
        role=str(message.get("role") or ""),
        content=str(message.get("content") or ""),
        by_model=by_model,
        reasoning=str(message.get("reasoning") or ""),
        calls=[_call_text(call) for call in calls] if isinstance(calls, list) else [],
        answers=str(message.get("tool_call_id") or ""),
    )


@dataclass
class Card:
    """One draft as the queue shows it: its conversation (the earlier turns are the context of
    the model's message), what the model wrote, its flags."""

    draft: Draft
    turns: list[Turn]
    answer: str
    answer_role: str
    user_text: str | None
    answer_turn: Turn | None = None
    flags: list[dict[str, str]] = field(default_factory=list)


def _user_index(messages: list[dict[str, Any]], target: int) -> int | None:
    """The user message the model's message answers; None when the model wrote the user message."""
    if 0 <= target < len(messages) and messages[target].get("role") == "user":
        return None
    for index in range(min(target, len(messages)) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    return None


def _card(draft: Draft) -> Card:
    messages = draft.example.messages
    target = draft.target
    turns = [turn_of(m, by_model=i == target) for i, m in enumerate(messages)]
    in_range = 0 <= target < len(messages)
    user = _user_index(messages, target)
    return Card(
        draft=draft,
        turns=turns,
        answer=turns[target].content if in_range else "",
        answer_role=turns[target].role if in_range else "",
        user_text=turns[user].content if user is not None else None,
        answer_turn=turns[target] if in_range else None,
        flags=[{"code": str(f.get("code") or ""), "message": flag_message(f)} for f in draft.flags or []],
    )


PASSAGE_SHOWN = 600  # a longer passage shows its start, and the rest on request


def _context_of(draft: Draft) -> dict[str, Any]:
    """Where a draft came from: job, template version, backend, topic and task type, and the
    passage of a document it was grounded in."""
    metadata = draft.example.metadata or {}
    task_type = str(metadata.get("task_type") or "")
    document = draft.document
    location = document.location if document else ""
    return {
        "job": draft.job,
        "template": draft.template,
        "backend": metadata.get("backend") or draft.job.backend,
        "topic": metadata.get("topic") or "",
        "task_type": TASK_TYPES.get(task_type, task_type),
        "passage": draft.passage,
        "passage_long": len(draft.passage) > PASSAGE_SHOWN,
        "passage_start": draft.passage[:PASSAGE_SHOWN],
        "document": document,
        # Only a web address is a link; anything else (a file's name) is shown as text.
        "document_url": location if location.lower().startswith(("https://", "http://")) else "",
    }


def _job_filter(request: ProjectRequest, project: Project) -> GenerationJob | None:
    raw = request.GET.get("job") or request.POST.get("job")
    if not raw:
        return None
    job_id = int_or_none(raw)
    if job_id is None:
        raise Http404(_("No such generation job."))
    return get_object_or_404(GenerationJob, pk=job_id, project=project)


def _group_end(project: Project, example_id: int | None) -> int | None:
    """The last draft id of the prompt whose draft is example `example_id`: skipping a prompt
    skips all of its candidates."""
    if example_id is None:
        return None
    draft = Draft.objects.filter(project=project, example_id=example_id).values("job_id", "group").first()
    if draft is None:
        return None
    return Draft.objects.filter(job_id=draft["job_id"], group=draft["group"]).aggregate(end=Max("id"))["end"]


def _queue_url(project: Project, job_id: int | None = None, after: int | None = None) -> str:
    query = {key: value for key, value in (("job", job_id), ("after", after)) if value}
    url = reverse("review_queue", args=[project.slug])
    return f"{url}?{urlencode(query)}" if query else url


def _position_of(project: Project, draft: Draft, job_id: int | None) -> str:
    """The queue URL that shows `draft`'s prompt again: after the draft made just before it."""
    first = Draft.objects.filter(job_id=draft.job_id, group=draft.group).order_by("id").first()
    before = (
        Draft.objects.filter(job_id=draft.job_id, id__lt=first.pk if first else draft.pk)
        .order_by("-id")
        .values_list("example_id", flat=True)
        .first()
    )
    return _queue_url(project, job_id, before)


# --- the queue -----------------------------------------------------------------------------


@require_GET
@project_view(Action.REVIEW)
def review_queue(request: ProjectRequest) -> HttpResponse:
    project = request.project
    job = _job_filter(request, project)
    after = int_or_none(request.GET.get("after"))
    group = review.next_group(project, job=job, after=_group_end(project, after))
    cards = [_card(draft) for draft in group]
    first = group[0] if group else None
    is_classification = project.kind == Project.Kind.CLASSIFICATION
    waiting = review.pending_drafts(project).count()
    waiting_in_job = review.pending_drafts(project, job=job).count() if job else None
    ctx: dict[str, Any] = {
        "project": project,
        "title": _("Review drafts"),
        "job": job,
        "after": after,
        "waiting": waiting,
        "waiting_in_job": waiting_in_job,
        "remaining": waiting if waiting_in_job is None else waiting_in_job,
        "cards": cards,
        "card": cards[0] if len(cards) == 1 else None,
        "ranking": len(cards) >= 2,
        "first": first,
        "origin": _context_of(first) if first else None,
        # What the candidates share: the conversation before the model's message.
        "prompt_turns": cards[0].turns[: first.target] if first else [],
        "labels": list(project.labels.order_by("name")) if is_classification else [],
        "reasons": [(code, label, str(n)) for n, (code, label) in enumerate(review.REJECT_REASONS.items(), start=1)],
        "skip_url": _queue_url(project, job.pk if job else None, first.example_id) if first else "",
    }
    return render(request, "curation/review/queue.html", ctx)


def _edited_messages(draft: Draft, post: Any) -> list[dict[str, Any]] | None:
    """The example's messages with the posted user message and model's message put in;
    None when the form sent neither (a plain approve)."""
    if "answer" not in post and "user" not in post:
        return None
    edited = [dict(m) for m in draft.example.messages]
    if "answer" in post and 0 <= draft.target < len(edited):
        edited[draft.target]["content"] = _posted_text(edited[draft.target].get("content"), post["answer"])
    user = _user_index(edited, draft.target)
    if "user" in post and user is not None:
        edited[user]["content"] = _posted_text(edited[user].get("content"), post["user"])
    return edited


def _posted_text(stored: Any, posted: str) -> Any:
    """Browsers send a textarea's line breaks as CRLF: text that differs from the stored one
    only in that is the stored text, so an untouched answer is not counted as an edit."""
    posted = posted.replace("\r\n", "\n")
    return stored if posted == str(stored or "").replace("\r\n", "\n") else posted


@require_POST
@project_view(Action.REVIEW)
def draft_decide(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    draft = get_object_or_404(
        Draft.objects.select_related("example", "example__project", "job"), project=project, example_id=example_id
    )
    job = _job_filter(request, project)
    job_id = job.pk if job else None
    version = int_or_none(request.POST.get("version"))
    action = request.POST.get("action")
    try:
        if version is None:
            raise ConfigError("version", _("The form did not say which version of the example you saw; reload."))
        if action == "approve":
            label = request.POST["label"] if "label" in request.POST else None
            draft = review.draft_approve(
                draft=draft,
                user=request.user,
                version=version,
                messages=_edited_messages(draft, request.POST),
                label=label,
                note=request.POST.get("note", ""),
            )
        elif action == "reject":
            draft = review.draft_reject(
                draft=draft,
                user=request.user,
                version=version,
                reasons=request.POST.getlist("reasons"),
                note=request.POST.get("note", ""),
            )
        else:
            raise ConfigError("action", _("Choose approve or reject."))
    except review.ReviewConflict as conflict:
        flash_service_error(request, conflict)
        return redirect(_queue_url(project, job_id))
    except (ConfigError, InvalidExample) as error:
        flash_service_error(request, error, FIELD_NAMES)
        return redirect(_position_of(project, draft, job_id))
    if draft.decision == Draft.Decision.REJECTED:
        messages.success(request, _("Rejected."))
    elif draft.decision == Draft.Decision.EDITED:
        if PreferencePair.objects.filter(example_id=draft.example_id, origin=PreferencePair.Origin.EDIT).exists():
            messages.success(request, _("Edited and approved: a preference pair was recorded."))
        else:
            messages.success(request, _("Edited and approved."))
    else:
        messages.success(request, _("Approved."))
    return redirect(_queue_url(project, job_id))


def _posted_order(post: Any) -> tuple[list[int], dict[int, int]]:
    order: list[int] = []
    for raw in post.getlist("order"):
        value = int_or_none(raw)
        if value is None:
            raise ConfigError("order", _("%(value)r is not an example id.") % {"value": raw})
        order.append(value)
    versions = {pk: v for pk in order if (v := int_or_none(post.get(f"version_{pk}"))) is not None}
    return order, versions


def _reject_all(
    project: Project, user: Any, order: list[int], versions: dict[int, int], reasons: list[str], note: str
) -> int:
    """Reject every candidate of a prompt with the same reasons, all or none."""
    found = {
        d.example_id: d
        for d in Draft.objects.select_related("example", "example__project").filter(
            project=project, example_id__in=order
        )
    }
    if not order:
        raise ConfigError("order", _("No candidates were sent."))
    if missing := [pk for pk in order if pk not in found]:
        raise ConfigError("order", _("No such drafts in this project: %(ids)s") % {"ids": missing})
    with transaction.atomic():
        for pk in order:
            if pk not in versions:
                raise ConfigError("versions", _("The version of example %(id)s is missing.") % {"id": pk})
            review.draft_reject(draft=found[pk], user=user, version=versions[pk], reasons=reasons, note=note)
    return len(order)


@require_POST
@project_view(Action.REVIEW)
def drafts_rank(request: ProjectRequest) -> HttpResponse:
    project = request.project
    job = _job_filter(request, project)
    job_id = job.pk if job else None
    note = request.POST.get("note", "")
    none_good_enough = bool(request.POST.get("none_good_enough"))
    order: list[int] = []
    try:
        order, versions = _posted_order(request.POST)
        if request.POST.get("reject_all"):
            count = _reject_all(project, request.user, order, versions, request.POST.getlist("reasons"), note)
            messages.success(
                request, ngettext("Rejected %(n)s candidate.", "Rejected all %(n)s candidates.", count) % {"n": count}
            )
            return redirect(_queue_url(project, job_id))
        review.drafts_rank(
            project=project,
            user=request.user,
            order=order,
            versions=versions,
            note=note,
            none_good_enough=none_good_enough,
        )
    except review.ReviewConflict as conflict:
        flash_service_error(request, conflict)
        return redirect(_queue_url(project, job_id))
    except (ConfigError, InvalidExample) as error:
        flash_service_error(request, error, FIELD_NAMES)
        draft = Draft.objects.filter(project=project, example_id__in=order[:1]).first()
        return redirect(_position_of(project, draft, job_id) if draft else _queue_url(project, job_id))
    # The candidates were pending until now, so every ranking pair on them is from this ranking.
    pairs = PreferencePair.objects.filter(
        project=project, example_id__in=order, origin=PreferencePair.Origin.RANKING
    ).count()
    if none_good_enough:
        messages.success(
            request,
            ngettext(
                "Ranking saved without approving any candidate: %(n)s preference pair was recorded.",
                "Ranking saved without approving any candidate: %(n)s preference pairs were recorded.",
                pairs,
            )
            % {"n": pairs},
        )
        return redirect(_queue_url(project, job_id))
    messages.success(
        request,
        ngettext(
            "Ranking saved: the first became the example, and %(n)s preference pair was recorded.",
            "Ranking saved: the first became the example, and %(n)s preference pairs were recorded.",
            pairs,
        )
        % {"n": pairs},
    )
    return redirect(_queue_url(project, job_id))


# --- preference pairs ----------------------------------------------------------------------


def _last_user_text(prompt: list[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in reversed(prompt or []) if m.get("role") == "user"), "")


@require_GET
@project_view(Action.EXPORT)
def preference_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    pairs = PreferencePair.objects.filter(project=project)
    by_origin = {row["origin"]: row["n"] for row in pairs.order_by().values("origin").annotate(n=Count("id"))}
    counts = [(label, by_origin.get(origin, 0)) for origin, label in PreferencePair.Origin.choices]
    page = Paginator(pairs.select_related("created_by").order_by("-id"), PAIRS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    ctx = {
        "project": project,
        "title": _("Preference pairs"),
        "total": sum(by_origin.values()),
        "counts": counts,
        "page": page,
        "rows": [(pair, _last_user_text(pair.prompt), turn_of(pair.chosen), turn_of(pair.rejected)) for pair in page],
        "formats": [
            (name, PAIR_FORMAT_LABELS.get(name, name), skipped_text(review.preferences_skipped(project, format=name)))
            for name in review.PAIR_FORMATS
        ],
    }
    return render(request, "curation/review/preferences.html", ctx)


@require_GET
@project_view(Action.EXPORT)
def preference_export(request: ProjectRequest) -> HttpResponse:
    project = request.project
    chosen = request.GET.get("format") or "conversational"
    if chosen not in review.PAIR_FORMATS:
        return HttpResponseBadRequest(
            _("format: unknown format %(format)r; choose one of %(formats)s.")
            % {"format": chosen, "formats": ", ".join(review.PAIR_FORMATS)},
            content_type="text/plain; charset=utf-8",
        )
    skipped = review.preferences_skipped(project, format=chosen)
    response = StreamingHttpResponse(
        review.preferences_jsonl(project, format=chosen), content_type="application/jsonl; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, f"{project.slug}-preferences.jsonl")
    if skipped:
        response[SKIPPED_HEADER] = skipped_header(skipped)
    return response
