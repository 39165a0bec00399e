"""Fragments drawn hundreds of times a page (the board's cards, the clients table's rows), as
Jinja2 templates in fragments/.

Django's template engine resolves every {{ value }} through its lookup and filter machinery:
120 cards took longer to draw than the board's queries took to run. Jinja2 compiles a template to
plain Python, and draws the same markup in about half the time. A fragment is called from a
Django template by a template tag (deals/templatetags/board.py, clients/templatetags/table.py)
and returns HTML marked safe: every value in it was escaped on the way in (autoescape is on).
It holds no words of its own: they come translated in its context, made once per page with
gettext, so `makemessages` (which reads no Jinja2) misses nothing. A name missing from the
context is an error (StrictUndefined), not an empty string. The values are dicts (TypedDicts),
read by subscript (card['pk']): Jinja2 tries an attribute first for card.pk, and the failed
attribute lookup cost a tenth of the board's page.
"""

from django.template import engines
from django.utils.safestring import SafeString, mark_safe
from jinja2 import Environment, StrictUndefined


def environment(**options) -> Environment:
    options["undefined"] = StrictUndefined
    return Environment(**options)


def render(name: str, context: dict) -> SafeString:
    template = engines["fragments"].get_template(name).template  # type: ignore[attr-defined]
    return mark_safe(template.render(context))  # every value in it was escaped by Jinja2's autoescape
