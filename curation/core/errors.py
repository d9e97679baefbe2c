"""What the services refuse, and how the API and the pages say so.

A service raises a ``ServiceError`` (or a subclass named for its feature) naming the field to
correct and the HTTP status it amounts to. The API turns it into an answer in one place,
``exception_handler`` (settings REST_FRAMEWORK["EXCEPTION_HANDLER"]); pages put it on their
form with ``add_service_error`` or show it as a message with ``flash_service_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from rest_framework.response import Response


class ServiceError(ValueError):
    """A request a service refuses: ``field`` names what to correct ("" for the request as a
    whole), ``status`` is the HTTP answer (400; 409 for a conflict, 404 for something missing).
    ``current`` is, for a conflict, the object as it is now: the API sends it back."""

    status = 400
    current: Any = None

    def __init__(self, field: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        if status is not None:
            self.status = status

    def data(self) -> dict[str, Any]:
        """The API's answer: {field: [message]} as DRF's validation errors, else {"detail": message}."""
        if self.status == 400 and self.field:
            # A backend choice's parts (backend_connection, backend_run) are the request's own fields.
            return {self.field.removeprefix("backend_"): [self.message]}
        return {"detail": self.message}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus the services' refusals. A conflict's current object is serialized
    by the view (``ProjectAPIView.current_data``)."""
    # Imported here: DRF's views load the authentication classes, whose services raise ServiceError.
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ServiceError):
        body = exc.data()
        view = context.get("view")
        if exc.current is not None and hasattr(view, "current_data"):
            body["current"] = view.current_data(exc.current)
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)


def add_form_error(form: forms.BaseForm, field: str, message: str) -> None:
    """An error on the form field a service named, or above the form when the form does not show
    that field. A form whose fields are named otherwise maps them in its ``field_for``."""
    field_for = getattr(form, "field_for", None)
    if field_for is not None:
        name = field_for(field)
    else:
        name = "backend" if field.startswith("backend_") else field  # a backend choice is one field
        if name not in form.fields or form.fields[name].widget.is_hidden:
            name = None
    form.add_error(name, message)


def add_service_error(form: forms.BaseForm, error: ServiceError) -> None:
    add_form_error(form, error.field, error.message)


def flash_service_error(request: HttpRequest, error: ServiceError, names: Mapping[str, Any] | None = None) -> None:
    """The refusal as an error message for the next page: after the field's name where the page
    names its fields (``names``), else the message alone."""
    name = (names or {}).get(error.field)
    text = _("%(field)s: %(message)s") % {"field": name, "message": error.message} if name else error.message
    messages.error(request, text)
