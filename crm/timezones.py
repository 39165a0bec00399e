"""Time zones offered in a user's settings (deadlines are shown and entered in the user's zone).

Each zone is shown by its city in the user's language with its current offset, «Москва (UTC+3)»,
Russia's zones first (west to east), then the others.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

RUSSIA = [
    ("Europe/Kaliningrad", pgettext_lazy("time zone", "Kaliningrad")),
    ("Europe/Moscow", pgettext_lazy("time zone", "Moscow")),
    ("Europe/Samara", pgettext_lazy("time zone", "Samara")),
    ("Asia/Yekaterinburg", pgettext_lazy("time zone", "Yekaterinburg")),
    ("Asia/Omsk", pgettext_lazy("time zone", "Omsk")),
    ("Asia/Novosibirsk", pgettext_lazy("time zone", "Novosibirsk")),
    ("Asia/Krasnoyarsk", pgettext_lazy("time zone", "Krasnoyarsk")),
    ("Asia/Irkutsk", pgettext_lazy("time zone", "Irkutsk")),
    ("Asia/Yakutsk", pgettext_lazy("time zone", "Yakutsk")),
    ("Asia/Vladivostok", pgettext_lazy("time zone", "Vladivostok")),
    ("Asia/Magadan", pgettext_lazy("time zone", "Magadan")),
    ("Asia/Kamchatka", pgettext_lazy("time zone", "Kamchatka")),
]
ELSEWHERE = [
    ("Europe/Minsk", pgettext_lazy("time zone", "Minsk")),
    ("Asia/Almaty", pgettext_lazy("time zone", "Almaty")),
    ("Asia/Tashkent", pgettext_lazy("time zone", "Tashkent")),
    ("Asia/Bishkek", pgettext_lazy("time zone", "Bishkek")),
    ("Asia/Tbilisi", pgettext_lazy("time zone", "Tbilisi")),
    ("Asia/Yerevan", pgettext_lazy("time zone", "Yerevan")),
    ("Asia/Baku", pgettext_lazy("time zone", "Baku")),
    ("Europe/Istanbul", pgettext_lazy("time zone", "Istanbul")),
    ("Asia/Dubai", pgettext_lazy("time zone", "Dubai")),
    ("Europe/Berlin", pgettext_lazy("time zone", "Berlin")),
    ("Europe/London", pgettext_lazy("time zone", "London")),
    ("America/New_York", pgettext_lazy("time zone", "New York")),
    ("UTC", pgettext_lazy("time zone", "Universal time")),
]
TIME_ZONES = [zone for zone, _name in RUSSIA + ELSEWHERE]


def utc_offset(zone: str, when: datetime | None = None) -> str:
    """"UTC+3", "UTC-5", "UTC+5:30", "UTC+0": the zone's offset at that moment (summer time included)."""
    offset = (when or timezone.now()).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None  # an aware datetime always has one
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def time_zone_choices(when: datetime | None = None) -> list:
    """The select's choices in the active language: two groups, each zone as «Москва (UTC+3)»."""
    when = when or timezone.now()

    def labelled(zones):
        return [(zone, f"{name} ({utc_offset(zone, when)})") for zone, name in zones]

    def offset(zone):
        return when.astimezone(ZoneInfo(zone)).utcoffset()

    elsewhere = sorted(ELSEWHERE, key=lambda item: (offset(item[0]), str(item[1])))
    return [(_("Russia"), labelled(RUSSIA)), (_("Other countries"), labelled(elsewhere))]
