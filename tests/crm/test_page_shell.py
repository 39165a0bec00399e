"""The page shell drawn in Jinja2 (fragments/crm/page.html, crm/templatetags/chrome.py page_context)
is the twin of templates/base.html: for the same request, reader and messages both draw the same
markup around a page's content (whitespace aside). A change to one without the other fails here."""

import re

import pytest
from django.contrib import messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.middleware.csrf import get_token
from django.template import RequestContext, engines
from django.test import RequestFactory
from django.utils import translation

from crm.templatetags.chrome import page_context
from tests.factories import UserFactory, role

pytestmark = pytest.mark.django_db

DJANGO_PAGE = ('{% extends "base.html" %}{% block title %}Воронка <b>{% endblock %}{% block main_class %}page wide{% endblock %}'
               '{% block extra_js %}<script src="/x.js" defer></script>{% endblock %}{% block content %}<p>Содержимое</p>{% endblock %}')
JINJA_PAGE = ('{% extends "crm/page.html" %}{% block title %}Воронка <b>{% endblock %}{% block main_class %}page wide{% endblock %}'
              '{% block extra_js %}<script src="/x.js" defer></script>{% endblock %}{% block content %}<p>Содержимое</p>{% endblock %}')


def request_for(user, *said: str):
    request = RequestFactory().get("/clients/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    for text in said:
        messages.success(request, text)
    request.resolver_match = None
    get_token(request)
    return request


def normalised(page: str) -> str:
    page = re.sub(r'(name="csrf-token" content=|name="csrfmiddlewaretoken" value=)"[^"]+"', r'\1"token"', page)
    return re.sub(r"\s+", " ", page).strip()


def both(user, *said: str) -> tuple[str, str]:
    django = engines["django"].from_string(DJANGO_PAGE).render({}, request_for(user, *said))
    request = request_for(user, *said)
    template = engines["django"].from_string("").template
    context = RequestContext(request, {})
    with context.bind_template(template):
        jinja = engines["fragments"].env.from_string(JINJA_PAGE).render(page=page_context(context))
    return normalised(django), normalised(jinja)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_jinja_shell_draws_what_base_html_draws(language):
    manager = UserFactory(role=role("Manager"), language=language, notification_sound=True, first_name="Анна <i>")
    with translation.override(language):
        django, jinja = both(manager, 'Клиент «Ромашка» & <сохранён>')
    assert "Содержимое" in jinja and "Ромашка" in jinja and 'data-sound="on"' in jinja
    assert "&lt;сохранён&gt;" in jinja and "Анна &lt;i&gt;" in jinja  # escaped once, as Django escapes
    assert jinja == django


def test_without_messages_or_sound_and_as_an_admin():
    admin = UserFactory(role=role("Admin"), language="en", notification_sound=False)
    with translation.override("en"):
        django, jinja = both(admin)
    assert 'class="messages"' not in jinja and "data-sound" not in jinja
    assert jinja == django
