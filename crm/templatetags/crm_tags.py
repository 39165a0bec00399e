import re

from django import template
from django.utils.html import escape, format_html
from django.utils.html import urlize as django_urlize
from django.utils.safestring import mark_safe

register = template.Library()
MENTION = re.compile(r"(?<![\w@/])@([\w.+-]{1,150})")


@register.filter(needs_autoescape=True)
def comment_html(text, autoescape=True):
    """A comment, escaped; links (http/https, www.) clickable with rel=nofollow; @mentions marked.

    Everything is escaped first: only the anchors and spans built here are markup."""
    linked = django_urlize(escape(text), nofollow=True, autoescape=False)
    # mentions outside anchor tags only
    parts = re.split(r"(<a [^>]*>.*?</a>)", linked)
    for index, part in enumerate(parts):
        if not part.startswith("<a "):
            parts[index] = MENTION.sub(lambda m: str(format_html('<span class="mention">@{}</span>', m.group(1))), part)
    html = "".join(parts).replace("\n", "<br>")
    return mark_safe(html)  # built from escaped text above


@register.filter
def duration(seconds) -> str:
    """Seconds as hours and minutes ("7 h 05 min", "45 min"), in the reader's language."""
    from django.utils.translation import gettext as _

    try:
        total = max(0, int(seconds)) // 60
    except (TypeError, ValueError):
        return ""
    hours, minutes = divmod(total, 60)
    if hours:
        return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes}
    return _("%(m)s min") % {"m": minutes}


@register.filter
def elapsed(value, now) -> int:
    """Seconds from a moment to now (for `duration`): how long something has waited."""
    try:
        return max(0, int((now - value).total_seconds()))
    except TypeError:
        return 0
