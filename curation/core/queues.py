"""The two Huey queues (config/settings.py, DJANGO_HUEY) and which work goes to which.

Light work (imports of files and of sources, rules, quality scans, work on remote model servers)
and heavy model work (training, evaluation, generation on a local model) wait in separate queues, each consumed by its
own processes: a training run that holds a worker for hours never delays an import, and an
operator starts the consumers of the heavy queue on the machines with the devices."""

from __future__ import annotations

from typing import Any

LIGHT = "light"
HEAVY = "heavy"


def backend_queue(spec: dict[str, Any] | None) -> str:
    """The queue of work done through a generation backend: a local model (the embedded one or a
    tuned run's) is heavy; a connection to a model server is light (the server does the work)."""
    spec = spec or {}
    if spec.get("kind") == "tuned" or spec.get("connection") in (None, ""):
        return HEAVY
    return LIGHT
