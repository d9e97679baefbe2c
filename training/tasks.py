"""Huey's consumer imports `<app>.tasks` of every app (autodiscovery); importing each feature's
tasks module here registers its tasks (and TrainingConfig.ready imports it, so that the
evaluation answers `run_done` in every process). `model_release` starts each consumer's timer
that gives back idle cached models; `recovery` queues again a run whose worker died."""

from training import model_release
from training.evaluation import tasks as evaluation_tasks
from training.runs import recovery
from training.runs import tasks as runs_tasks

__all__ = ["evaluation_tasks", "model_release", "recovery", "runs_tasks"]
