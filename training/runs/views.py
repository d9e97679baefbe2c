"""Training runs in the browser: the list, the launch form with its presets, a run's page
with live progress and loss curves, cancel and resume, the adapter download, and two runs
side by side. The services in training/runs/services.py do the work; these views only show it."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.core.errors import add_form_error, add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.core.polling import render_polled
from curation.models import Example, PreferencePair, Project
from curation.quality.gates import LaunchBlocked
from training.engine.config import METHODS, PRESETS, REASONING, ConfigInvalid
from training.models import TrainingRun
from training.runs.artifacts import output_folder
from training.runs.forms import (
    ADAPTER_METHODS,
    CONFIG_FIELDS,
    DEFAULT_PRESET,
    FIELD_LABELS,
    SCHEDULER_LABELS,
    RunForm,
    applies,
    balance_choices,
    field_help,
)
from training.runs.serializers import can_resume, has_artifact, log_tail, parse_after, points_payload
from training.runs.services import (
    COUNTED_STATUSES,
    SMALL_TRAIN,
    TrainingRefused,
    status_counts,
    training_run_cancel,
    uses_status,
)
from training.runs.tasks import run_progress, training_run_create, training_run_resume

RUNS_PER_PAGE = 50
POINTS_SHOWN = 12  # the table of the last points, for browsers without JavaScript
# Weights are dense: compressing them costs time and saves nothing.
STORED_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".gguf"}
ARCHIVE_IN_MEMORY = 32 * 1024 * 1024


# --- how numbers read --------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}
    return _("%(s)d s") % {"s": secs}


def loss_text(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"


def setting_text(name: str, value: Any) -> str:
    """A configuration value as the pages show it."""
    if value is None:
        return "—"
    if name == "base_model":
        return value or _("embedded SmolLM2-135M-Instruct")
    if name == "method":
        return str(METHODS.get(value, value))
    if name == "reasoning":
        return str(REASONING.get(value, value))
    if name == "lr_scheduler":
        return str(SCHEDULER_LABELS.get(value, value))
    if name == "balance":
        return str(dict(balance_choices()).get(value, value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class RunRow:
    """One run as the list shows it: the hyperparameters that tell runs apart."""

    run: TrainingRun
    method: str
    base_model: str
    rank_alpha: str
    learning_rate: str
    batch: str
    length: str
    seq_length: str
    data: str
    train_loss: str
    val_loss: str
    duration: str


def run_row(run: TrainingRun) -> RunRow:
    c = run.config or {}
    batch, accumulation = c.get("batch_size", 1), c.get("gradient_accumulation", 1)
    if c.get("max_steps"):
        length = ngettext("%(n)s step", "%(n)s steps", c["max_steps"]) % {"n": c["max_steps"]}
    else:
        epochs = c.get("epochs", 1)
        length = ngettext("%(n)s epoch", "%(n)s epochs", 1 if epochs == 1 else 2) % {"n": f"{epochs:g}"}
    if run.method == "dpo":
        data = ngettext("%(n)s pair", "%(n)s pairs", run.preference_count) % {"n": run.preference_count}
    else:
        data = f"{run.train_count} / {run.validation_count}"
    duration = run.duration
    return RunRow(
        run=run,
        method=setting_text("method", run.method),
        base_model=setting_text("base_model", run.base_model),
        rank_alpha=f"{c.get('lora_rank')} / {c.get('lora_alpha')}" if run.method in ADAPTER_METHODS else "—",
        learning_rate=setting_text("", c.get("learning_rate")),
        batch=f"{batch} × {accumulation} = {batch * accumulation}",
        length=length,
        seq_length=setting_text("", c.get("max_seq_length")),
        data=data,
        train_loss=loss_text((run.result or {}).get("final_train_loss")),
        val_loss=loss_text((run.result or {}).get("final_val_loss")),
        duration=duration_text(duration.total_seconds() if duration is not None else None),
    )


def progress_rows(run: TrainingRun) -> list[tuple[str, str]]:
    """The latest step's numbers, labelled, for the run page."""
    p = run.progress or {}
    number = lambda key, fmt: fmt.format(p[key]) if isinstance(p.get(key), (int, float)) else "—"  # noqa: E731
    return [
        (_("Step"), f"{run.step} / {run.total_steps or '—'}"),
        (_("Epoch"), number("epoch", "{:.2f}")),
        (_("Train loss"), loss_text(p.get("train_loss"))),
        (_("Validation loss"), loss_text(p.get("val_loss"))),
        (_("Learning rate"), number("learning_rate", "{:.2e}")),
        (_("Tokens per second"), number("tokens_per_second", "{:.0f}")),
        (_("Tokens seen"), number("tokens_seen", "{:.0f}")),
        (_("Time left (estimate)"), duration_text(p.get("eta_seconds")) if not run.finished else "—"),
        (_("Device"), run.device or "—"),
    ]


def result_rows(run: TrainingRun) -> list[tuple[str, str]]:
    r = run.result or {}
    if not r:
        return []
    hows = {"done": _("done"), "early_stopped": _("stopped early"), "cancelled": _("cancelled")}
    return [
        (_("Ended"), str(hows.get(r.get("how"), r.get("how") or "—"))),
        (_("Final train loss"), loss_text(r.get("final_train_loss"))),
        (_("Final validation loss"), loss_text(r.get("final_val_loss"))),
        (_("Best validation loss"), loss_text(r.get("best_val_loss"))),
        (_("Tokens trained"), str(r.get("tokens", "—"))),
        (_("Training time"), duration_text(r.get("seconds"))),
        *_resource_rows(r),
    ]


def _resource_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Where the run trained: its processes and devices, precision, peak memory, best step."""
    rows: list[tuple[str, str]] = []
    if devices := r.get("devices"):
        rows.append((_("Processes"), f"{len(devices)} ({', '.join(map(str, devices))})"))
    if precision := r.get("precision"):
        rows.append((_("Mixed precision"), {"no": _("none (float32)")}.get(precision, precision)))
    if peak := r.get("peak_memory_bytes"):
        where = _("GPU, allocated") if r.get("peak_memory_kind") == "cuda_allocated" else _("resident set")
        rows.append((_("Peak memory"), f"{filesizeformat(peak)} ({where})"))
    if r.get("best_step"):
        rows.append((_("Best step (validation)"), str(r["best_step"])))
    return rows


def config_rows(run: TrainingRun) -> list[tuple[str, str, str]]:
    """(label, value, help) for every setting that applies to the run's method, in the
    TrainConfig order: the stored config holds every setting, those of other methods at
    their defaults, which say nothing about this run."""
    c = run.config or {}
    return [
        (str(FIELD_LABELS[name]), setting_text(name, c.get(name)), str(field_help(name)))
        for name in CONFIG_FIELDS
        if applies(name, run.method)
    ]


def get_run(project: Project, run_id: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("created_by"), pk=run_id, project=project)


# --- pages -------------------------------------------------------------------------------


@require_GET
@project_view(Action.VIEW)
def run_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    runs = TrainingRun.objects.filter(project=project).select_related("created_by").order_by("-number")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "training/runs/list.html",
        {
            "project": project,
            "page": page,
            "rows": [run_row(run) for run in page],
            "allowed": allowed_actions(request.role),
            "title": _("Training runs"),
        },
    )


@dataclass
class StatusRow:
    """One status on the launch page: how many examples of it each split holds, and whether
    the run would take them."""

    status: str
    label: str
    train: int
    validation: int
    used: bool


def data_counts(project: Project, *, approved_only: bool) -> dict[str, Any]:
    """What the launch page says the run would take: examples per status and split, and the
    totals used with the option as chosen."""
    counts = status_counts(project)
    labels = dict(Example.Status.choices)
    rows = [
        StatusRow(
            status=status,
            label=str(labels[status]),
            train=counts[Example.Split.TRAIN][status],
            validation=counts[Example.Split.VALIDATION][status],
            used=uses_status(status, approved_only=approved_only),
        )
        for status in COUNTED_STATUSES
    ]
    train = sum(row.train for row in rows if row.used)
    unreviewed = sum(row.train + row.validation for row in rows if row.status == Example.Status.NEEDS_REVIEW)
    return {
        "approved_only": approved_only,
        "status_rows": rows,
        "train_count": train,
        "validation_count": sum(row.validation for row in rows if row.used),
        "all_train": sum(row.train for row in rows),
        "unreviewed": unreviewed,
        "small_train": 0 < train < SMALL_TRAIN,
    }


def _checked(value: str | None) -> bool:
    return (value or "").lower() in ("on", "true", "1", "yes")


@require_http_methods(["GET", "POST"])
@project_view(Action.LAUNCH_TRAINING)
def run_new(request: ProjectRequest) -> HttpResponse:
    """The launch form, prefilled from a preset (?preset=); a launch the quality gates block
    shows each blocker, and the leakage one can be overridden with a reason."""
    project = request.project
    if request.method == "GET" and request.GET.get("counts"):
        # The count table alone, as the "only approved" option changes (htmx sends it when ticked).
        ctx = {"project": project, **data_counts(project, approved_only=_checked(request.GET.get("approved_only")))}
        return render(request, "training/runs/new.html#data-counts", ctx)
    blockers = []
    if request.method == "POST":
        form = RunForm(request.POST, project=project, preset=request.POST.get("preset") or None)
        if form.is_valid():
            d = form.cleaned_data
            try:
                run = training_run_create(
                    project=project,
                    user=request.user,
                    config=form.config(),
                    preset=d["preset"] or None,
                    override_leakage=d["override_leakage"],
                    override_reason=d["override_reason"],
                    approved_only=d["approved_only"],
                )
            except ConfigInvalid as invalid:
                for field, message in invalid.errors.items():
                    add_form_error(form, field, message)
            except TrainingRefused as refused:
                add_service_error(form, refused)
            except LaunchBlocked as blocked:
                blockers = blocked.blockers
            else:
                messages.success(request, _("Training run %(n)s is queued.") % {"n": run.number})
                return redirect("run_detail", project.slug, run.pk)
        preset = request.POST.get("preset") or ""
    else:
        preset = request.GET.get("preset") or DEFAULT_PRESET
        if preset not in PRESETS:
            messages.error(request, _("There is no preset %(name)s; showing the quick CPU demo.") % {"name": preset})
            preset = DEFAULT_PRESET
        form = RunForm(project=project, preset=preset)
    return render(
        request,
        "training/runs/new.html",
        {
            "project": project,
            "form": form,
            "presets": [(key, label) for key, (label, _values) in PRESETS.items()],
            "preset": preset,
            "blockers": blockers,
            "overridable": any(b.overridable for b in blockers),
            "pair_count": PreferencePair.objects.filter(project=project).count(),
            "title": _("New training run"),
            **data_counts(project, approved_only=bool(form["approved_only"].value())),
        },
    )


@require_GET
@project_view(Action.VIEW)
def run_detail(request: ProjectRequest, run_id: int) -> HttpResponse:
    """The run's page; with htmx, only its status part (polled every 2 s until the run ends)."""
    project = request.project
    run = get_run(project, run_id)
    ctx = {
        "project": project,
        "run": run,
        "progress": progress_rows(run),
        "run_progress": run_progress(run),
        "result": result_rows(run),
        "log": log_tail(run),
        "resumable": can_resume(run),
        "downloadable": has_artifact(run),
        "allowed": allowed_actions(request.role),
        "title": _("Training run %(n)s") % {"n": run.number},
    }

    def page_context() -> dict[str, Any]:
        points = list(run.points.order_by("-step")[:POINTS_SHOWN])[::-1]
        return {
            "config": config_rows(run),
            "points": [(p.step, f"{p.epoch:.2f}", loss_text(p.train_loss), loss_text(p.val_loss)) for p in points],
            "row": run_row(run),
        }

    return render_polled(
        request, "training/runs/detail.html", "run-status", ctx, finished=run.finished, page_context=page_context
    )


@require_GET
@project_view(Action.VIEW)
def run_points(request: ProjectRequest, run_id: int) -> HttpResponse:
    """The loss curve points after step ?after= as JSON, for the chart."""
    run = get_run(request.project, run_id)
    try:
        after = parse_after(request.GET.get("after"))
    except ValueError as error:
        return JsonResponse({"after": [str(error)]}, status=400)
    return JsonResponse(points_payload(run, after))


@require_POST
@project_view(Action.LAUNCH_TRAINING)
def run_action(request: ProjectRequest, run_id: int) -> HttpResponse:
    project = request.project
    run = get_run(project, run_id)
    action = request.POST.get("action")
    if action == "cancel":
        if run.finished:
            messages.error(request, _("This run has already ended."))
        else:
            training_run_cancel(run=run)
            messages.success(request, _("The run stops after its current step; its last checkpoint is kept."))
    elif action == "resume":
        try:
            training_run_resume(run=run)
        except TrainingRefused as refused:
            flash_service_error(request, refused)
        else:
            messages.success(request, _("The run continues from its last checkpoint."))
    else:
        messages.error(request, _("Choose cancel or resume."))
    return redirect("run_detail", project.slug, run.pk)


def artifact_response(run: TrainingRun, project: Project) -> FileResponse | None:
    """The run's output folder (adapter or weights, tokenizer, shikomi_run.json) as a zip
    with one top folder, or None when the run has no output. Built in a spooled temporary
    file, so full weights go to disk instead of memory."""
    if not has_artifact(run):
        return None
    folder = output_folder(run)  # downloaded from the object storage when it is not here
    name = f"{project.slug}-run-{run.number}"
    archive = tempfile.SpooledTemporaryFile(max_size=ARCHIVE_IN_MEMORY)
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                compression = zipfile.ZIP_STORED if path.suffix in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                zipped.write(path, f"{name}/{path.relative_to(folder).as_posix()}", compress_type=compression)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"{name}.zip", content_type="application/zip")


def no_artifact_message() -> str:
    return _("This run has no trained output to download: only a run that finished has one.")


@require_GET
@project_view(Action.EXPORT)
def run_artifact(request: ProjectRequest, run_id: int) -> HttpResponse:
    project = request.project
    run = get_run(project, run_id)
    response = artifact_response(run, project)
    if response is None:
        context = {"project": project, "run": run, "message": no_artifact_message(), "title": _("No output")}
        return render(request, "training/runs/no_artifact.html", context, status=404)
    return response


def _compare_ids(request: ProjectRequest) -> tuple[str, str] | None:
    """?a=&b= (links), or two ?run= (the list's checkboxes, which work without JavaScript)."""
    a, b = request.GET.get("a"), request.GET.get("b")
    if a and b:
        return a, b
    chosen = request.GET.getlist("run")
    if len(chosen) == 2:
        return chosen[0], chosen[1]
    return None


@require_GET
@project_view(Action.VIEW)
def run_compare(request: ProjectRequest) -> HttpResponse:
    """Two runs' settings side by side, the differing ones marked, with their results and curves."""
    project = request.project
    runs = TrainingRun.objects.filter(project=project).select_related("created_by").order_by("-number")
    ids = _compare_ids(request)
    error = ""
    if ids is None:
        if request.GET.get("a") or request.GET.get("b") or request.GET.getlist("run"):
            error = _("Choose exactly two runs to compare.")
    elif not all(i.isdigit() for i in ids):
        error = _("Give two run ids.")
    if ids is None or error:
        context = {"project": project, "runs": runs, "error": error, "title": _("Compare training runs")}
        return render(request, "training/runs/compare.html", context, status=400 if error else 200)
    a, b = (get_run(project, int(i)) for i in ids)
    rows = []
    for name in CONFIG_FIELDS:
        if not (applies(name, a.method) or applies(name, b.method)):
            continue
        va = (a.config or {}).get(name) if applies(name, a.method) else None
        vb = (b.config or {}).get(name) if applies(name, b.method) else None
        rows.append((str(FIELD_LABELS[name]), setting_text(name, va), setting_text(name, vb), va != vb))
    ra, rb = run_row(a), run_row(b)
    results = [
        (_("Status"), a.get_status_display(), b.get_status_display()),
        (
            _("Training / validation examples"),
            f"{a.train_count} / {a.validation_count}",
            f"{b.train_count} / {b.validation_count}",
        ),
        (_("Preference pairs"), str(a.preference_count), str(b.preference_count)),
        (_("Steps"), f"{a.step} / {a.total_steps}", f"{b.step} / {b.total_steps}"),
        (_("Final train loss"), ra.train_loss, rb.train_loss),
        (_("Final validation loss"), ra.val_loss, rb.val_loss),
        (
            _("Best validation loss"),
            loss_text((a.result or {}).get("best_val_loss")),
            loss_text((b.result or {}).get("best_val_loss")),
        ),
        (_("Duration"), ra.duration, rb.duration),
        (_("Device"), a.device or "—", b.device or "—"),
    ]
    context = {
        "project": project,
        "runs": runs,
        "a": a,
        "b": b,
        "rows": rows,
        "results": results,
        "title": _("Compare training runs"),
    }
    return render(request, "training/runs/compare.html", context)
