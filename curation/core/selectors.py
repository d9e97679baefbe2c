"""Reads that are more than one line."""

from __future__ import annotations

import re

from django.shortcuts import get_object_or_404

from curation.models import Example, Project

FILTERS = ("split", "status", "source", "label")


BROWSE_FILTERS = (
    *FILTERS,
    "q",
    "annotator",
    "disagreement",
    "check",
    "meta_key",
    "meta_value",
    "label_source",
    "sort",
)


SORTS = {
    "id": "id",
    "-id": "-id",
    "updated": "updated_at",
    "-updated": "-updated_at",
    "label": "label__name",
    "status": "status",
    "split": "split",
    "-annotations": "-annotation_count",
}


METADATA_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


# The label's provenance needs the run's number and the weak label's confidence, not the
# run's snapshot and analysis or the votes: those can be large.
PROVENANCE_DEFER = (
    "weak_label__votes",
    "weak_label__probabilities",
    "weak_label__run__rules",
    "weak_label__run__analysis",
    "weak_label__run__metrics",
)


def example_get(*, project: Project, example_id: int) -> Example:
    """An example of this project, or 404: an id from another project is never found."""
    return get_object_or_404(
        Example.objects.select_related("label", "project", "import_job"), pk=example_id, project=project
    )
