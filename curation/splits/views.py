"""Assigning splits and choosing the class balance for training (admins)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from curation.core.errors import add_service_error
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.core.services import InvalidExample
from curation.splits.forms import BalanceForm, SplitForm
from curation.splits.services import (
    SPLITS,
    balance_choose,
    balance_preview,
    split_distribution,
    splits_assign,
    splits_preview,
)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def splits(request: ProjectRequest) -> HttpResponse:
    project = request.project
    config = project.split_config or {}
    initial = {
        "seed": config.get("seed", 42),
        "method": config.get("method", "stratified"),
        "group_key": config.get("group_key", ""),
    }
    if ratios := config.get("ratios"):
        initial.update(train=ratios[0], validation=ratios[1], test=ratios[2])
    data = (
        request.POST if request.POST.get("action") == "assign" else (request.GET if "preview" in request.GET else None)
    )
    form = SplitForm(data, initial=initial)
    strategy = request.GET.get("strategy") or project.balance_strategy
    balance_form = BalanceForm(
        request.POST if request.POST.get("action") == "balance" else None, initial={"strategy": strategy}
    )
    preview = None
    if data is not None and form.is_valid():
        try:
            split_request = form.split_request()
            if request.method == "POST":
                moved = splits_assign(project=project, user=request.user, request=split_request)
                messages.success(
                    request, ngettext("%(n)d example moved.", "%(n)d examples moved.", moved) % {"n": moved}
                )
                return redirect("splits", project.slug)
            preview = splits_preview(project=project, request=split_request)
        except InvalidExample as exc:
            add_service_error(form, exc)
        except forms.ValidationError as exc:  # ratios that do not add up
            form.add_error(None, exc)
    if request.POST.get("action") == "balance" and balance_form.is_valid():
        balance_choose(project=project, strategy=balance_form.cleaned_data["strategy"])
        messages.success(request, _("The class balance for training is saved."))
        return redirect("splits", project.slug)
    plan = balance_preview(project=project, strategy=strategy)
    keys = sorted(set(plan.before) | set(plan.after), key=lambda k: (k is None, k or ""))
    return render(
        request,
        "curation/splits/splits.html",
        {
            "project": project,
            "form": form,
            "preview": preview and _preview_rows(preview),
            "current": [
                (split, sum(counter.values()), counter.most_common())
                for split, counter in sorted(split_distribution(project=project).items())
            ],
            "splits": (*SPLITS, "unassigned"),
            "balance_form": balance_form,
            "trained_runs": _trained_runs(project),
            "strategy": strategy,
            "plan_rows": [
                (k or "—", plan.before.get(k, 0), plan.after.get(k, 0), plan.weights.get(k, 1.0)) for k in keys
            ],
        },
    )


def _trained_runs(project) -> list[str]:
    """Numbers of the finished training runs, which froze the splits as they were."""
    from training.interface import finished_run_numbers

    return [str(n) for n in finished_run_numbers(project)]


def _preview_rows(preview: dict) -> dict:
    """Counters as plain rows: templates look up counter["items"] before counter.items()."""
    table = preview["table"]
    labels = sorted({label for counter in table.values() for label in counter})
    return {
        "total": preview["total"],
        "moved": preview["moved"],
        "splits": list(table),
        "rows": [(label, [table[split][label] for split in table]) for label in labels],
        "totals": [sum(counter.values()) for counter in table.values()],
    }
