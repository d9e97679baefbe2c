from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from curation.services import InvalidExample


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus our service errors as 400 with the field named."""
    if isinstance(exc, InvalidExample):
        return Response({exc.field: [exc.message]}, status=400)
    return drf_exception_handler(exc, context)
