"""Dates, date-times and numbers for many rows at once (a table page, an export of 100,000 rows).

Django's `formats.date_format` looks the format up, the language and the time zone on every call
(about 60 µs a date-time): an export spent a quarter of its time there. A `Formatter` reads the
reader's language, time zone and formats once, and compiles each format string into a list of
small functions, so a value costs a few µs. What it prints is exactly what Django's date filter
prints (tests compare the two over many values in every language we ship).
"""

from collections.abc import Callable
from datetime import date, datetime

from django.utils import dateformat, formats, numberformat, timezone
from django.utils.translation import gettext

Piece = Callable[[datetime], str] | str


def _hour12(value) -> int:
    return value.hour % 12 or 12


def _by_django(char: str) -> Callable[[datetime], str]:
    return lambda value: dateformat.format(value, char)


def _compile(fmt: str) -> list[Piece]:
    """Django's format characters as functions of a date(-time); literal text kept as text. A
    character without a fast version here is formatted by Django itself."""
    # Django's own words, from Django's catalogues as django.utils.dateformat reads them (called
    # through an alias so that makemessages leaves them out of ours).
    django_words = gettext
    am, pm = django_words("a.m."), django_words("p.m.")
    am_cap, pm_cap = django_words("AM"), django_words("PM")
    noon, midnight = django_words("noon"), django_words("midnight")

    def f(value) -> str:  # "1", "1:30": minutes only when not zero
        return f"{_hour12(value)}:{value.minute:02d}" if value.minute else str(_hour12(value))

    def a(value) -> str:
        return pm if value.hour > 11 else am

    def p_(value) -> str:
        if value.minute == 0 and value.hour == 0:
            return midnight
        if value.minute == 0 and value.hour == 12:
            return noon
        return f"{f(value)} {a(value)}"

    fast: dict[str, Callable] = {
        "d": lambda v: f"{v.day:02d}", "j": lambda v: str(v.day),
        "m": lambda v: f"{v.month:02d}", "n": lambda v: str(v.month),
        "Y": lambda v: f"{v.year:04d}", "y": lambda v: f"{v.year % 100:02d}",
        "H": lambda v: f"{v.hour:02d}", "G": lambda v: str(v.hour),
        "h": lambda v: f"{_hour12(v):02d}", "g": lambda v: str(_hour12(v)),
        "i": lambda v: f"{v.minute:02d}", "s": lambda v: f"{v.second:02d}",
        "a": a, "A": lambda v: pm_cap if v.hour > 11 else am_cap, "f": f, "P": p_,
    }
    pieces: list[Piece] = []
    escaped = False
    for char in fmt:
        if escaped:
            pieces.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in fast:
            pieces.append(fast[char])
        elif char.isalpha():
            pieces.append(_by_django(char))
        else:
            pieces.append(char)
    # Neighbouring literal characters joined into one piece.
    joined: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and joined and isinstance(joined[-1], str):
            joined[-1] += piece
        else:
            joined.append(piece)
    return joined


# Format characters that are a date(-time)'s attribute as str.format writes it: a format made only
# of these (Russian "d.m.Y H:i") becomes one str.format call, about a third of the pieces' time.
_AS_FORMAT = {"d": "{0.day:02d}", "j": "{0.day}", "m": "{0.month:02d}", "n": "{0.month}", "Y": "{0.year:04d}",
              "H": "{0.hour:02d}", "G": "{0.hour}", "i": "{0.minute:02d}", "s": "{0.second:02d}"}


def _as_format(fmt: str) -> str | None:
    """`fmt` as a str.format template of its value, or None when a character is not in _AS_FORMAT."""
    parts, escaped = [], False
    for char in fmt:
        if escaped or not char.isalpha() and char != "\\":
            parts.append(char.replace("{", "{{").replace("}", "}}"))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _AS_FORMAT:
            parts.append(_AS_FORMAT[char])
        else:
            return None
    return "".join(parts)


def compile_format(fmt: str) -> Callable[[date], str]:
    template = _as_format(fmt)
    if template is not None:
        return template.format
    pieces = _compile(fmt)

    def render(value) -> str:
        return "".join([piece if isinstance(piece, str) else piece(value) for piece in pieces])

    return render


class Formatter:
    """The active language's and time zone's way of writing values, for many rows. Make one per
    page or export, inside the reader's `translation.override` / `timezone.override`."""

    def __init__(self) -> None:
        self.zone = timezone.get_current_timezone()
        self._date = compile_format(formats.get_format("SHORT_DATE_FORMAT"))
        self._datetime = compile_format(formats.get_format("SHORT_DATETIME_FORMAT"))
        self.decimal = formats.get_format("DECIMAL_SEPARATOR")
        self.separator = formats.get_format("THOUSAND_SEPARATOR")
        self.grouping = formats.get_format("NUMBER_GROUPING")
        self._labels: dict[str, dict[str, str]] = {}
        self._dates: dict[date, str] = {}

    def date(self, value: date | None) -> str:
        """A date (or a date-time's date), as the date filter's SHORT_DATE_FORMAT writes it."""
        if not value:
            return ""
        if isinstance(value, datetime):
            value = (value.astimezone(self.zone) if timezone.is_aware(value) else value).date()
        text = self._dates.get(value)
        if text is None:  # a page's cards and rows share a few dates: each is written once
            text = self._dates[value] = self._date(value)
        return text

    def datetime(self, value: datetime | None) -> str:
        """In the reader's time zone, as SHORT_DATETIME_FORMAT writes it."""
        if not value:
            return ""
        return self._datetime(value.astimezone(self.zone) if timezone.is_aware(value) else value)

    def label(self, kind: str, value: str) -> str:
        """A choice's label (clients.labels: channel, country, priority, lifecycle)."""
        if not value:
            return ""
        table = self._labels.get(kind)
        if table is None:
            from clients.labels import labels

            table = self._labels[kind] = labels(kind)
        return table.get(value, value)

    def number(self, value, decimal_pos: int | None = None) -> str:
        """As formats.number_format(value, decimal_pos, force_grouping=True) writes it."""
        return numberformat.format(value, self.decimal, decimal_pos, self.grouping, self.separator,
                                   force_grouping=True, use_l10n=True)
