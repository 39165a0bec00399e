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


def test_the_gate_answers_every_permission_as_has_perm_does(django_user_model):
    """gate.can keeps its answers for the request: the same as has_perm's, for every role, a user
    without one, a superuser and a deactivated user; a role's permission taken away is refused."""
    from crm.backends import RoleBackend
    from crm.models import Role
    from tests.factories import UserFactory, role

    perms = sorted(set(gate.Abilities.NAMES.values()) | {"clients.view_client", "auth.add_group", "crm.nothing"})
    users = [UserFactory(role=r) for r in Role.objects.all()]
    users += [UserFactory(role=None), UserFactory(role=role("Admin"), is_active=False),
              django_user_model.objects.create_superuser("root", "root@example.com", "x-Secret-1")]
    for user in users:
        fresh = django_user_model.objects.get(pk=user.pk)
        answers = {perm: gate.can(fresh, perm) for perm in perms}
        expected = {perm: django_user_model.objects.get(pk=user.pk).has_perm(perm) for perm in perms}
        assert answers == expected, user
    manager_role = role("Manager")
    manager = UserFactory(role=manager_role)
    assert gate.can(django_user_model.objects.get(pk=manager.pk), gate.ADD_DEAL)
    manager_role.group.permissions.remove(*manager_role.group.permissions.filter(codename="add_deal"))
    assert not RoleBackend().has_perm(django_user_model.objects.get(pk=manager.pk), gate.ADD_DEAL)
    assert not gate.can(django_user_model.objects.get(pk=manager.pk), gate.ADD_DEAL)
