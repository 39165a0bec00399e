"""{% url %} with its answers kept (a built-in of our templates, in place of Django's).

A page asks for the same addresses every time: the top bar alone reverses twenty names, and
Django's reverse() works each one out afresh (about 60 µs on the bench machine, a tenth of the
clients table's page). URL patterns do not change while a process runs, so an address is kept per
view name, arguments, current app, URL conf and script prefix; the keeping is dropped when a test
changes ROOT_URLCONF. Arguments that cannot be kept (unhashable) are reversed as Django does.
"""

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from django import template
from django.core.signals import setting_changed
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()


@lru_cache(maxsize=4096)
def _reversed(view_name: str, args: tuple, kwargs: tuple, current_app: str | None, urlconf, prefix: str) -> str:
    return reverse(view_name, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=current_app)


@lru_cache(maxsize=256)
def _addresses(named: tuple[tuple[str, str], ...], current_app: str | None, urlconf, prefix: str) -> Mapping[str, str]:
    return MappingProxyType({key: _reversed(view_name, (), (), current_app, urlconf, prefix) for key, view_name in named})


def _forget(*, setting, **_kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _reversed.cache_clear()
        _addresses.cache_clear()


setting_changed.connect(_forget, dispatch_uid="crm.templatetags.urls")


def current_app_of(request) -> str | None:
    """The current app a page's addresses are reversed for, as Django's URLNode finds it."""
    try:
        return request.current_app
    except AttributeError:
        try:
            return request.resolver_match.namespace
        except AttributeError:
            return None


def kept_reverse(view_name: str, args: tuple = (), kwargs: tuple = (), current_app: str | None = None) -> str:
    """reverse(), its answer kept (hashable arguments only; kwargs as sorted pairs)."""
    return _reversed(view_name, args, kwargs, current_app, get_urlconf(), get_script_prefix())


def kept_addresses(named: tuple[tuple[str, str], ...], current_app: str | None = None) -> Mapping[str, str]:
    """Many addresses without arguments at once (a top bar's, a page head's), as {key: address}
    for `named`'s (key, view name) pairs: kept as one read-only mapping, so a page asks for the URL
    conf and the script prefix once, not once per address."""
    return _addresses(named, current_app, get_urlconf(), get_script_prefix())


class KeptURLNode(URLNode):
    def render(self, context):
        args = tuple(arg.resolve(context) for arg in self.args)
        kwargs = tuple(sorted((k, v.resolve(context)) for k, v in self.kwargs.items()))
        view_name = self.view_name.resolve(context)
        current_app = current_app_of(getattr(context, "request", None))
        url = ""
        try:
            try:
                url = kept_reverse(view_name, args, kwargs, current_app)
            except TypeError:  # an argument that cannot be a key
                url = reverse(view_name, args=args, kwargs=dict(kwargs), current_app=current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = django_url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)
