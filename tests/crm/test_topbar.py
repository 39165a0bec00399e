"""The top bar of every page (crm/templatetags/chrome.py, fragments/crm/topbar.html): the sections
a role may open, the current one marked, in the reader's language."""

import re

import pytest
from django.urls import reverse

from tests.factories import UserFactory, role


def topbar(page: str) -> dict:
    bar = re.search(r'<header class="topbar">(.*?)</header>', page, re.S)
    assert bar, "no top bar"
    html = bar.group(1)
    links = re.findall(r'<a [^>]*?href="([^"]+)"[^>]*>([^<]+)', html)
    current = re.findall(r'<(?:a|summary)[^>]*aria-current="page"[^>]*>([^<]+)', html)
    return {"links": {label.strip(): href for href, label in links}, "current": [c.strip() for c in current],
            "settings": "nav-menu" in html, "html": html}


@pytest.mark.parametrize(("url_name", "current"), [
    ("clients:list", ["Клиенты"]), ("messenger:inbox", ["Мессенджер"]), ("tasks:list", ["Задачи"]),
    ("deals:shifts", ["Смены"]), ("crm:jobs", ["Задания"]), ("crm:profile", []),
])
def test_a_manager_sees_their_sections_in_russian_the_current_one_marked(client, db, url_name, current):
    manager = UserFactory(role=role("Manager"), language="ru", first_name="Анна <b>", last_name="Смирнова")
    client.force_login(manager)
    bar = topbar(client.get(reverse(url_name)).content.decode())
    assert bar["current"] == current
    assert bar["links"]["Клиенты"] == reverse("clients:list") and bar["links"]["Сделки"] == reverse("deals:home")
    assert not bar["settings"]  # no settings for a manager
    assert "Анна &lt;b&gt; Смирнова" in bar["html"] and "<b>" not in bar["html"]
    token = re.search(r'<form method="post" action="([^"]+)"><input type="hidden" name="csrfmiddlewaretoken" value="(\w+)">', bar["html"])
    assert token and token.group(1) == reverse("crm:logout") and len(token.group(2)) == 64


@pytest.mark.parametrize(("url_name", "current"), [("fields:list", ["Settings"]), ("crm:roles", ["Settings"]),
                                                    ("deals:home", ["Deals"]), ("crm:notifications", [])])
def test_an_admin_sees_the_settings_in_english(client, db, url_name, current):
    client.force_login(UserFactory(role=role("Admin"), language="en"))
    response = client.get(reverse(url_name), follow=True)
    bar = topbar(response.content.decode())
    assert bar["current"] == current
    assert bar["settings"]
    for label, name in (("Channels", "messenger:channels"), ("Partners", "partners:list"), ("Fields", "fields:list"),
                        ("Lead steps", "fields:steps"), ("Users", "crm:users"), ("Roles", "crm:roles"), ("Jobs", "crm:jobs")):
        assert bar["links"][label] == reverse(name)


def test_signed_out_pages_have_no_top_bar(client, db):
    assert '<header class="topbar">' not in client.get(reverse("crm:login")).content.decode()
