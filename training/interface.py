"""What `curation` may know of `training`: the one module of this app that curation imports.

Curation offers a finished run's model for generating drafts, lists which runs froze the
splits, and counts unfinished evaluations against the project's limits; everything else about
runs stays behind these functions, so training can change without curation noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from curation.models import Project, Work
    from llm.interface import GenerationBackend
    from training.models import TrainingRun


@dataclass(frozen=True)
class RunModel:
    """A training run as a source of a tuned model."""

    pk: int
    number: int
    method: str
    ready: bool  # finished, with its model folder kept (on disk, or in the artifacts storage)


def run_model(project: Project, run_id: object) -> RunModel | None:
    """The training run `run_id` (an id, maybe as text) of `project`, or None when it has no such run."""
    from training.models import TrainingRun

    if not str(run_id or "").isdigit():
        return None
    run = TrainingRun.objects.filter(project=project, pk=int(str(run_id))).first()
    return _run_model(run) if run is not None else None


def _run_model(run: TrainingRun) -> RunModel:
    from training.runs.artifacts import output_available

    return RunModel(pk=run.pk, number=run.number, method=run.method, ready=output_available(run))


def finished_runs(project: Project) -> list[RunModel]:
    """The project's finished runs that saved a model, newest first: the tuned models to offer."""
    from training.models import TrainingRun

    finished = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.DONE).exclude(output_dir="")
    return [_run_model(run) for run in finished.order_by("-number")]


def finished_run_numbers(project: Project) -> list[int]:
    """Numbers of the project's finished training runs (each froze the splits as they were), oldest first."""
    from training.models import TrainingRun

    done = TrainingRun.objects.filter(project=project, status=TrainingRun.Status.DONE).order_by("number")
    return list(done.values_list("number", flat=True))


def tuned_backend(run_id: int) -> GenerationBackend:
    """The generation backend of run `run_id`'s model (check it with `run_model` first); the model
    is fetched from the artifacts storage when the backend first loads it."""
    from training.models import TrainingRun
    from training.runs.backend import TunedBackend

    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    return TunedBackend(run.output_dir, f"tuned:{run.project.slug} run {run.number}")


def open_evaluations(project: Project) -> int:
    """How many of the project's evaluations are queued or running."""
    from training.models import Evaluation

    return Evaluation.objects.filter(run__project=project).exclude(status__in=Evaluation.FINISHED).count()


def training_state(project: Project) -> tuple[bool, dict | None]:
    """Whether the project has any training run, and its newest finished run that no evaluation
    has looked at yet, as {"pk", "number"} (for the dashboard's "what to do next")."""
    from training.models import TrainingRun

    runs = TrainingRun.objects.filter(project=project)
    newest = (
        runs.filter(status=TrainingRun.Status.DONE, evaluations__isnull=True)
        .order_by("-number")
        .values("pk", "number")
        .first()
    )
    return newest is not None or runs.exists(), newest


def background_work() -> tuple[type[Work], ...]:
    """Training's kinds of background work, for `curation.core.background` (leases, queue positions)."""
    from training.models import Evaluation, JudgeJob, TrainingRun

    return (TrainingRun, Evaluation, JudgeJob)
