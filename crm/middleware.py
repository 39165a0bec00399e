from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone, translation
from django.utils.functional import SimpleLazyObject


class UserLanguageMiddleware:
    """Activate the signed-in user's interface language (Russian by default) and time zone.

    The user is read here for every request anyway, so `request.user` is set to the user itself in
    place of AuthenticationMiddleware's lazy proxy: every attribute read through the proxy costs a
    Python-level __getattribute__, and a board asks the user ~300 times (the gate's answers, the
    layout, the templates)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if type(user) is SimpleLazyObject:
            user.is_authenticated  # noqa: B018 (reads the user)
            request.user = user = user._wrapped
        if user is not None and user.is_authenticated:
            language = user.language
            try:
                timezone.activate(ZoneInfo(user.time_zone))
            except (ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            language = translation.get_language_from_request(request) or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = self.get_response(request)
        finally:
            # Nothing of this user's language or zone outlives their request in this thread.
            translation.deactivate()
            timezone.deactivate()
        response.headers.setdefault("Content-Language", language)
        return response
