import pytest
from django.urls import reverse

from tests.factories import TeamFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def login(client, username, password="pass-12345"):
    return client.post(reverse("crm:login"), {"username": username, "password": password})


def test_login_by_username_and_by_email(client, manager):
    response = login(client, "mary")
    assert response.status_code == 302 and response["Location"] == reverse("clients:list")
    client.post(reverse("crm:logout"))
    response = login(client, "MARY@example.com")
    assert response.status_code == 302
    assert client.get(reverse("clients:list")).status_code == 200


def test_wrong_password_shows_message_in_users_language(client, manager):
    response = login(client, "mary", "wrong")
    assert response.status_code == 200
    assert "Пожалуйста, введите правильные" in response.content.decode()  # Russian by default


def test_logout_needs_post_and_ends_session(client, manager):
    client.force_login(manager)
    assert client.get(reverse("crm:logout")).status_code == 405
    client.post(reverse("crm:logout"))
    response = client.get(reverse("clients:list"))
    assert response.status_code == 302 and reverse("crm:login") in response["Location"]


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("clients:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("crm:login"))


def test_failed_logins_are_throttled(client, manager):
    for _ in range(5):
        login(client, "mary", "wrong")
    response = login(client, "mary")  # right password, but locked out now
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode() or "Слишком много" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_change(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("crm:password"),
        {"old_password": "pass-12345", "new_password1": "N3w-secret-pass", "new_password2": "N3w-secret-pass"},
    )
    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.check_password("N3w-secret-pass")


def test_interface_language_is_per_user(client, db):
    russian = UserFactory(language="ru", role=role("Manager"))
    english = UserFactory(language="en", role=role("Manager"))
    client.force_login(russian)
    assert "Клиенты" in client.get(reverse("clients:list")).content.decode()
    client.force_login(english)
    page = client.get(reverse("clients:list")).content.decode()
    assert "Clients" in page and "Клиенты" not in page


def test_user_switches_language_in_settings(client, manager):
    client.force_login(manager)
    response = client.post(
        reverse("crm:profile"),
        {"first_name": "Mary", "last_name": "K", "email": "mary@example.com", "language": "ru", "time_zone": "Asia/Yekaterinburg"},
    )
    assert response.status_code == 302
    assert "Мои настройки" in client.get(reverse("crm:profile")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_builtin_roles_survive_a_flush():
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False)
    assert role("Admin").group.permissions.filter(codename="restore_client").exists()
    assert role("Manager").visibility == "own"


def test_login_never_confuses_one_users_email_with_anothers_username(client, db):
    anna = UserFactory(username="anna", email="anna@corp.example", role=role("Manager"))
    UserFactory(username="bob", email="bob@corp.example", role=role("Manager"))
    assert login(client, "anna@corp.example").status_code == 302
    assert int(client.session["_auth_user_id"]) == anna.pk
    client.post(reverse("crm:logout"))
    assert login(client, "ANNA").status_code == 302  # username in any case, when unambiguous
    assert int(client.session["_auth_user_id"]) == anna.pk


def test_admin_cannot_create_username_with_at_sign(client, db):
    admin = UserFactory(role=role("Admin"))
    client.force_login(admin)
    response = client.post(
        reverse("crm:user-create"),
        {"username": "x@corp.example", "role": role("Manager").pk, "language": "en",
         "password1": "Str0ng-pass-42", "password2": "Str0ng-pass-42"},
    )
    assert "cannot contain" in response.content.decode()


def test_unknown_login_gets_the_same_answer_as_a_wrong_password(client, db):
    for login_name in ("ghost", "ghost@example.com"):
        response = login(client, login_name, "whatever")
        assert response.status_code == 200
        assert "Пожалуйста, введите правильные" in response.content.decode()


@pytest.mark.parametrize("kind", ["manager", "admin", "superuser", "no role"])
def test_the_signed_in_user_comes_with_exactly_their_roles_permissions_in_one_query(kind, django_assert_num_queries):
    """crm.backends.RoleBackend.get_user reads the role's permissions in the user's own statement
    (PostgreSQL): the same set the permission query gives, and asking a permission costs nothing."""
    from crm.backends import RoleBackend

    user = {"manager": lambda: UserFactory(role=role("Manager")), "admin": lambda: UserFactory(role=role("Admin")),
            "superuser": lambda: UserFactory(is_superuser=True), "no role": lambda: UserFactory(role=None)}[kind]()
    expected = RoleBackend().get_all_permissions(type(user).objects.get(pk=user.pk))  # the permission query itself
    assert (kind == "no role") == (not expected)
    with django_assert_num_queries(1):
        signed_in = RoleBackend().get_user(user.pk)
        assert signed_in.get_all_permissions() == expected
        assert signed_in.has_perm("clients.view_client") == ("clients.view_client" in expected)


@pytest.mark.parametrize("with_team", [True, False])
def test_the_signed_in_user_brings_their_role_and_team_and_refuses_what_may_not_sign_in(with_team, django_assert_num_queries):
    """The user's statement (hand-written on PostgreSQL) fills the user as the ORM would, with the
    role and the team read in it (none when unset); an inactive user, a missing one or an id
    that is not a number is nobody."""
    from crm.backends import RoleBackend

    team = TeamFactory(name="Отдел продаж") if with_team else None
    user = UserFactory(role=role("Manager"), team=team, first_name="Анна", last_name="Смирнова", language="en")
    with django_assert_num_queries(1):
        signed_in = RoleBackend().get_user(user.pk)
        assert (signed_in.pk, signed_in.username, signed_in.first_name, signed_in.language) == (
            user.pk, user.username, "Анна", "en")
        assert signed_in.role.visibility == user.role.visibility
        assert signed_in.role_id == user.role_id
        assert (signed_in.team.name if signed_in.team else None) == ("Отдел продаж" if with_team else None)
        assert signed_in.password == user.password and signed_in.date_joined == user.date_joined
    assert RoleBackend().get_user(user.pk + 1000) is None
    assert RoleBackend().get_user("not-a-number") is None
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert RoleBackend().get_user(user.pk) is None


def test_a_role_losing_a_permission_is_felt_on_the_next_request(client, manager):
    from django.contrib.auth.models import Permission

    client.force_login(manager)
    assert client.get(reverse("clients:list")).status_code == 200
    manager.role.group.permissions.remove(Permission.objects.get(codename="view_client", content_type__app_label="clients"))
    assert client.get(reverse("clients:list")).status_code == 403
