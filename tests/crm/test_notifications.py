"""Notifications are stored as a kind and its parameters and worded when read: in the reader's
language and time zone, whoever wrote them; old rows keep their stored text."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from clients import services as client_services
from crm import activity
from crm.models import Notification
from tasks import services as task_services
from tasks.models import Task, TaskType
from tests.factories import ClientFactory, UserFactory, role

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)


def page_of(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("crm:notifications")).content.decode()


def reminder_for(user, *, deadline=DUE, description="Позвонить по договору"):
    obj = ClientFactory(name="ООО Ромашка", responsible=user)
    Task.objects.create(client=obj, type=TaskType.objects.first(), description=description, responsible=user,
                        deadline=deadline)
    assert task_services.reminders_send(now=deadline + timedelta(minutes=1)) == 1
    return Notification.objects.get(user=user, kind="reminder")


def test_an_english_manager_reads_in_english_what_a_russian_admin_did(client):
    author = UserFactory(role=role("Admin"), language="ru", first_name="Пётр", last_name="Иванов")
    reader = UserFactory(role=role("Manager"), language="en")
    obj = client_services.client_create(actor=author, data={"name": "Acme", "responsible": reader})
    client_services.comment_add(actor=author, client=obj, text=f"@{reader.username} позвони им")
    page = page_of(client, reader)
    assert "Пётр Иванов made you responsible for the client Acme" in page
    assert f"Пётр Иванов mentioned you on Acme: @{reader.username} позвони им" in page
    assert "назначил" not in page and "упомянул" not in page


def test_a_russian_manager_reads_in_russian_what_an_english_admin_did(client):
    author = UserFactory(role=role("Admin"), language="en", first_name="Peter", last_name="Smith")
    reader = UserFactory(role=role("Manager"), language="ru")
    obj = client_services.client_create(actor=author, data={"name": "Acme", "responsible": reader})
    client_services.comment_add(actor=author, client=obj, text=f"@{reader.username} call them")
    page = page_of(client, reader)
    assert "Peter Smith назначил(а) вас ответственным за клиента Acme" in page
    assert f"Peter Smith упомянул(а) вас в карточке Acme: @{reader.username} call them" in page
    assert "made you responsible" not in page


def test_one_stored_notification_reads_in_whichever_language_the_reader_has_now(client):
    author = UserFactory(role=role("Admin"), language="ru", first_name="Пётр", last_name="Иванов")
    reader = UserFactory(role=role("Manager"), language="ru")
    client_services.client_create(actor=author, data={"name": "Acme", "responsible": reader})
    assert "назначил(а) вас ответственным за клиента Acme" in page_of(client, reader)
    reader.language = "en"
    reader.save(update_fields=["language"])
    assert "Пётр Иванов made you responsible for the client Acme" in page_of(client, reader)


@pytest.mark.parametrize("language,zone,shown", [
    ("en", "Asia/Yekaterinburg", "Task overdue since 12/02/2026 5:30 a.m.: Позвонить по договору (ООО Ромашка)"),
    ("ru", "Europe/Moscow", "Задача просрочена с 02.12.2026 03:30: Позвонить по договору (ООО Ромашка)"),
    ("ru", "Asia/Vladivostok", "Задача просрочена с 02.12.2026 10:30: Позвонить по договору (ООО Ромашка)"),
])
def test_the_reminders_time_is_in_the_readers_zone_and_format(client, language, zone, shown):
    reader = UserFactory(role=role("Manager"), language=language, time_zone=zone)
    note = reminder_for(reader)
    assert note.params["due"] == "2026-12-02T00:30:00+00:00"  # stored as UTC, worded when read
    page = page_of(client, reader)
    assert shown in page
    assert "2026-12-02" not in page


def test_a_reminder_due_soon_reads_in_the_readers_zone(client):
    reader = UserFactory(role=role("Manager"), language="en", time_zone="Asia/Yekaterinburg")
    obj = ClientFactory(name="Acme", responsible=reader)
    Task.objects.create(client=obj, type=TaskType.objects.first(), description="Send the offer", responsible=reader,
                        deadline=DUE)
    assert task_services.reminders_send(now=DUE - timedelta(minutes=10)) == 1
    assert "Task due 12/02/2026 5:30 a.m.: Send the offer (Acme)" in page_of(client, reader)


def test_a_reminder_by_email_is_in_the_recipients_language_and_zone(smtp_mailer, django_capture_on_commit_callbacks):
    from email import message_from_bytes
    from email.header import decode_header, make_header

    reader = UserFactory(role=role("Manager"), language="ru", time_zone="Asia/Yekaterinburg", email="r@example.com",
                         email_reminders=True)
    with django_capture_on_commit_callbacks(execute=True):
        reminder_for(reader)
    [mail] = smtp_mailer.messages
    message = message_from_bytes(mail.original_content)
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert body.strip() == "Задача просрочена с 02.12.2026 05:30: Позвонить по договору (ООО Ромашка)"
    assert str(make_header(decode_header(message["Subject"]))).startswith("Задача просрочена с 02.12.2026 05:30")


def test_worded_outside_a_request_for_the_recipient():
    reader = UserFactory(role=role("Manager"), language="ru", time_zone="Asia/Vladivostok")
    note = reminder_for(reader)
    assert activity.notification_text_for(reader, note).startswith("Задача просрочена с 02.12.2026 10:30")
    reader.language, reader.time_zone = "en", "Asia/Yekaterinburg"
    assert activity.notification_text_for(reader, note).startswith("Task overdue since 12/02/2026 5:30 a.m.")


def test_old_rows_with_stored_text_still_show_it(client, manager):
    Notification.objects.create(user=manager, kind="reminder", text="Task due 2026-12-02 05:30: old wording (Acme)")
    Notification.objects.create(user=manager, kind="mention", text="Мария упомянула вас в карточке Acme: привет")
    page = page_of(client, manager)
    assert "Task due 2026-12-02 05:30: old wording (Acme)" in page
    assert "Мария упомянула вас в карточке Acme: привет" in page


def test_a_client_the_reader_may_no_longer_see_is_not_named(client, admin, manager, other_manager):
    obj = ClientFactory(name="Secret Acme", responsible=manager)
    client_services.comment_add(actor=admin, client=obj, text=f"@{manager.username} the secret price is 42")
    assert "Secret Acme" in page_of(client, manager)
    obj.responsible = other_manager  # handed to someone else: the manager (own records) may not see it now
    obj.save()
    page = page_of(client, manager)
    assert "Secret Acme" not in page and "secret price" not in page
    assert f"{admin} mentioned you on a client you cannot see" in page
    assert obj.get_absolute_url() not in page  # no link to a page that would be a 404


def test_the_bulk_task_notification_reads_in_the_readers_language(client, admin):
    reader = UserFactory(role=role("Manager"), language="en")
    activity.notify(user=reader, kind=Notification.Kind.ASSIGNED, actor=admin, url="/tasks/?view=mine",
                    params={"about": "tasks", "n": 3}, text="Обзвон")
    activity.notify(user=reader, kind=Notification.Kind.ASSIGNED, actor=admin, url="/clients/?view=mine",
                    params={"about": "clients", "n": 2})
    page = page_of(client, reader)
    assert f"{admin} gave you 3 tasks: Обзвон" in page
    assert f"{admin} made you responsible for 2 clients" in page


def grow(user, size):
    """Notifications of every kind, naming clients the user may and may not see, and old rows."""
    admin = UserFactory(role=role("Admin"))
    stranger = UserFactory(role=role("Manager"))
    for i in range(size):
        mine = ClientFactory(responsible=user)
        theirs = ClientFactory(responsible=stranger)
        for obj in (mine, theirs):
            activity.notify(user=user, kind=Notification.Kind.MENTION, actor=admin, text=f"hi {i}",
                            params=activity.client_params(obj), url=obj.get_absolute_url())
        activity.notify(user=user, kind=Notification.Kind.REMINDER, actor=None, text=f"task {i}",
                        params={"about": "soon", "due": activity.utc_iso(timezone.now()), **activity.client_params(mine)})
        activity.notify(user=user, kind=Notification.Kind.ASSIGNED, actor=admin,
                        params={"about": "deal", "deal_id": i, "deal": "d"})
        Notification.objects.create(user=user, kind="mention", text=f"old {i}")


@pytest.mark.parametrize("size", [1, 10])
def test_the_notifications_page_query_count_is_flat(size, client, manager, django_assert_num_queries):
    grow(manager, size)
    client.force_login(manager)
    # user, notifications (with actors), the clients they name that the reader may see, unread count, perms
    with django_assert_num_queries(4):
        response = client.get(reverse("crm:notifications"))
    assert response.status_code == 200
    with django_assert_num_queries(2):  # user, unread count
        client.get(reverse("crm:bell"), headers={"HX-Request": "true"})


@pytest.mark.parametrize("size", [1, 10])
def test_the_notifications_page_query_count_for_someone_who_sees_every_client(size, client, admin,
                                                                                django_assert_num_queries):
    grow(admin, size)
    client.force_login(admin)
    with django_assert_num_queries(3):  # user, notifications (with actors), unread count, perms
        client.get(reverse("crm:notifications"))
