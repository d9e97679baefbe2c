"""The API of the review queue for examples that need review: GET the next one (with where
its label came from and why it waits), POST a decision on one. Reviewers and admins only.

A bad filter is a 400 naming it; a decision on a version that is not the current one, or on
an example that no longer needs review, is a 409 with the example as it is under "current".
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core import selectors as core_selectors
from curation.core.api import ProjectAPIView
from curation.core.errors import ServiceError
from curation.core.forms import int_or_none
from curation.core.permissions import Action
from curation.core.serializers import ExampleSerializer
from curation.models import Example
from curation.review import example_selectors as selectors
from curation.review import example_services as services
from curation.review.serializers import (
    ExampleReviewDecideSerializer,
    ExampleReviewItemSerializer,
    ExampleReviewResultSerializer,
)


def item_data(example: Example | None, remaining: int) -> dict[str, Any]:
    if example is None:
        return {"example": None, "label_origin": None, "why": [], "remaining": remaining}
    item = selectors.waiting(example)
    return {
        "example": example,
        "label_origin": item.origin.as_dict(),
        "why": item.reasons,
        "remaining": remaining,
    }


class ExampleReviewQueue(ProjectAPIView):
    project_action = Action.REVIEW

    def _filters(self, data: Any) -> dict[str, str]:
        try:
            return selectors.clean_filters(data.get("source"), data.get("label_source"))
        except selectors.FilterError as error:
            raise ServiceError(error.field, error.message) from None

    @extend_schema(
        parameters=[
            OpenApiParameter("source", str, enum=Example.Source.values, description="Only examples of this source."),
            OpenApiParameter(
                "label_source", str, enum=list(selectors.LABEL_SOURCES), description="Only labels from this source."
            ),
            OpenApiParameter("after", int, description="The next one after this example id (to skip one)."),
        ],
        responses=ExampleReviewItemSerializer,
        description="The next example that needs review (imported, labeled by rules, edited after approval), "
        "oldest first, with where its label came from and why it waits; `example` is null when none waits.",
    )
    def get(self, request: Request, slug: str) -> Response:
        filters = self._filters(request.query_params)
        after = request.query_params.get("after")
        if after and int_or_none(after) is None:
            raise ServiceError("after", _("Give an example id (a number)."))
        example = selectors.next_example(self.project, filters, after=int_or_none(after))
        remaining = selectors.waiting_examples(self.project, filters).count()
        return Response(ExampleReviewItemSerializer(item_data(example, remaining)).data)

    @extend_schema(
        request=ExampleReviewDecideSerializer,
        responses={200: ExampleReviewResultSerializer, 409: ExampleSerializer},
        description="Approve (with `label` to relabel it and `messages` to approve your edit) or reject an "
        "example that needs review. Send the version you read: 409 with the example under `current` when it "
        "changed since, or no longer needs review; nothing is changed then.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = ExampleReviewDecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        example = core_selectors.example_get(project=self.project, example_id=d["example"])
        example = services.example_review_decide(
            example=example,
            user=request.user,
            version=d["version"],
            action=d["action"],
            label=d["label"] if "label" in d else services.KEEP,
            messages=d.get("messages"),
        )
        remaining = selectors.waiting_examples(self.project).count()
        return Response(ExampleReviewResultSerializer({"example": example, "remaining": remaining}).data)
