import html
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from clients.models import Client
from crm.models import Role, User
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, UserFactory, role

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_admin_creates_role_and_its_permissions_take_effect(admin_client, client, team):
    response = admin_client.post(
        reverse("crm:role-create"),
        {"name": "Viewer", "visibility": "all", "perms_0": ["clients.view_client", "clients.export_clients"]},
    )
    assert response.status_code == 302
    viewer_role = Role.objects.get(group__name="Viewer")
    assert sorted(viewer_role.group.permissions.values_list("codename", flat=True)) == ["export_clients", "view_client"]
    response = admin_client.post(
        reverse("crm:user-create"),
        {"username": "vera", "first_name": "Vera", "last_name": "V", "email": "vera@example.com",
         "role": viewer_role.pk, "team": team.pk, "language": "en", "is_active": "on",
         "password1": "Str0ng-pass-42", "password2": "Str0ng-pass-42"},
    )
    assert response.status_code == 302, response.content.decode()
    vera = User.objects.get(username="vera")
    assert list(vera.groups.all()) == [viewer_role.group]
    someone = ClientFactory(name="Anyone's client")
    client.force_login(vera)
    assert client.get(someone.get_absolute_url()).status_code == 200  # visibility "all"
    assert client.get(reverse("clients:create")).status_code == 403  # no create permission
    page = html.unescape(client.get(reverse("clients:list")).content.decode())
    assert "+ Add client" not in page and "Anyone's client" in page


def test_unticking_a_permission_removes_it(admin_client):
    manager_role = role("Manager")
    admin_client.post(
        reverse("crm:role-edit", args=[manager_role.pk]),
        {"name": "Manager", "visibility": "team", "perms_0": ["clients.view_client"]},
    )
    manager_role.refresh_from_db()
    assert manager_role.visibility == "team"
    assert list(manager_role.group.permissions.values_list("codename", flat=True)) == ["view_client"]


def test_role_name_must_be_unique(admin_client):
    response = admin_client.post(reverse("crm:role-create"), {"name": "admin", "visibility": "own"})
    assert "A role with this name already exists." in response.content.decode()


def test_edit_user_keeps_password_when_left_empty(admin_client, manager):
    old_hash = manager.password
    response = admin_client.post(
        reverse("crm:user-edit", args=[manager.pk]),
        {"username": "mary", "first_name": "Mary", "last_name": "M", "email": "mary@example.com",
         "role": role("Admin").pk, "language": "ru", "is_active": "on", "password1": "", "password2": ""},
    )
    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.password == old_hash and manager.role.name == "Admin" and manager.language == "ru"


def test_duplicate_email_refused(admin_client, manager):
    response = admin_client.post(
        reverse("crm:user-create"),
        {"username": "dup", "email": "MARY@example.com", "role": role("Manager").pk, "language": "en",
         "password1": "Str0ng-pass-42", "password2": "Str0ng-pass-42"},
    )
    assert "Another user already has this email." in response.content.decode()


def test_custom_field_admin(admin_client):
    response = admin_client.post(reverse("fields:create"), {"label": "Уровень", "entity": "client", "kind": "select", "choices_text": "Gold\nSilver\nGold"})
    assert response.status_code == 302
    field = CustomFieldFactory._meta.model.objects.get(label="Уровень")
    assert field.choices == ["Gold", "Silver"]
    response = admin_client.post(reverse("fields:create"), {"label": "Empty", "entity": "client", "kind": "select", "choices_text": ""})
    assert "A selector needs at least one value." in response.content.decode()
    obj = ClientFactory(custom={field.key: "Gold"})
    admin_client.post(reverse("fields:toggle", args=[field.pk]))  # delete: hidden, values kept
    field.refresh_from_db()
    assert not field.is_active
    assert Client.objects.get(pk=obj.pk).custom == {field.key: "Gold"}
    assert "Уровень" not in admin_client.get(reverse("clients:create")).content.decode()


@pytest.mark.parametrize("extra", [1, 15])
@pytest.mark.parametrize(
    "url_name,queries",
    [
        ("crm:users", 3),          # user with perms, users (+role, team), teams
        ("crm:roles", 2),          # user with perms, roles
        ("crm:user-create", 3),    # + role and team choices
        ("crm:profile", 1),        # user with perms (the navigation asks them)
        ("crm:password", 1),
        ("fields:list", 2),
        ("fields:create", 1),
        ("clients:search", 6),     # + custom fields, users, tags, lead steps, deal stages
        ("clients:columns", 3),    # + custom fields, table settings
        ("clients:create", 4),     # + custom fields, responsible and tag choices
    ],
)
def test_page_query_counts_do_not_grow(extra, url_name, queries, admin_client, django_assert_num_queries):
    UserFactory.create_batch(extra, role=role("Manager"))
    CustomFieldFactory.create_batch(extra)
    with django_assert_num_queries(queries):
        assert admin_client.get(reverse(url_name), headers=HX).status_code == 200


@pytest.mark.parametrize("extra", [1, 15])
def test_record_page_query_counts(extra, admin_client, admin, django_assert_num_queries):
    UserFactory.create_batch(extra)
    CustomFieldFactory.create_batch(extra)
    obj = ClientFactory(responsible=admin)
    with django_assert_num_queries(2):  # user with perms, client
        admin_client.get(reverse("clients:delete", args=[obj.pk]), headers=HX)
    with django_assert_num_queries(4):  # + role with its permissions, role choices, team choices
        admin_client.get(reverse("crm:role-edit", args=[role("Manager").pk]))
    with django_assert_num_queries(4):  # user with perms, edited user, role and team choices
        admin_client.get(reverse("crm:user-edit", args=[admin.pk]))


def test_login_page_query_count(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get(reverse("crm:login")).status_code == 200


def test_no_missing_migrations_and_they_run_on_sqlite(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}", "PATH": "/usr/bin:/bin",
           "DJANGO_SETTINGS_MODULE": "crm.settings.dev"}
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    # and the table's search works there, Cyrillic in any case included
    script = (
        "from clients.models import Client; from clients.filters import search_q;"
        "Client.objects.create(name='Петров Пётр', phone_digits='79161234567');"
        "Client.objects.create(name='Smith', phone_digits='12025550143');"
        "print(sorted(Client.objects.filter(search_q(q)).get().name for q in ['петр', 'ПЁТР', '123-45', 'smi']));"
        # the board's SQLite paths: the windowed first cards and the two-statement move
        "from deals.models import Stage, Deal; from deals import services, selectors; from crm.models import User, Role;"
        "s = list(Stage.objects.order_by('line__position', 'position'));"
        "u = User.objects.create(username='a', role=Role.objects.get(group__name='Admin'));"
        "d = services.deal_create(actor=u, client=Client.objects.first(), stage=s[0], name='D');"
        "d = Deal.objects.select_related('stage__line').get(pk=d.pk);"
        "print('moved', services.deal_move(actor=u, deal=d, to_stage_id=s[1].pk, seen_stage_id=s[0].pk, seen_version=1));"
        "from django.http import QueryDict;"
        "from deals.cards import AT, CardMaker; rows = selectors.first_cards(u, QueryDict(), s[:3]);"
        "print('cards', [x[AT['id']] == d.pk for x in rows]);"
        "print('drawn', f'id=\"deal-{d.pk}\"' in CardMaker().drawn(rows))"
    )
    shell = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert "['Smith', 'Петров Пётр', 'Петров Пётр', 'Петров Пётр']" in shell.stdout, shell.stdout + shell.stderr
    assert "moved 2" in shell.stdout and "cards [True]" in shell.stdout, shell.stdout + shell.stderr
    assert "drawn True" in shell.stdout, shell.stdout + shell.stderr


def test_deploy_checks_are_clean_with_production_settings():
    env = {"DJANGO_SETTINGS_MODULE": "crm.settings.prod", "SECRET_KEY": "x" * 60 + "unique-enough-0123456789",
           "ALLOWED_HOSTS": "crm.example.com", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_page_sends_a_strict_csp(admin_client):
    response = admin_client.get(reverse("clients:list"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode() and " style=" not in response.content.decode()
