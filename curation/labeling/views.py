"""The annotators' labeling queue and the reviewers' disagreement queue."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.core.forms import (
    arguments_check,
    editor_context,
    field_in_words,
    int_or_none,
    messages_from_post,
    turn_ratings_from_post,
)
from curation.core.permissions import Action, ProjectRequest, project_view, role_allows
from curation.core.selectors import example_get
from curation.core.serializers import ExampleSerializer
from curation.core.services import InvalidExample, StaleVersion
from curation.labeling import services as svc
from curation.labeling.selectors import keys_in_words, label_suggestion, labels_with_keys, resolution_choices
from curation.models import Annotation, Example, Label


def _answer(request: ProjectRequest) -> dict:
    return {
        "label": request.POST.get("label") or None,
        "messages": messages_from_post(request.POST),
        "rating": int_or_none(request.POST.get("rating")),
        "turn_ratings": turn_ratings_from_post(request.POST),
        "note": request.POST.get("note", ""),
    }


def _check_arguments(example: Example, messages: list[dict] | None) -> None:
    """An edited conversation's calls fit their functions' schemas (an untouched one is not
    refused for what it held already)."""
    if messages and messages != example.messages:
        arguments_check(messages, example.tools)


def _page(request: ProjectRequest, example: Example | None, **extra) -> HttpResponse:
    project = request.project
    annotation = None
    if example is not None:
        annotation = Annotation.objects.filter(example=example, annotator=request.user).select_related("label").first()
    draft = extra.pop("draft", None) or (
        {
            "label": annotation.label.name if annotation and annotation.label_id else None,
            "messages": annotation.messages if annotation and annotation.messages else None,
            "rating": annotation.rating if annotation else None,
            "turn_ratings": annotation.turn_ratings if annotation else {},
            "note": annotation.note if annotation else "",
        }
        if annotation
        else None
    )
    turns = (draft or {}).get("messages") or (example.messages if example else [])
    labels = labels_with_keys(project=project)
    ctx = {
        "project": project,
        "example": example,
        "draft": draft,
        # Only the annotator's own answer is ever chosen; the current label is at most a suggestion.
        "chosen_label": (draft or {}).get("label"),
        "suggestion": label_suggestion(project=project, example=example),
        "labels": labels,
        "key_help": _key_help(labels),
        "remaining": svc.queue_remaining(project=project, user=request.user),
        "remaining_cap": svc.COUNT_CAP,
        "version": extra.pop("version", example.version if example else None),
        "rate_turns": True,
        **editor_context(turns, example.tools if example else [], (draft or {}).get("turn_ratings")),
        **extra,
    }
    if "error" in extra:
        ctx["error_where"] = field_in_words(extra["error"].field)
    return render(request, "curation/labeling/label.html", ctx, status=extra.get("status", 200))


def _key_help(labels: list[Label]) -> str:
    """The page's key help, naming only the label keys that exist."""
    keys = [label.key for label in labels if label.key]
    parts = [_("%(keys)s = label") % {"keys": keys_in_words(keys)}] if keys else []
    parts.append(
        _(
            "Enter = submit (Ctrl+Enter while typing), s = skip, u = undo, g = guidelines, "
            "e = edit the last answer, Esc = leave the text box."
        )
    )
    help_text = _("Keys: %(keys)s") % {"keys": ", ".join(parts)}
    keyless = len(labels) - len(keys)
    if keyless:
        help_text += " " + ngettext(
            "%(n)d label has no key: click it.", "%(n)d labels have no key: click them.", keyless
        ) % {"n": keyless}
    return help_text


@require_GET
@project_view(Action.LABEL)
def label_queue(request: ProjectRequest) -> HttpResponse:
    example = svc.queue_next(project=request.project, user=request.user)
    return _page(request, example)


@require_POST
@project_view(Action.LABEL)
def label_draft(request: ProjectRequest, example_id: int) -> HttpResponse:
    """Autosave: called as the annotator types; answers with a short status line."""
    example = example_get(project=request.project, example_id=example_id)
    svc.annotation_save_draft(
        example=example,
        user=request.user,
        based_on_version=int_or_none(request.POST.get("version")) or example.version,
        **_answer(request),
    )
    return HttpResponse(
        _("Draft saved at %(time)s") % {"time": timezone.localtime().strftime("%H:%M:%S")},
        content_type="text/plain; charset=utf-8",
    )


@require_POST
@project_view(Action.LABEL)
def label_submit(request: ProjectRequest, example_id: int) -> HttpResponse:
    example = example_get(project=request.project, example_id=example_id)
    answer = _answer(request)
    version = int_or_none(request.POST.get("version")) or example.version
    try:
        with transaction.atomic():
            _check_arguments(example, answer["messages"])
            svc.annotation_submit(example=example, user=request.user, based_on_version=version, **answer)
    except StaleVersion as stale:
        # Their text is kept (as a draft and on the page); the other person's change is shown.
        svc.annotation_save_draft(example=example, user=request.user, based_on_version=version, **answer)
        return _page(
            request,
            stale.current,
            draft=answer,
            conflict=ExampleSerializer(stale.current).data,
            version=stale.current.version,
            status=409,
        )
    except InvalidExample as error:
        svc.annotation_save_draft(example=example, user=request.user, based_on_version=version, **answer)
        return _page(request, example, draft=answer, error=error, version=version, status=400)
    return redirect("label_queue", request.project.slug)


@require_POST
@project_view(Action.LABEL)
def label_skip(request: ProjectRequest, example_id: int) -> HttpResponse:
    example = example_get(project=request.project, example_id=example_id)
    svc.annotation_skip(example=example, user=request.user)
    return redirect("label_queue", request.project.slug)


@require_POST
@project_view(Action.LABEL)
def label_undo(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if svc.annotation_undo(project=project, user=request.user) is None:
        flash.info(request, _("There is nothing to undo."))
    return redirect(reverse("label_queue", args=[project.slug]))


@require_GET
@project_view(Action.REVIEW)
def disagreement_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    page = Paginator(svc.disagreement_list(project=project), 50).get_page(request.GET.get("page"))
    try:  # the settings page, where annotations per example is set (admins only)
        settings_url = (
            reverse("project_settings", args=[project.slug])
            if role_allows(request.role, Action.MANAGE_PROJECT)
            else None
        )
    except NoReverseMatch:
        settings_url = None
    ctx = {"project": project, "page": page, "settings_url": settings_url}
    return render(request, "curation/labeling/disagreements.html", ctx)


@require_http_methods(["GET", "POST"])
@project_view(Action.REVIEW)
def disagreement_detail(request: ProjectRequest, example_id: int) -> HttpResponse:
    """Every annotator's answer side by side; the reviewer's choice becomes the gold. The
    majority's label is shown as a suggestion, never chosen: the reviewer picks one (or "no
    label") explicitly."""
    project = request.project
    example = example_get(project=request.project, example_id=example_id)
    answers = list(example.annotations.filter(status=Annotation.Status.SUBMITTED).select_related("annotator", "label"))
    for answer in answers:
        # Shown by turn number, as the editor numbers turns.
        answer.turn_numbers = sorted((int(i) + 1, r) for i, r in (answer.turn_ratings or {}).items() if i.isdigit())
    choices = resolution_choices(project=project, answers=answers)
    ctx = {
        "project": project,
        "example": example,
        "answers": answers,
        **choices,
        "label_keys": keys_in_words([label.key for label in choices["labels"] if label.key]),
        "chosen_label": None,
        "version": example.version,
        **editor_context(example.messages, example.tools),
    }
    if request.method == "POST":
        turns = messages_from_post(request.POST)
        version = int_or_none(request.POST.get("version")) or example.version
        try:
            if "label" not in request.POST:
                raise InvalidExample("label", _("Choose the gold label (or No label): none is chosen for you."))
            _check_arguments(example, turns)
            svc.disagreement_resolve(
                example=example,
                user=request.user,
                version=version,
                label=request.POST.get("label") or None,
                messages=turns or None,
            )
        except StaleVersion as stale:
            ctx.update(
                conflict=ExampleSerializer(stale.current).data,
                version=stale.current.version,
                chosen_label=request.POST.get("label"),
                **editor_context(turns, example.tools),
            )
            return render(request, "curation/labeling/disagreement.html", ctx, status=409)
        except InvalidExample as error:
            ctx.update(
                error=error,
                error_where=field_in_words(error.field),
                chosen_label=request.POST.get("label"),
                **editor_context(turns, example.tools),
            )
            return render(request, "curation/labeling/disagreement.html", ctx, status=400)
        flash.success(request, _("Example %(n)d resolved.") % {"n": example.pk})
        following = svc.disagreement_list(project=project).first()
        if following is not None:
            return redirect("disagreement_detail", project.slug, following.pk)
        return redirect("disagreement_list", project.slug)
    return render(request, "curation/labeling/disagreement.html", ctx)
