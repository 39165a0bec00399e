"""Display labels for choice values, computed once per language.

Model.get_FOO_display() rebuilds its choices (lazy translations included) on every call; a
board of 240 cards spent a third of its time there.
"""

from functools import lru_cache

from django.utils import translation

from crm.countries import COUNTRIES

from .models import Channel, Lifecycle, Priority

_CHOICES = {
    "channel": lambda: Channel.choices,
    "country": lambda: COUNTRIES,
    "priority": lambda: Priority.choices,
    "lifecycle": lambda: Lifecycle.choices,
}


@lru_cache(maxsize=32)
def _table(kind: str, language: str) -> dict[str, str]:
    with translation.override(language):
        return {value: str(label) for value, label in _CHOICES[kind]()}


def label(kind: str, value: str) -> str:
    if not value:
        return ""
    return _table(kind, translation.get_language() or "en").get(value, value)


def labels(kind: str) -> dict[str, str]:
    """The whole table in the active language: for a page that labels many values."""
    return _table(kind, translation.get_language() or "en")
