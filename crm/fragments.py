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

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

from django.core.signals import setting_changed
from django.template import engines
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from jinja2 import Environment, StrictUndefined, Template
from markupsafe import _escape_inner  # markupsafe.escape's escaping (C), without its Markup wrapper


def output_escape(value) -> str:
    """What a fragment's {{ value }} writes: markupsafe.escape's text, as a plain str.

    Autoescape calls markupsafe.escape for every value written, ~2,300 times for the board's
    cards, and escape wraps each result in a Markup, whose constructor is Python: that wrapper was
    half the time Jinja2 took to draw the board (0.8 of 1.5 ms). A value written goes straight
    into the page's text, so it needs the escaped text, not the wrapper. Markup (and anything else
    with __html__) is written as it is, as escape writes it."""
    if type(value) is str:
        return _escape_inner(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape_inner(str(value))


class FragmentTemplate(Template):
    """A fragment whose written values are escaped by output_escape. Jinja2 compiles a template to
    a module that imports `escape` and calls it only to write values ({{ value }}); the module's
    name is bound to output_escape once it is made. Everything else (macros, {% set %} blocks,
    filters, |safe) works with Markup as before."""

    @classmethod
    def from_code(cls, environment, code, globals, uptodate=None):
        namespace = {"environment": environment, "__file__": code.co_filename}
        exec(code, namespace)  # as Template.from_code: the compiled template's module
        namespace["escape"] = output_escape
        made = cls._from_namespace(environment, namespace, globals)
        made._uptodate = uptodate
        return made


def environment(**options) -> Environment:
    options["undefined"] = StrictUndefined
    made = Environment(**options)
    made.template_class = FragmentTemplate
    return made


def render(name: str, context: dict) -> SafeString:
    template = engines["fragments"].get_template(name).template  # type: ignore[attr-defined]
    return mark_safe(template.render(context))  # every value in it was escaped by Jinja2's autoescape


_kept_words: list[dict] = []


def _forget_words(*, setting, **_kwargs) -> None:
    # A test that changes the languages or the catalogues' places must not read kept words.
    if setting in ("LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "INSTALLED_APPS"):
        for kept in _kept_words:
            kept.clear()


setting_changed.connect(_forget_words, dispatch_uid="crm.fragments.words")


def words(make: Callable[[], Mapping[str, str]]) -> Callable[[], Mapping[str, str]]:
    """A fragment's words (`make`: a function of no arguments returning a dict of translated
    texts), translated once per language in a process and kept, read-only.

    Every gettext call reads the active language from an asgiref Local (a lock and a context
    variable) before looking in the catalogue: the board's and the table's pages asked for about
    sixty words each, a tenth of a millisecond. Catalogues do not change while a process runs."""
    kept: dict[str | None, Mapping[str, str]] = {}
    _kept_words.append(kept)

    @functools.wraps(make)
    def translated() -> Mapping[str, str]:
        language = get_language()
        found = kept.get(language)
        if found is None:
            found = kept[language] = MappingProxyType(dict(make()))
        return found

    return translated
