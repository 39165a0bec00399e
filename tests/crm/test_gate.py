"""The gate is the one place templates ask what a user may do (`may.<ability>`)."""

from pathlib import Path

import pytest
from django.template import Context, Template

from crm import permissions as gate

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_no_template_asks_django_perms_directly():
    raw = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html") if "perms." in p.read_text()]
    assert raw == []


def test_may_answers_by_role_and_refuses_an_unknown_ability(admin, manager):
    page = Template("{% if may.configure_funnels %}settings{% endif %}|{% if may.add_deal %}deal{% endif %}")
    assert page.render(Context({"may": gate.Abilities(admin)})) == "settings|deal"
    assert page.render(Context({"may": gate.Abilities(manager)})) == "|deal"
    with pytest.raises(LookupError):
        Template("{{ may.fly }}").render(Context({"may": gate.Abilities(admin)}))


def test_every_ability_is_a_role_permission_or_the_funnel_grant():
    assert set(gate.Abilities.NAMES.values()) == set(gate.ALL_ROLE_PERMISSIONS) | {gate.ACCESS_FUNNEL}
