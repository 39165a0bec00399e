"""@mentions reach, and the autocomplete offers, only colleagues who may see the client."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from clients import services
from crm import permissions as gate
from crm.models import Activity, Notification, Role
from tests.conftest import HX
from tests.factories import ClientFactory, TeamFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def team_lead_role() -> Role:
    """A role that sees its team's clients."""
    group = Group.objects.create(name="Team lead")
    group.permissions.add(Permission.objects.get(content_type__app_label="clients", codename="view_client"))
    return Role.objects.create(group=group, visibility=Role.Visibility.TEAM)


@pytest.fixture
def people(db):
    """The client's responsible, and colleagues who may and may not see the client."""
    team, other_team = TeamFactory(), TeamFactory()
    lead = team_lead_role()
    responsible = UserFactory(username="resp", role=role("Manager"), team=team, first_name="Rita", last_name="Resp")
    return {
        "responsible": responsible,
        "admin": UserFactory(username="adm", role=role("Admin"), first_name="Anna", last_name="Admin"),
        "teammate_lead": UserFactory(username="lead", role=lead, team=team, first_name="Tom", last_name="Lead"),
        "other_lead": UserFactory(username="lead2", role=lead, team=other_team, first_name="Olga", last_name="Other"),
        "own_manager": UserFactory(username="petr", role=role("Manager"), team=team, first_name="Пётр", last_name="Иванов"),
        "no_role": UserFactory(username="norole", role=None, first_name="Nina", last_name="Norole"),
        "inactive_admin": UserFactory(username="gone", role=role("Admin"), is_active=False, first_name="Gleb", last_name="Gone"),
        "superuser": UserFactory(username="root", role=None, is_superuser=True, first_name="Roman", last_name="Root"),
        "client": ClientFactory(name="Acme", responsible=responsible),
    }


def test_the_sql_answer_is_the_gates_answer(people):
    from crm.models import User

    obj = people["client"]
    users = User.objects.filter(pk__in=[u.pk for u in people.values() if isinstance(u, User)])
    expected = {u.username for u in users if gate.may_see_client(u, obj)}
    assert expected == {"resp", "adm", "lead", "root"}
    assert set(gate.users_who_may_see_client(obj, users).values_list("username", flat=True)) == expected


def test_a_mention_of_someone_who_may_not_see_the_client_is_not_sent(client, people):
    obj, author = people["client"], people["responsible"]
    client.force_login(author)
    response = client.post(reverse("clients:comment", args=[obj.pk]),
                           {"text": "@petr @adm @lead @lead2 please look"}, headers=HX)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Пётр Иванов cannot see this client and was not notified." in page
    assert "Olga Other cannot see this client and was not notified." in page
    assert "Anna Admin cannot see" not in page
    assert Activity.objects.get(kind="comment").text == "@petr @adm @lead @lead2 please look"  # saved all the same
    told = set(Notification.objects.filter(kind="mention").values_list("user__username", flat=True))
    assert told == {"adm", "lead"}
    assert "Acme" not in str(list(Notification.objects.filter(user=people["own_manager"]).values()))


def test_the_author_is_told_in_their_language(client, people):
    author = people["responsible"]
    author.language = "ru"
    author.save(update_fields=["language"])
    client.force_login(author)
    url = reverse("clients:comment", args=[people["client"].pk])
    page = client.post(url, {"text": "@petr глянь"}, headers=HX).content.decode()
    assert "Пётр Иванов не видит этого клиента и не получил уведомление." in page


def test_a_mention_of_a_colleague_who_may_see_the_client_is_sent(people):
    obj = people["client"]
    entry = services.comment_add(actor=people["admin"], client=obj, text="@resp call them")
    assert entry.not_notified == []
    note = Notification.objects.get(user=people["responsible"])
    assert (note.kind, note.params["client_id"], note.text) == ("mention", obj.pk, "@resp call them")


def options(client, user, obj, text):
    client.force_login(user)
    response = client.get(reverse("clients:mention-options", args=[obj.pk]), {"text": text}, headers=HX)
    assert response.status_code == 200
    return {u.username for u in response.context["mention_options"]}, response.content.decode()


def test_the_autocomplete_lists_only_active_colleagues_who_may_see_the_client(client, people):
    obj = people["client"]
    names, html = options(client, people["responsible"], obj, "hello @")
    assert names == {"adm", "lead", "root"}  # not the author, not those who may not see it, not the inactive
    assert "petr" not in html and "Пётр" not in html
    names, _html = options(client, people["responsible"], obj, "hello @le")
    assert names == {"lead"}
    names, _html = options(client, people["responsible"], obj, "hello @Ann")  # by first name too
    assert names == {"adm"}
    names, _html = options(client, people["responsible"], obj, "no mention being typed")
    assert names == set()


def test_the_autocomplete_is_a_404_for_a_client_the_user_may_not_see(client, people):
    client.force_login(people["own_manager"])
    response = client.get(reverse("clients:mention-options", args=[people["client"].pk]), {"text": "@"}, headers=HX)
    assert response.status_code == 404


@pytest.mark.parametrize("size", [1, 15])
def test_the_autocomplete_query_count_is_flat(size, client, people, django_assert_num_queries):
    for _ in range(size):
        UserFactory(role=role("Manager"))
        UserFactory(role=role("Admin"))
    client.force_login(people["responsible"])
    with django_assert_num_queries(3):  # user with perms, client, candidates
        client.get(reverse("clients:mention-options", args=[people["client"].pk]), {"text": "@"}, headers=HX)


@pytest.mark.parametrize("size", [1, 15])
def test_a_comment_with_mentions_costs_the_same_whatever_it_names(size, client, people, django_assert_num_queries):
    admins = [UserFactory(role=role("Admin")) for _ in range(size)]
    managers = [UserFactory(role=role("Manager")) for _ in range(size)]
    text = " ".join(f"@{u.username}" for u in admins + managers)
    client.force_login(people["responsible"])
    url = reverse("clients:comment", args=[people["client"].pk])
    client.post(url, {"text": "warm-up"}, headers=HX)
    # user with perms, client, savepoint, the comment, its event (robots' activity), the users named,
    # those of them who may see the client, release, card fields, feed; and one insert per notification sent;
    # issue 18: the lead steps (the note's step), a savepoint and its release around the note, the client's
    # last action, the comment box's action types
    with django_assert_num_queries(15 + size):
        client.post(url, {"text": text}, headers=HX)
    assert Notification.objects.filter(kind="mention").count() == size
