"""crm.formatting.Formatter writes what Django's date filter and number_format write, faster."""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.utils import formats, timezone, translation

from crm.formatting import Formatter, compile_format

MOMENTS = [
    datetime(2026, 12, 3, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 3, 12, 0, tzinfo=UTC),  # noon in UTC
    datetime(2026, 6, 1, 21, 0, tzinfo=UTC),  # midnight in Moscow
    datetime(2026, 6, 1, 9, 0, tzinfo=UTC),  # noon in Moscow
    datetime(2026, 1, 9, 8, 5, 7, tzinfo=UTC),
    datetime(1999, 2, 28, 23, 59, tzinfo=UTC),
] + [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=random.Random(7).randrange(3_000_000) * k) for k in range(1, 200)]


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/New_York", "UTC"])
def test_dates_and_times_as_the_date_filter_writes_them(language, zone):
    with translation.override(language), timezone.override(ZoneInfo(zone)):
        fmt = Formatter()
        for moment in MOMENTS:
            local = timezone.localtime(moment)
            assert fmt.datetime(moment) == date_filter(local, "SHORT_DATETIME_FORMAT"), moment
            assert fmt.date(local.date()) == date_filter(local.date(), "SHORT_DATE_FORMAT"), moment
            # a date-time's date is the reader's (written once per date, then remembered: the same
            # Formatter meets noon and midnight of one day, and both sides of one midnight)
            assert fmt.date(moment) == date_filter(local, "SHORT_DATE_FORMAT"), moment
            assert fmt.date(moment + timedelta(hours=12)) == date_filter(timezone.localtime(moment + timedelta(hours=12)),
                                                                         "SHORT_DATE_FORMAT"), moment
        assert fmt.datetime(None) == "" and fmt.date(None) == ""


@pytest.mark.parametrize("fmt", ["d.m.Y H:i", "m/d/Y P", "j n y G:i:s", "g:i A", "h a f", r"\d\a\y: d", "N j, Y, P", "D, d M Y"])
@pytest.mark.parametrize("language", ["ru", "en"])
def test_any_format_string_matches_django(fmt, language):
    """Characters without a fast version (D, M, N) are handed to Django: the output is the same."""
    from django.utils import dateformat

    with translation.override(language):
        render = compile_format(fmt)
        for moment in MOMENTS:
            naive = moment.replace(tzinfo=None)
            assert render(naive) == dateformat.format(naive, fmt)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_numbers_and_labels(language):
    with translation.override(language):
        fmt = Formatter()
        for value in (Decimal("1234567.49"), Decimal("0"), 999, Decimal("1000.5")):
            assert fmt.number(value, 0) == formats.number_format(value, 0, use_l10n=True, force_grouping=True)
        from clients.labels import label

        assert fmt.label("channel", "telegram") == label("channel", "telegram")
        assert fmt.label("country", "RU") == label("country", "RU")
        assert fmt.label("country", "") == "" and fmt.label("channel", "unknown") == "unknown"


def test_a_date_is_not_moved_by_the_zone():
    with timezone.override(ZoneInfo("Pacific/Kiritimati")), translation.override("ru"):
        assert Formatter().date(date(2026, 3, 8)) == "08.03.2026"
