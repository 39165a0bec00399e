"""The top bar of every page ({% topbar %} in base.html), drawn by fragments/crm/topbar.html.

Django's template engine took about 1.3 ms a page to draw it (twenty addresses, fifteen words,
ten permission checks, each through its lookup machinery): as much as a whole trivial signed-in
request. Jinja2 draws the same markup from plain values made here: the addresses kept as the
{% url %} tag keeps them (crm/templatetags/urls.py), the words translated once, the abilities
asked of the gate once each.
"""

import functools
from collections.abc import Mapping
from types import MappingProxyType

from django import template
from django.core.signals import setting_changed
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.safestring import SafeString
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from crm import fragments
from crm import permissions as gate

from .urls import current_app_of, kept_addresses

register = template.Library()

ADDRESSES = (
    "crm:home", "clients:list", "messenger:inbox", "messenger:ignore-list", "tasks:list", "tasks:counts", "deals:home",
    "deals:shifts", "messenger:channels", "partners:list", "fields:list", "fields:steps", "crm:users", "crm:roles",
    "deals:shift", "crm:notifications", "crm:bell", "crm:jobs", "crm:profile", "crm:logout",
)
NAMED = tuple((name, name) for name in ADDRESSES)  # for kept_addresses
ABILITIES = ("view_clients", "manage_ignore", "configure_channels", "view_tasks", "view_deals", "configure_fields",
             "manage_users", "configure_partners")


@fragments.words
def _words() -> dict[str, str]:
    return {
        "sections": _("Sections"), "clients": _("Clients"), "messenger": _("Messenger"), "ignore": pgettext("menu", "Ignore"),
        "tasks": _("Tasks"), "deals": _("Deals"), "shifts": _("Shifts"), "settings": _("Settings"), "channels": _("Channels"),
        "partners": _("Partners"), "fields": _("Fields"), "lead_steps": _("Lead steps"), "users": _("Users"),
        "roles": _("Roles"), "notifications": _("Notifications"), "jobs": _("Jobs"), "log_out": _("Log out"),
    }


@register.simple_tag(takes_context=True)
def topbar(context) -> SafeString:
    """The signed-in user's top bar: the sections they may open, the current one marked."""
    request, user = context["request"], context["user"]
    match = getattr(request, "resolver_match", None)
    current_app = current_app_of(request)
    return fragments.render("crm/topbar.html", {
        "url": kept_addresses(NAMED, current_app),
        "may": gate.abilities(user, ABILITIES),
        "app": (match.app_name if match else "") or "", "name": (match.url_name if match else "") or "",
        "t": _words(), "bell_icon": render_to_string("icons/bell.html"), "user_name": str(user),
        "csrf_token": str(context.get("csrf_token", "")),
    })


# The files every page links (templates/base.html), by path.
PAGE_FILES = ("css/app.css", "vendor/htmx.min.js", "vendor/Sortable.min.js", "js/app.js", "js/partners.js")


@functools.cache
def kept_static(*paths: str) -> Mapping[str, str]:
    """{% static %}'s addresses of `paths`, kept per process: the storage's addresses (a manifest's
    hashed names in production) do not change while a process runs."""
    return MappingProxyType({path: static(path) for path in paths})


def _forget_static(*, setting, **_kwargs) -> None:
    if setting in ("STATIC_URL", "STORAGES", "STATIC_ROOT"):
        kept_static.cache_clear()


setting_changed.connect(_forget_static, dispatch_uid="crm.templatetags.chrome.static")


@fragments.words
def _shell_words() -> dict[str, str]:
    return {"skip": _("Skip to content")}


def page_context(context) -> dict:
    """The values of the page shell drawn in Jinja2 (fragments/crm/page.html, the twin of
    templates/base.html), from a Django template's context: a page drawn whole by a fragment (the
    board, the clients table) pays for no Django template but the one tag that draws it."""
    user = context["user"]
    signed_in = user.is_authenticated
    return {
        "lang": get_language(), "csrf_token": str(context.get("csrf_token", "")), "static": kept_static(*PAGE_FILES),
        "sound": bool(signed_in and user.notification_sound), "topbar": topbar(context) if signed_in else "",
        "messages": context.get("messages") or (), "t": _shell_words(),
    }
