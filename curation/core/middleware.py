from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

from curation.models import UserSettings


class UserLanguageMiddleware:
    """Each signed-in person sees the language they chose, on any browser; before signing
    in, Django's LocaleMiddleware follows the browser's Accept-Language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            language = UserSettings.objects.filter(user=user).values_list("language", flat=True).first()
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response
